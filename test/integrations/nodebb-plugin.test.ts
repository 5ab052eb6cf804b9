// nodebb-plugin-tessera against a stand-in for NodeBB's module API: the plugin's routes are
// mounted on a real Express router (NodeBB's own router is Express, with the same global
// urlencoded/json body parsers), tokens are signed with jose and the issuer's key set is
// served by a local node:http server. Only NodeBB itself (db, user, meta, plugins, route
// helpers) is faked, through the plugin's single module loader (lib/nodebb.js).
//
// The stand-in copies what the real NodeBB 4.15.1 with session-sharing 8.0.2 was seen to do
// (docs/nodebb.md "Verified with", scripts/nodebb-verify.mjs): sessions in
// `uid:<uid>:sessions` scored by login time and in a session store, removed together by
// `user.auth.revokeSession(ids, uid)`; `action:user.loggedIn` ({ uid, req }) fired without
// waiting for its handlers after a session-sharing login (and again on every page load that
// re-validates the cookie), the shared cookie in `req.cookies`, while the browser's next
// request has already loaded the session and saves its copy at its end (the lost update that
// made plugin 0.2.0 lose its link for about one login in four on the real forum);
// `static:user.loggedOut` ({ req, res, uid, sessionID }) after the forum session is gone,
// the cookie still in `req.cookies`; `action:middleware.pageView` ({ req }) with
// `req.sessionID`; settings in `settings:<plugin>` hashes written by the ACP's
// `admin.settings.set` and read with `meta.settings.get`, values as strings (Redis hashes);
// `meta.getSessionTTLSeconds()` (14 days by default).
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFormClient } from '../e2e/support/form-client.js';
import { callAdmin, registerApp, startTesseraNode, waitFor, type DeliveryJson, type TesseraNode } from '../e2e/support/backchannel.js';

const pluginDir = fileURLToPath(new URL('../../integrations/nodebb-plugin-tessera/', import.meta.url));
const requireCjs = createRequire(import.meta.url);

interface HookData {
  error?: Error;
  res?: { clearCookie(name: string, options: Record<string, unknown>): void };
  settings?: Record<string, unknown>;
  handleAsGuest?: boolean;
}
type Handler = (req: express.Request, res: express.Response, next: express.NextFunction) => unknown;
interface ApiHelpers {
  formatApiResponse(status: number, res: express.Response, payload?: unknown): Promise<void>;
}
interface Plugin {
  init(params: { router: express.Router; middleware: object; controllers: object }): Promise<void>;
  addApiRoutes(params: { router: express.Router; middleware: { ensureLoggedIn: Handler }; helpers: ApiHelpers }): Promise<void>;
  renderAdminPage(req: object, res: { render(view: string, data: unknown): void }): Promise<void>;
  addAdminNavigation(header: { plugins: Array<Record<string, string>> }): Promise<{ plugins: Array<Record<string, string>> }>;
  forgetDeletedUser(data: { uid: number }): Promise<void>;
  refuseEndedSessionCookie(data: { uid: number; isNewUser: boolean; token: string }): Promise<void>;
  treatEndedSessionCookieAsGuest(data: HookData): Promise<HookData>;
  linkUser(sub: string, uid: number | string): Promise<void>;
  findUid(sub: string): Promise<{ uid: number; source: string } | null>;
  linkTesseraSession(data: { uid: number; req: FakeRequest }): Promise<void>;
  endTesseraSessionOnForumLogout(data: { req: FakeRequest; res: object; uid: number; sessionID: string }): Promise<{ sent: Promise<{ status: number | null }> } | null>;
  reportActivity(data: { req: FakeRequest & { uid?: number } }): Promise<{ done: Promise<string> } | null>;
  listUnlistedSession(data: { req: FakeRequest & { uid?: number; headers?: Record<string, string> } }): Promise<boolean>;
}

/** The parts of an Express request with NodeBB's session that the plugin's hooks read. */
interface FakeRequest {
  cookies: Record<string, string>;
  loggedIn?: boolean;
  sessionID?: string;
  session: StoredSession & { save(callback: (error?: Error) => void): void };
}

const plugin = requireCjs(`${pluginDir}library.js`) as Plugin;
const { setModuleLoader } = requireCjs(`${pluginDir}lib/nodebb.js`) as { setModuleLoader(resolver?: (id: string) => unknown): void };
const { forgetRecentActivity } = requireCjs(`${pluginDir}lib/activity.js`) as { forgetRecentActivity(): void };
const { forgetListedSessions } = requireCjs(`${pluginDir}lib/session-list.js`) as { forgetListedSessions(): void };

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const CLIENT_ID = 'forum-client';

// ---------------------------------------------------------------------------------------
// A stand-in for NodeBB's database module: the few key/value, hash-counter and sorted-set
// operations the plugin uses, with expiry, over Maps.
// ---------------------------------------------------------------------------------------
function createFakeDb() {
  const strings = new Map<string, string>();
  const hashes = new Map<string, Map<string, number>>();
  const zsets = new Map<string, Map<string, number>>();
  const expiry = new Map<string, number>();
  const objects = new Map<string, Record<string, string>>();
  const sessions = new Map<string, StoredSession>();
  const live = (key: string) => {
    const at = expiry.get(key);
    if (at !== undefined && at <= Date.now()) {
      strings.delete(key);
      hashes.delete(key);
      objects.delete(key);
      zsets.delete(key);
      expiry.delete(key);
    }
  };
  const zset = (key: string) => {
    live(key);
    let set = zsets.get(key);
    if (!set) zsets.set(key, (set = new Map()));
    return set;
  };
  return {
    strings,
    zsets,
    objects,
    failNext: null as string | null,
    async sortedSetScore(key: string, value: string) {
      live(key);
      const score = zsets.get(key)?.get(String(value));
      return score === undefined ? null : score;
    },
    async sortedSetAdd(key: string, score: number, value: string) {
      zset(key).set(String(value), Number(score));
    },
    async sortedSetRemove(key: string, value: string | string[]) {
      for (const v of Array.isArray(value) ? value : [value]) zset(key).delete(String(v));
    },
    async getSortedSetRangeByScore(key: string, start: number, count: number, min: number, max: number) {
      expect([start, count]).toEqual([0, -1]);
      return [...zset(key)].filter(([, s]) => s >= min && s <= max).map(([v]) => v);
    },
    async incrObjectField(key: string, field: string) {
      live(key);
      let hash = hashes.get(key);
      if (!hash) hashes.set(key, (hash = new Map()));
      const next = (hash.get(field) ?? 0) + 1;
      hash.set(field, next);
      return next;
    },
    async pexpireAt(key: string, at: number) {
      expiry.set(key, at);
    },
    expiryOf(key: string): number | undefined {
      return expiry.get(key);
    },
    async delete(key: string) {
      objects.delete(key);
      strings.delete(key);
      hashes.delete(key);
      zsets.delete(key);
      expiry.delete(key);
    },
    async set(key: string, value: string) {
      strings.set(key, String(value));
    },
    async get(key: string) {
      live(key);
      return strings.get(key) ?? null;
    },
    async exists(key: string) {
      live(key);
      return strings.has(key) || hashes.has(key) || objects.has(key) || (zsets.get(key)?.size ?? 0) > 0;
    },
    async getSortedSetRange(key: string, start: number, stop: number) {
      expect([start, stop]).toEqual([0, -1]);
      return [...zset(key)].sort((a, b) => a[1] - b[1]).map(([v]) => v);
    },
    async getSortedSetRangeWithScores(key: string, start: number, stop: number) {
      expect([start, stop]).toEqual([0, -1]);
      return [...zset(key)].sort((a, b) => a[1] - b[1]).map(([value, score]) => ({ value, score }));
    },
    async getObjectField(key: string, field: string) {
      live(key);
      return objects.get(key)?.[field] ?? null;
    },
    async getObject(key: string) {
      live(key);
      const object = objects.get(key);
      return object ? { ...object } : null;
    },
    async setObject(key: string, data: Record<string, unknown>) {
      live(key);
      const object = objects.get(key) ?? {};
      for (const [field, value] of Object.entries(data)) object[field] = String(value);
      objects.set(key, object);
    },
    // NodeBB's session store (connect-redis & co. behind db.sessionStoreGet/Destroy).
    sessions,
    async sessionStoreGet(id: string) {
      const stored = sessions.get(id);
      return stored ? (JSON.parse(JSON.stringify(stored)) as StoredSession) : null;
    },
    async sessionStoreDestroy(id: string) {
      sessions.delete(id);
    },
  };
}

/** A NodeBB session as its store keeps it: passport's uid, and what this plugin adds. */
interface StoredSession {
  passport?: { user: number };
  /** What plugin 0.2.0 wrote into the session (still read); 0.3.0 keeps its own key. */
  tessera?: { sid: string; iat?: number };
  /** NodeBB's CSRF token (csrf-sync), written into the session by the requests after a login. */
  csrfToken?: string;
  /** Written by onSuccessfulLogin: `datetime` is the login time. */
  meta?: { datetime: number };
}

// ---------------------------------------------------------------------------------------
// The rest of the stand-in NodeBB: user, meta.settings, plugins, route helpers, nconf, winston.
// ---------------------------------------------------------------------------------------
let db: ReturnType<typeof createFakeDb>;
let settings: Record<string, Record<string, string>>;
let activePlugins: Set<string>;
let revoked: number[];
let revokeFailures: number;
let admins: Set<number>;
let existingUids: Set<number>;
let logs: Array<{ level: string; message: string }>;

function installFakeNodebb() {
  const log = (level: string) => (message: string) => void logs.push({ level, message });
  const modules: Record<string, unknown> = {
    './src/database': db,
    './src/user': {
      // As src/user/auth.js: revokeSession removes the ids from uid:<uid>:sessions and
      // destroys them in the session store.
      auth: {
        async revokeSession(ids: string | string[], uid: number) {
          if (revokeFailures > 0) {
            revokeFailures--;
            throw new Error('session store unavailable');
          }
          const list = Array.isArray(ids) ? ids : [ids];
          await db.sortedSetRemove(`uid:${uid}:sessions`, list);
          for (const id of list) await db.sessionStoreDestroy(id);
          revoked.push(uid);
        },
        async revokeAllSessions() {
          throw new Error('the plugin ends chosen sessions (revokeSession), never all of them');
        },
      },
      isAdministrator: async (uid: number) => admins.has(uid),
      exists: async (uid: number) => existingUids.has(uid),
    },
    './src/meta': {
      settings: { get: async (hash: string) => ({ ...(settings[hash] ?? {}) }) },
      // src/meta/index.js: loginSeconds, else loginDays (default 14) in seconds.
      getSessionTTLSeconds: () => 14 * 86_400,
    },
    './src/plugins': { isActive: async (id: string) => activePlugins.has(id) },
    './src/routes/helpers': {
      setupAdminPageRoute: (router: express.Router, name: string, middlewares: Handler[], controller: Handler) => router.get(name, ...middlewares, controller),
      setupApiRoute: (router: express.Router, verb: 'get' | 'put' | 'delete', name: string, middlewares: Handler[], controller: Handler) =>
        router[verb](name, ...middlewares, async (req, res, next) => {
          try {
            await controller(req, res, next);
          } catch (error) {
            next(error);
          }
        }),
    },
    nconf: { get: (key: string) => (key === 'url' ? 'https://forum.example.com' : undefined) },
    winston: { info: log('info'), warn: log('warn'), error: log('error'), verbose: log('verbose') },
  };
  setModuleLoader((id) => {
    if (!(id in modules)) throw new Error(`unexpected NodeBB module ${id}`);
    return modules[id];
  });
}

// ---------------------------------------------------------------------------------------
// The issuer's key set, served over HTTP, and a token signer.
// ---------------------------------------------------------------------------------------
interface Key {
  kid: string;
  alg: 'EdDSA' | 'ES256' | 'RS256';
  privateKey: CryptoKey;
}
let jwksServer: Server;
let issuer: string;
let edKey: Key;
let esKey: Key;
let rsKey: Key;
let strangerKey: Key;

async function makeKey(alg: 'EdDSA' | 'ES256' | 'RS256', kid: string, published: JWK[] | null): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  if (published) published.push({ ...(await exportJWK(publicKey)), kid, alg, use: 'sig' });
  return { kid, alg, privateKey };
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

interface TokenOptions {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  key?: Key;
}

/** A valid logout token (as Tessera signs them) with overrides; undefined removes a claim. */
async function logoutToken(options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: issuer,
    aud: CLIENT_ID,
    iat: now,
    exp: now + 120,
    jti: randomUUID(),
    sub: 'usr_alice',
    sid: 'ses_alice_1',
    events: { [EVENT]: {} },
    ...options.claims,
  };
  for (const name of Object.keys(claims)) if (claims[name] === undefined) delete claims[name];
  const key = options.key ?? edKey;
  const header = { alg: key.alg, kid: key.kid, typ: 'logout+jwt', ...options.header };
  for (const name of Object.keys(header)) if ((header as Record<string, unknown>)[name] === undefined) delete (header as Record<string, unknown>)[name];
  return new SignJWT(claims as JWTPayload).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
}

// ---------------------------------------------------------------------------------------
// The forum: NodeBB's global body parsers, then the router the plugin's hooks fill.
// ---------------------------------------------------------------------------------------
let forum: Server;
let forumUrl: string;

async function startForum(): Promise<void> {
  const app = express();
  app.use(express.urlencoded({ extended: true }));
  app.use(express.json());
  const router = express.Router();
  await plugin.init({ router, middleware: {}, controllers: {} });
  const apiRouter = express.Router();
  await plugin.addApiRoutes({
    router: apiRouter,
    middleware: {
      ensureLoggedIn: (req, res, next) => {
        (req as express.Request & { uid: number }).uid = Number(req.headers['x-uid'] ?? 0);
        if (!(Number(req.headers['x-uid']) > 0)) return void res.status(401).json({ status: { code: 'not-authorised' } });
        next();
      },
    },
    helpers: {
      async formatApiResponse(status, res, payload) {
        if (payload instanceof Error) res.status(status).json({ status: { code: 'bad-request', message: payload.message } });
        else res.status(status).json({ status: { code: status === 200 ? 'ok' : String(status) }, response: payload ?? {} });
      },
    },
  });
  app.use('/api/v3/plugins', apiRouter);
  app.use(router);
  forum = createServer(app);
  await new Promise<void>((resolve) => forum.listen(0, '127.0.0.1', resolve));
  forumUrl = `http://127.0.0.1:${(forum.address() as AddressInfo).port}`;
}

function postForm(body: string, contentType = 'application/x-www-form-urlencoded') {
  return fetch(`${forumUrl}/tessera/backchannel-logout`, { method: 'POST', headers: { 'content-type': contentType }, body });
}

function postToken(token: string) {
  return postForm(new URLSearchParams({ logout_token: token }).toString());
}

async function expectRefused(response: Response) {
  expect(response.status).toBe(400);
  expect(response.headers.get('cache-control')).toBe('no-store');
  const body = (await response.json()) as { error: string; error_description: string };
  expect(body.error).toBe('invalid_request');
  return body;
}

beforeAll(async () => {
  const published: JWK[] = [];
  edKey = await makeKey('EdDSA', 'ed-1', published);
  esKey = await makeKey('ES256', 'es-1', published);
  rsKey = await makeKey('RS256', 'rs-1', published);
  // Same kid as the published Ed25519 key, but a key the issuer never published.
  strangerKey = await makeKey('EdDSA', 'ed-1', null);
  jwksServer = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
  db = createFakeDb();
  installFakeNodebb();
  await startForum();
});

afterAll(async () => {
  setModuleLoader();
  await new Promise((resolve) => forum?.close(resolve));
  await new Promise((resolve) => jwksServer?.close(resolve));
});

beforeEach(() => {
  // Fresh NodeBB state per test; the loader reads these variables at call time.
  const fresh = createFakeDb();
  Object.assign(db, fresh);
  settings = {
    tessera: { issuer, clientId: CLIENT_ID },
    'session-sharing': { name: 'forum', secret: 's3cret', cookieName: 'token', cookieDomain: '.example.com' },
  };
  activePlugins = new Set(['nodebb-plugin-session-sharing']);
  revoked = [];
  revokeFailures = 0;
  forgetRecentActivity();
  forgetListedSessions();
  admins = new Set([1]);
  existingUids = new Set([1, 42, 77]);
  logs = [];
  // Users 42 and 77 are signed in to the forum since a minute ago (a NodeBB login not linked
  // to a Tessera session: the oldest kind, ended by any logout of the user).
  addNodebbSession(42, { loginAt: Date.now() - 60_000 });
  addNodebbSession(77, { loginAt: Date.now() - 60_000 });
});

/** A NodeBB session of `uid` as NodeBB's login leaves it (user.auth.addSession + the store). */
function addNodebbSession(uid: number, options: { loginAt?: number; tessera?: StoredSession['tessera'] } = {}): string {
  const id = `nbb-${randomUUID()}`;
  db.zsets.set(`uid:${uid}:sessions`, (db.zsets.get(`uid:${uid}:sessions`) ?? new Map()).set(id, options.loginAt ?? Date.now()));
  db.sessions.set(id, { passport: { user: uid }, ...(options.tessera ? { tessera: options.tessera } : {}) });
  return id;
}

/** The plugin's record of the Tessera session behind NodeBB session `id` (a Redis hash: strings). */
function linkOf(id: string): Record<string, string> | undefined {
  return db.objects.get(`tessera:session:${id}`);
}

/** The ids of the live NodeBB sessions of `uid`. */
function nodebbSessionsOf(uid: number): string[] {
  return [...(db.zsets.get(`uid:${uid}:sessions`)?.keys() ?? [])].filter((id) => db.sessions.has(id));
}

describe('back-channel logout: a valid token ends the user\'s NodeBB sessions', () => {
  it('answers 200 with Cache-Control: no-store and revokes the uid session-sharing maps the sub to', async () => {
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    const response = await postToken(await logoutToken());
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.text()).toBe('');
    expect(revoked).toEqual([42]);
    expect(logs.some((l) => l.level === 'info' && l.message.includes('uid 42') && l.message.includes('session-sharing'))).toBe(true);
  });

  it('accepts ES256 as well as EdDSA', async () => {
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    expect((await postToken(await logoutToken({ key: esKey }))).status).toBe(200);
    expect(revoked).toEqual([42]);
  });

  it('accepts RS256, what Tessera signs with for a forum that is also an OIDC client (default id_token_signed_response_alg)', async () => {
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    expect((await postToken(await logoutToken({ key: rsKey }))).status).toBe(200);
    expect(revoked).toEqual([42]);
  });

  it('uses session-sharing\'s default base name appId when its name setting is empty', async () => {
    settings['session-sharing'] = { secret: 's3cret' };
    await db.sortedSetAdd('appId:uid', 77, 'usr_alice');
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    expect((await postToken(await logoutToken())).status).toBe(200);
    expect(revoked).toEqual([77]);
  });

  it('uses the base name from the plugin\'s own setting over session-sharing\'s', async () => {
    settings.tessera!.sessionSharingName = 'site';
    await db.sortedSetAdd('site:uid', 77, 'usr_alice');
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    expect((await postToken(await logoutToken())).status).toBe(200);
    expect(revoked).toEqual([77]);
  });

  it('ignores session-sharing\'s mapping when that plugin is not active and uses its own tessera:uid', async () => {
    activePlugins.clear();
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    await db.sortedSetAdd('tessera:uid', 77, 'usr_alice');
    expect((await postToken(await logoutToken())).status).toBe(200);
    expect(revoked).toEqual([77]);
  });

  it('reads nodebb-plugin-sso-oauth2-multiple\'s mapping (<strategy>Id:uid) for users who signed in through Tessera\'s OIDC provider', async () => {
    // As OAuth.login stores it: db.setObjectField(`${name}Id:uid`, oAuthid, uid).
    await db.setObject('tesseraId:uid', { usr_alice: '77' });
    expect(await plugin.findUid('usr_alice')).toBeNull();
    activePlugins.add('nodebb-plugin-sso-oauth2-multiple');
    expect(await plugin.findUid('usr_alice')).toEqual({ uid: 77, source: 'sso-oauth2-multiple' });
    expect((await postToken(await logoutToken())).status).toBe(200);
    expect(revoked).toEqual([77]);
    // Another strategy name in the settings: that strategy's hash, not tessera's.
    settings.tessera!.oauth2Strategy = 'auth';
    expect(await plugin.findUid('usr_alice')).toBeNull();
    await db.setObject('authId:uid', { usr_alice: '42' });
    expect(await plugin.findUid('usr_alice')).toEqual({ uid: 42, source: 'sso-oauth2-multiple' });
    // session-sharing's mapping still comes first.
    await db.sortedSetAdd('forum:uid', 1, 'usr_alice');
    expect(await plugin.findUid('usr_alice')).toEqual({ uid: 1, source: 'session-sharing' });
  });

  it('falls back to its own mapping when session-sharing does not know the sub', async () => {
    await plugin.linkUser('usr_alice', 77);
    expect(await plugin.findUid('usr_alice')).toEqual({ uid: 77, source: 'tessera' });
    expect((await postToken(await logoutToken())).status).toBe(200);
    expect(revoked).toEqual([77]);
  });

  it('answers 200 and ends nothing for a sub no mapping knows (already logged out, §2.7)', async () => {
    const response = await postToken(await logoutToken({ claims: { sub: 'usr_nobody' } }));
    expect(response.status).toBe(200);
    expect(revoked).toEqual([]);
  });

  it('answers 200 for a sid-only token, ends nothing (no sub to map) but remembers the ended session', async () => {
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    const response = await postToken(await logoutToken({ claims: { sub: undefined, sid: 'ses_orphan' } }));
    expect(response.status).toBe(200);
    expect(revoked).toEqual([]);
    expect(await db.exists('tessera:ended:sid:ses_orphan')).toBe(true);
  });

  it('lets two concurrent deliveries of one token end the sessions once (atomic jti claim)', async () => {
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    const token = await logoutToken();
    const statuses = (await Promise.all([postToken(token), postToken(token)])).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 400]);
    expect(revoked).toEqual([42]);
  });

  it('answers 400 when NodeBB cannot revoke, and accepts the retry of the same token', async () => {
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    revokeFailures = 1;
    const token = await logoutToken();
    const body = await expectRefused(await postToken(token));
    expect(body.error_description).toMatch(/retry/);
    expect(revoked).toEqual([]);
    expect(logs.some((l) => l.level === 'error' && l.message.includes('session store unavailable'))).toBe(true);
    expect((await postToken(token)).status).toBe(200);
    expect(revoked).toEqual([42]);
  });
});

describe('back-channel logout: every invalid token is refused with 400 and nothing is revoked', () => {
  beforeEach(async () => {
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
  });

  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ['wrong typ (an access token)', () => logoutToken({ header: { typ: 'at+jwt' } }), /typ/],
    ['no typ', () => logoutToken({ header: { typ: undefined } }), /typ/],
    ['wrong iss', () => logoutToken({ claims: { iss: 'https://evil.example.com' } }), /issuer/],
    ['wrong aud', () => logoutToken({ claims: { aud: 'another-client' } }), /another client/],
    ['expired', () => logoutToken({ claims: { iat: now() - 200, exp: now() - 60 } }), /expired/],
    ['iat in the future', () => logoutToken({ claims: { iat: now() + 600, exp: now() + 720 } }), /iat/],
    ['issued too long ago', () => logoutToken({ claims: { iat: now() - 3600, exp: now() + 60 } }), /expired|iat/],
    ['no exp', () => logoutToken({ claims: { exp: undefined } }), /exp/],
    ['no events claim', () => logoutToken({ claims: { events: undefined } }), /events/],
    ['events without the back-channel event', () => logoutToken({ claims: { events: { 'http://example.com/other': {} } } }), /back-channel logout event/],
    ['the event member is not an object', () => logoutToken({ claims: { events: { [EVENT]: true } } }), /back-channel logout event/],
    ['nonce present', () => logoutToken({ claims: { nonce: 'n-0S6_WzA2Mj' } }), /nonce/],
    ['neither sub nor sid', () => logoutToken({ claims: { sub: undefined, sid: undefined } }), /neither sub nor sid/],
    ['no jti', () => logoutToken({ claims: { jti: undefined } }), /jti/],
    ['bad signature (unpublished key, published kid)', () => logoutToken({ key: strangerKey }), /signature/],
    ['unknown kid', () => logoutToken({ header: { kid: 'never-published' } }), /key the issuer does not publish/],
    ['tampered payload', async () => {
      const [h, , s] = (await logoutToken()).split('.');
      return `${h}.${base64url({ iss: issuer, aud: CLIENT_ID, iat: now(), exp: now() + 60, jti: randomUUID(), sub: 'usr_alice', events: { [EVENT]: {} } })}.${s}`;
    }, /signature/],
    ['alg none', async () => `${base64url({ alg: 'none', typ: 'logout+jwt' })}.${base64url({ iss: issuer, aud: CLIENT_ID, iat: now(), exp: now() + 60, jti: randomUUID(), sub: 'usr_alice', events: { [EVENT]: {} } })}.`, /not a signed JWT/],
    ['alg HS256', () => new SignJWT({ iss: issuer, aud: CLIENT_ID, iat: now(), exp: now() + 60, jti: randomUUID(), sub: 'usr_alice', events: { [EVENT]: {} } })
      .setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt', kid: 'ed-1' })
      .sign(new TextEncoder().encode('a-secret-anyone-could-guess-000000')), /algorithm/],
    ['alg RS256 naming an Ed25519 key (key type does not fit)', async () => {
      const [, payload, signature] = (await logoutToken({ key: rsKey })).split('.');
      return `${base64url({ alg: 'RS256', typ: 'logout+jwt', kid: 'ed-1' })}.${payload}.${signature}`;
    }, /key|signature|algorithm/],
    ['alg PS256 (not one Tessera signs with)', async () => {
      const { privateKey } = await generateKeyPair('PS256');
      return new SignJWT({ iss: issuer, aud: CLIENT_ID, iat: now(), exp: now() + 60, jti: randomUUID(), sub: 'usr_alice', events: { [EVENT]: {} } })
        .setProtectedHeader({ alg: 'PS256', typ: 'logout+jwt', kid: 'rs-1' }).sign(privateKey);
    }, /algorithm/],
    ['not a JWT at all', async () => 'not-a-token', /not a signed JWT/],
  ];

  for (const [name, makeToken, reason] of cases) {
    it(name, async () => {
      const body = await expectRefused(await postToken(await makeToken()));
      expect(body.error_description).toMatch(reason);
      expect(revoked).toEqual([]);
    });
  }

  it('a replayed jti', async () => {
    const token = await logoutToken();
    expect((await postToken(token)).status).toBe(200);
    const body = await expectRefused(await postToken(token));
    expect(body.error_description).toMatch(/already received/);
    expect(revoked).toEqual([42]);
  });

  it('a JSON body instead of a form', async () => {
    const body = await expectRefused(await postForm(JSON.stringify({ logout_token: await logoutToken() }), 'application/json'));
    expect(body.error_description).toMatch(/x-www-form-urlencoded/);
    expect(revoked).toEqual([]);
  });

  it('a form without logout_token', async () => {
    await expectRefused(await postForm('token=abc'));
    expect(revoked).toEqual([]);
  });

  it('a form with logout_token twice', async () => {
    const token = await logoutToken();
    await expectRefused(await postForm(`logout_token=${token}&logout_token=${token}`));
    expect(revoked).toEqual([]);
  });

  it('an empty body', async () => {
    await expectRefused(await postForm(''));
    expect(revoked).toEqual([]);
  });

  it('any token while the plugin is not configured, with the reason in the error log', async () => {
    settings.tessera = { issuer };
    await expectRefused(await postToken(await logoutToken()));
    expect(revoked).toEqual([]);
    expect(logs.some((l) => l.level === 'error' && l.message.includes('client id is not set'))).toBe(true);
  });

  it('any token when the issuer is plain http on a public host', async () => {
    settings.tessera = { issuer: 'http://auth.example.com', clientId: CLIENT_ID };
    await expectRefused(await postToken(await logoutToken()));
    expect(revoked).toEqual([]);
    expect(logs.some((l) => l.level === 'error' && l.message.includes('https'))).toBe(true);
  });
});

describe('session-sharing guard: shared cookies of ended Tessera sessions no longer log in', () => {
  const cookie = (payload: Record<string, unknown>) => `${base64url({ alg: 'HS256', typ: 'JWT' })}.${base64url(payload)}.c2ln`;
  const now = () => Math.floor(Date.now() / 1000);

  beforeEach(async () => {
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
  });

  it('refuses a cookie whose sid was ended, and still accepts another session\'s cookie', async () => {
    expect((await postToken(await logoutToken({ claims: { sid: 'ses_alice_1' } }))).status).toBe(200);
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: cookie({ id: 'usr_alice', sid: 'ses_alice_1', iat: now() - 60 }) })).rejects.toThrow('tessera-session-ended');
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: cookie({ id: 'usr_alice', sid: 'ses_alice_2', iat: now() - 60 }) })).resolves.toBeUndefined();
  });

  it('finds the sid under session-sharing\'s parent key', async () => {
    settings['session-sharing']!.payloadParent = 'd';
    expect((await postToken(await logoutToken({ claims: { sid: 'ses_alice_1' } }))).status).toBe(200);
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: cookie({ d: { id: 'usr_alice', sid: 'ses_alice_1' }, iat: now() }) })).rejects.toThrow('tessera-session-ended');
  });

  it('after a user-wide logout refuses cookies issued before it and accepts those issued after', async () => {
    const endedAt = now() - 10;
    expect((await postToken(await logoutToken({ claims: { sid: undefined, iat: endedAt } }))).status).toBe(200);
    expect(revoked).toEqual([42]);
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: cookie({ id: 'usr_alice', iat: endedAt - 100 }) })).rejects.toThrow('tessera-session-ended');
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: cookie({ id: 'usr_alice' }) })).rejects.toThrow('tessera-session-ended');
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: cookie({ id: 'usr_alice', iat: endedAt + 5 }) })).resolves.toBeUndefined();
    // Other users are not affected.
    await expect(plugin.refuseEndedSessionCookie({ uid: 77, isNewUser: false, token: cookie({ id: 'usr_bob', iat: endedAt - 100 }) })).resolves.toBeUndefined();
  });

  it('a delayed older logout does not move the user-wide end backwards', async () => {
    const later = now() - 5;
    expect((await postToken(await logoutToken({ claims: { sid: undefined, iat: later } }))).status).toBe(200);
    expect((await postToken(await logoutToken({ claims: { sid: undefined, iat: later - 100 } }))).status).toBe(200);
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: cookie({ iat: later - 50 }) })).rejects.toThrow('tessera-session-ended');
  });

  it('turns its own refusal into "guest" and clears the dead cookie; leaves other errors alone', async () => {
    const cleared: Array<[string, Record<string, unknown>]> = [];
    const res = { clearCookie: (name: string, options: Record<string, unknown>) => void cleared.push([name, options]) };
    const ours = await plugin.treatEndedSessionCookieAsGuest({ error: new Error('tessera-session-ended'), res, settings: { cookieName: 'token', cookieDomain: '.example.com' }, handleAsGuest: false });
    expect(ours.handleAsGuest).toBe(true);
    expect(cleared).toEqual([['token', { domain: '.example.com', path: '/' }]]);
    const other = await plugin.treatEndedSessionCookieAsGuest({ error: new Error('payload-invalid'), res, settings: { cookieName: 'token' }, handleAsGuest: false });
    expect(other.handleAsGuest).toBe(false);
    expect(cleared).toHaveLength(1);
  });
});

describe('own mapping: admin API, helpers and clean-up', () => {
  const api = (method: string, sub: string, uid: number | null, body?: unknown) =>
    fetch(`${forumUrl}/api/v3/plugins/tessera/links/${encodeURIComponent(sub)}`, {
      method,
      headers: { ...(uid ? { 'x-uid': String(uid) } : {}), 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('lets an administrator link, read and unlink a Tessera user, and a logout then reaches that uid', async () => {
    activePlugins.clear();
    const put = await api('PUT', 'usr_carol', 1, { uid: 77 });
    expect(put.status).toBe(200);
    expect(((await put.json()) as { response: unknown }).response).toEqual({ sub: 'usr_carol', uid: 77 });
    const get = await api('GET', 'usr_carol', 1);
    expect(((await get.json()) as { response: unknown }).response).toEqual({ sub: 'usr_carol', uid: 77, source: 'tessera' });
    expect((await postToken(await logoutToken({ claims: { sub: 'usr_carol' } }))).status).toBe(200);
    expect(revoked).toEqual([77]);
    expect((await api('DELETE', 'usr_carol', 1)).status).toBe(200);
    expect((await api('GET', 'usr_carol', 1)).status).toBe(404);
  });

  it('refuses non-administrators and bad uids', async () => {
    expect((await api('PUT', 'usr_carol', 42, { uid: 77 })).status).toBe(403);
    expect((await api('PUT', 'usr_carol', null, { uid: 77 })).status).toBe(401);
    const notANumber = await api('PUT', 'usr_carol', 1, { uid: 'seventy' });
    expect(notANumber.status).toBe(400);
    const unknown = await api('PUT', 'usr_carol', 1, { uid: 999 });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { status: { message: string } }).status.message).toMatch(/no NodeBB user has uid 999/);
    expect(db.zsets.get('tessera:uid')?.size ?? 0).toBe(0);
  });

  it('linkUser refuses what is not a sub or a uid', async () => {
    await expect(plugin.linkUser('', 42)).rejects.toThrow(TypeError);
    await expect(plugin.linkUser('usr_x', 0)).rejects.toThrow(TypeError);
    await expect(plugin.linkUser('usr_x', '4two')).rejects.toThrow(TypeError);
  });

  it('forgets every sub of a deleted NodeBB account', async () => {
    await plugin.linkUser('usr_dan', 77);
    await plugin.linkUser('usr_dan_old', 77);
    await plugin.linkUser('usr_erin', 42);
    await plugin.forgetDeletedUser({ uid: 77 });
    expect([...(db.zsets.get('tessera:uid')?.keys() ?? [])]).toEqual(['usr_erin']);
  });

  it('renders its ACP page with the back-channel URL to register in Tessera', async () => {
    const rendered: Array<[string, unknown]> = [];
    await plugin.renderAdminPage({}, { render: (view: string, data: unknown) => void rendered.push([view, data]) });
    expect(rendered).toEqual([['admin/plugins/tessera', { title: 'Tessera', backchannelUrl: 'https://forum.example.com/tessera/backchannel-logout' }]]);
  });

  it('adds its ACP page to the plugins menu', async () => {
    const header = await plugin.addAdminNavigation({ plugins: [] });
    expect(header.plugins).toEqual([{ route: '/plugins/tessera', icon: 'fa-right-from-bracket', name: 'Tessera' }]);
  });
});

// ---------------------------------------------------------------------------------------
// Late logouts (docs/decisions/0006-late-logouts.md): a logout ends the NodeBB sessions of
// the Tessera sessions it ended, never one begun after it, however late it arrives.
// ---------------------------------------------------------------------------------------
const SHARING_SECRET = 'session-sharing-secret-0123456789-abcdefgh';

/** Waits for a condition (never a fixed sleep). */
async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A shared cookie as Tessera issues it (HS256 with session-sharing's secret; sid, iat at the top). */
function sharedCookie(claims: Record<string, unknown>, secret = SHARING_SECRET): Promise<string> {
  return new SignJWT({ id: 'usr_alice', username: 'alice', ...claims } as JWTPayload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

/**
 * What NodeBB 4.15 does when session-sharing logs a user in from the shared cookie, as seen on
 * the real forum: authenticationController.doLogin → onSuccessfulLogin saves the session, adds
 * it to uid:<uid>:sessions (score Date.now()), fires `action:user.loggedIn` { uid, req }
 * without waiting for its handlers, and session-sharing answers a 302 to the same page. The
 * browser's next request loads the session from the store while the hook may still run, and
 * NodeBB saves that request's copy at its end (it changed it: a new CSRF token) — over
 * whatever the hook wrote into the session object meanwhile. The worst order is played here.
 */
async function nodebbLoginFromCookie(uid: number, cookie: string, loginAt = Date.now()): Promise<string> {
  const id = addNodebbSession(uid, { loginAt });
  const session = db.sessions.get(id)!;
  const req: FakeRequest = {
    cookies: { token: cookie },
    loggedIn: true,
    sessionID: id,
    session: Object.assign(session, { save: (callback: (error?: Error) => void) => void (db.sessions.set(id, JSON.parse(JSON.stringify(session)) as StoredSession), callback()) }),
  };
  // The redirect's request: its copy of the session, loaded before the hook wrote anything.
  const nextRequest = (await db.sessionStoreGet(id))!;
  // NodeBB does not wait for the hook; the test does, to play the worst order below.
  await plugin.linkTesseraSession({ uid, req });
  // … saved at its end, with the CSRF token it added.
  db.sessions.set(id, { ...nextRequest, csrfToken: randomUUID() });
  return id;
}

describe('late logouts: only the NodeBB sessions of the Tessera sessions the revocation ended', () => {
  beforeEach(async () => {
    settings['session-sharing'] = { name: 'forum', secret: SHARING_SECRET, cookieName: 'token' };
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
    await db.sortedSetAdd('forum:uid', 77, 'usr_bob');
    db.zsets.delete('uid:42:sessions');
    db.zsets.delete('uid:77:sessions');
  });
  const now = () => Math.floor(Date.now() / 1000);

  it('links a NodeBB session logged in from the shared cookie to its Tessera sid, only for a cookie of that user that verifies', async () => {
    const iat = now();
    const cookie = await sharedCookie({ sid: 'ses_1', iat });
    const linked = await nodebbLoginFromCookie(42, cookie);
    // NodeBB's save of the next request overwrote the session object (0.2.0 kept the link
    // there and lost it); the plugin's own key, as long as NodeBB's session TTL, holds it.
    expect(db.sessions.get(linked)!.tessera).toBeUndefined();
    expect(linkOf(linked)).toEqual({ sid: 'ses_1', iat: String(iat) });
    // Another user's cookie, a forged one, or none: not Tessera's session of this user.
    const bobs = await nodebbLoginFromCookie(42, await sharedCookie({ id: 'usr_bob', sid: 'ses_bob' }));
    const forged = await nodebbLoginFromCookie(42, await sharedCookie({ sid: 'ses_x' }, 'not-the-secret-0123456789-abcdefghijklmn'));
    expect(linkOf(bobs)).toBeUndefined();
    expect(linkOf(forged)).toBeUndefined();
    // session-sharing's revalidate fires action:user.loggedIn again on every page load with
    // the cookie: the same link, no write.
    db.objects.get(`tessera:session:${linked}`)!.marker = 'unchanged';
    await plugin.linkTesseraSession({ uid: 42, req: { cookies: { token: cookie }, loggedIn: true, sessionID: linked, session: { save: (cb) => cb() } } });
    expect(linkOf(linked)).toEqual({ sid: 'ses_1', iat: String(iat), marker: 'unchanged' });
  });

  it('keeps the link as long as NodeBB keeps the session, and removes it with the sessions it ends', async () => {
    const linked = await nodebbLoginFromCookie(42, await sharedCookie({ sid: 'ses_1', iat: now() }));
    const keptFor = (db.expiryOf(`tessera:session:${linked}`) ?? 0) - Date.now();
    expect(keptFor).toBeGreaterThan(14 * 86_400_000 - 60_000);
    expect(keptFor).toBeLessThanOrEqual(14 * 86_400_000);
    expect((await postToken(await logoutToken({ claims: { sid: 'ses_1', revoked_at: Date.now() } }))).status).toBe(200);
    expect(db.sessions.has(linked)).toBe(false);
    expect(linkOf(linked)).toBeUndefined();
  });

  it('still reads a link plugin 0.2.0 wrote into the session object', async () => {
    const legacy = addNodebbSession(42, { loginAt: Date.now() - 60_000, tessera: { sid: 'ses_legacy', iat: now() - 60 } });
    const other = addNodebbSession(42, { loginAt: Date.now() - 60_000, tessera: { sid: 'ses_other', iat: now() - 60 } });
    expect((await postToken(await logoutToken({ claims: { sid: 'ses_legacy', revoked_at: Date.now() } }))).status).toBe(200);
    expect(nodebbSessionsOf(42)).toEqual([other]);
    expect(db.sessions.has(legacy)).toBe(false);
  });

  it('a user-wide token retried after the user signed in again ends the old sessions and keeps the new one (sids listed)', async () => {
    const revokedAt = Date.now() - 20 * 60_000;
    const old1 = await nodebbLoginFromCookie(42, await sharedCookie({ sid: 'ses_old_1', iat: Math.floor(revokedAt / 1000) - 3600 }), revokedAt - 3_600_000);
    const old2 = await nodebbLoginFromCookie(42, await sharedCookie({ sid: 'ses_old_2', iat: Math.floor(revokedAt / 1000) - 60 }), revokedAt - 60_000);
    // Signed in again 10 minutes after the revocation; the token comes now, signed now.
    const freshCookie = await sharedCookie({ sid: 'ses_new', iat: Math.floor(revokedAt / 1000) + 600 });
    const fresh = await nodebbLoginFromCookie(42, freshCookie, revokedAt + 600_000);
    const bob = await nodebbLoginFromCookie(77, await sharedCookie({ id: 'usr_bob', sid: 'ses_bob', iat: Math.floor(revokedAt / 1000) - 60 }), revokedAt - 60_000);

    const response = await postToken(await logoutToken({ claims: { sid: undefined, revoked_at: revokedAt, sids: ['ses_old_1', 'ses_old_2'] } }));
    expect(response.status).toBe(200);
    expect(nodebbSessionsOf(42)).toEqual([fresh]);
    expect(db.sessions.has(old1) || db.sessions.has(old2)).toBe(false);
    expect(nodebbSessionsOf(77)).toEqual([bob]);
    // The guard refuses the ended sessions' cookies and lets the new one log in.
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: await sharedCookie({ sid: 'ses_old_2', iat: Math.floor(revokedAt / 1000) - 60 }) })).rejects.toThrow('tessera-session-ended');
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: freshCookie })).resolves.toBeUndefined();
    expect(logs.some((l) => l.message.includes('ended 2 NodeBB session(s) of uid 42'))).toBe(true);
  });

  it('without a list, revoked_at decides: cookie iat for linked sessions, NodeBB login time for the others', async () => {
    const revokedAt = Date.now() - 20 * 60_000;
    const oldLinked = await nodebbLoginFromCookie(42, await sharedCookie({ sid: 'ses_old', iat: Math.floor(revokedAt / 1000) - 60 }), revokedAt + 5 * 60_000);
    const oldLocal = addNodebbSession(42, { loginAt: revokedAt - 1 });
    const newLinked = await nodebbLoginFromCookie(42, await sharedCookie({ sid: 'ses_new', iat: Math.floor(revokedAt / 1000) + 2 }), revokedAt - 5 * 60_000);
    const newLocal = addNodebbSession(42, { loginAt: revokedAt + 1 });
    expect((await postToken(await logoutToken({ claims: { sid: undefined, revoked_at: revokedAt } }))).status).toBe(200);
    expect(nodebbSessionsOf(42).sort()).toEqual([newLinked, newLocal].sort());
    expect(db.sessions.has(oldLinked) || db.sessions.has(oldLocal)).toBe(false);
    // Cookies: issued after the end pass, at or before it are refused.
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: await sharedCookie({ sid: 'ses_new', iat: Math.floor(revokedAt / 1000) + 2 }) })).resolves.toBeUndefined();
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: await sharedCookie({ sid: 'ses_old', iat: Math.floor(revokedAt / 1000) }) })).rejects.toThrow('tessera-session-ended');
  });

  it('a token for one Tessera session ends its NodeBB sessions and older unlinked ones, not other Tessera sessions', async () => {
    const one = await nodebbLoginFromCookie(42, await sharedCookie({ sid: 'ses_1', iat: now() - 600 }), Date.now() - 600_000);
    const two = await nodebbLoginFromCookie(42, await sharedCookie({ sid: 'ses_2', iat: now() - 600 }), Date.now() - 600_000);
    const local = addNodebbSession(42, { loginAt: Date.now() - 600_000 });
    expect((await postToken(await logoutToken({ claims: { sid: 'ses_1', revoked_at: Date.now() - 1000 } }))).status).toBe(200);
    expect(nodebbSessionsOf(42)).toEqual([two]);
    expect(db.sessions.has(one) || db.sessions.has(local)).toBe(false);
  });

  it('refuses a revoked_at after the token was signed or not an integer, and sids that are not a list of strings', async () => {
    for (const claims of [{ revoked_at: Date.now() + 600_000 }, { revoked_at: '2026-01-01' }, { revoked_at: 1.5 }, { sids: 'ses_1' }, { sids: ['ses_1', 2] }]) {
      const body = await expectRefused(await postToken(await logoutToken({ claims: { sid: undefined, ...claims } })));
      expect(body.error_description).toMatch(/revoked_at|sids/);
    }
    expect(revoked).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------
// Logout at the forum and activity: calls to Tessera with the forum's client credentials.
// A stand-in Tessera records them and answers as told.
// ---------------------------------------------------------------------------------------
describe('a logout at the forum ends the Tessera session; forum activity is reported', () => {
  let tessera: Server;
  let calls: Array<{ method: string; path: string; authorization: string | undefined; body: unknown; at: number }>;
  let answer: (path: string, index: number) => number | 'hang';

  beforeAll(async () => {
    tessera = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        calls.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization, body: text ? JSON.parse(text) : null, at: Date.now() });
        const status = answer(req.url!, calls.length - 1);
        if (status === 'hang') return;
        res.writeHead(status, { 'content-type': 'application/json' }).end(status >= 400 ? '{"error":"SESSION_NOT_FOUND","message":"x"}' : '');
      });
    });
    await new Promise<void>((resolve) => tessera.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    tessera.closeAllConnections();
    await new Promise((resolve) => tessera.close(resolve));
  });
  beforeEach(async () => {
    calls = [];
    answer = (path) => (path === '/api/v1/logout' ? 200 : 204);
    settings.tessera = { issuer: `http://127.0.0.1:${(tessera.address() as AddressInfo).port}`, clientId: CLIENT_ID, clientSecret: 'forum-secret' };
    settings['session-sharing'] = { name: 'forum', secret: SHARING_SECRET, cookieName: 'token' };
    await db.sortedSetAdd('forum:uid', 42, 'usr_alice');
  });

  /** NodeBB's logout controller: the forum session destroyed, then static:user.loggedOut. */
  /**
   * NodeBB's logout controller (authenticationController.logout in 4.15.1): revokeSession
   * (out of uid:<uid>:sessions and the store), req.logout, the session destroyed, then
   * static:user.loggedOut { req, res, uid, sessionID } — the shared cookie still in req.cookies.
   */
  async function forumLogout(cookies: Record<string, string>, sessionID = addNodebbSession(42)) {
    await db.sortedSetRemove('uid:42:sessions', sessionID);
    await db.sessionStoreDestroy(sessionID);
    const req = { cookies, loggedIn: false, session: { save: (cb: () => void) => cb() } } as FakeRequest;
    return plugin.endTesseraSessionOnForumLogout({ req, res: {}, uid: 42, sessionID });
  }

  it('forgets the link of the NodeBB session the forum logout destroyed', async () => {
    const cookie = await sharedCookie({ sid: 'ses_1', iat: Math.floor(Date.now() / 1000) });
    const nbb = await nodebbLoginFromCookie(42, cookie);
    expect(linkOf(nbb)).toBeDefined();
    const result = await forumLogout({ token: cookie }, nbb);
    await result!.sent;
    expect(linkOf(nbb)).toBeUndefined();
    expect(nodebbSessionsOf(42)).not.toContain(nbb);
  });
  const expectedBasic = `Basic ${Buffer.from(`${CLIENT_ID}:forum-secret`).toString('base64')}`;

  it('posts the shared cookie to POST /api/v1/logout with the forum\'s credentials, scope session (everywhere)', async () => {
    const cookie = await sharedCookie({ sid: 'ses_1' });
    const result = await forumLogout({ token: cookie });
    expect(await result!.sent).toMatchObject({ status: 200 });
    expect(calls).toEqual([expect.objectContaining({ method: 'POST', path: '/api/v1/logout', authorization: expectedBasic, body: { token: cookie, scope: 'session' } })]);
  });

  it('with forumLogout = forum, ends only the forum\'s part (scope app)', async () => {
    settings.tessera!.forumLogout = 'forum';
    const result = await forumLogout({ token: await sharedCookie({ sid: 'ses_1' }) });
    await result!.sent;
    expect((calls[0]!.body as { scope: string }).scope).toBe('app');
  });

  it('does not hold the forum\'s logout while Tessera hangs, retries a 5xx, and gives up on a 4xx with an error log', async () => {
    answer = (_path, index) => (index === 0 ? 'hang' : 200);
    const started = Date.now();
    const hanging = await forumLogout({ token: await sharedCookie({ sid: 'ses_1' }) });
    expect(Date.now() - started).toBeLessThan(1000);
    await waitUntil(() => calls.length === 1);
    // The connection drops: a network error, retried.
    tessera.closeAllConnections();
    expect(await hanging!.sent).toMatchObject({ status: 200 });
    expect(calls).toHaveLength(2);
    calls = [];
    answer = (_path, index) => (index === 0 ? 503 : 200);
    const retried = await forumLogout({ token: await sharedCookie({ sid: 'ses_1' }) });
    expect(await retried!.sent).toMatchObject({ status: 200 });
    expect(calls).toHaveLength(2);
    calls = [];
    answer = () => 403;
    const refused = await forumLogout({ token: await sharedCookie({ sid: 'ses_1' }) });
    expect(await refused!.sent).toMatchObject({ status: 403 });
    expect(calls).toHaveLength(1);
    expect(logs.some((l) => l.level === 'error' && l.message.includes('HTTP 403'))).toBe(true);
  });

  it('sends nothing without a shared cookie, and warns when no client secret is set', async () => {
    expect(await forumLogout({})).toBeNull();
    delete settings.tessera!.clientSecret;
    expect(await forumLogout({ token: await sharedCookie({ sid: 'ses_1' }) })).toBeNull();
    expect(calls).toEqual([]);
    expect(logs.some((l) => l.level === 'warn' && l.message.includes('no client secret'))).toBe(true);
  });

  it('reports the first page view after a cookie login even before NodeBB\'s unawaited login hook recorded the link', async () => {
    const nbb = addNodebbSession(42);
    const cookie = await sharedCookie({ sid: 'ses_early', iat: Math.floor(Date.now() / 1000) });
    const view = (token: string, uid = 42): FakeRequest & { uid: number } => ({ cookies: { token }, loggedIn: true, uid, sessionID: nbb, session: { save: (cb) => cb() } });
    expect(linkOf(nbb)).toBeUndefined();
    expect(await (await plugin.reportActivity({ req: view(cookie) }))!.done).toBe('reported');
    expect(linkOf(nbb)).toEqual({ sid: 'ses_early', iat: expect.any(String) });
    expect(calls.map((c) => c.path)).toEqual(['/api/v1/sessions/ses_early/activity']);
    // Someone else's cookie in a browser signed in locally as uid 77: no link, no report.
    const other = addNodebbSession(77);
    expect(await plugin.reportActivity({ req: { ...view(cookie, 77), sessionID: other } })).toBeNull();
    expect(linkOf(other)).toBeUndefined();
  });

  it('reports activity for the Tessera session the NodeBB session is linked to now (signed in to Tessera again in the same browser)', async () => {
    const nbb = addNodebbSession(42);
    const req = (token: string): FakeRequest => ({ cookies: { token }, loggedIn: true, sessionID: nbb, session: { save: (cb) => cb() } });
    await plugin.linkTesseraSession({ uid: 42, req: req(await sharedCookie({ sid: 'ses_first', iat: Math.floor(Date.now() / 1000) })) });
    expect(await (await plugin.reportActivity({ req: req('') }))!.done).toBe('reported');
    // session-sharing re-validates the new cookie: action:user.loggedIn again, another sid.
    await plugin.linkTesseraSession({ uid: 42, req: req(await sharedCookie({ sid: 'ses_second', iat: Math.floor(Date.now() / 1000) })) });
    expect(await (await plugin.reportActivity({ req: req('') }))!.done).toBe('reported');
    expect(calls.map((c) => c.path)).toEqual(['/api/v1/sessions/ses_first/activity', '/api/v1/sessions/ses_second/activity']);
    // A cookie without iat (not Tessera's, but possible): the old link's iat does not stay.
    await plugin.linkTesseraSession({ uid: 42, req: req(await sharedCookie({ sid: 'ses_third' })) });
    expect(linkOf(nbb)).toEqual({ sid: 'ses_third' });
  });

  it('reports activity of a linked session at most once per interval, across processes; never for unlinked sessions; 0 turns it off', async () => {
    // Page views of NodeBB sessions whose Tessera session the plugin recorded at login.
    await db.setObject('tessera:session:nbb-1', { sid: 'ses_1' });
    await db.setObject('tessera:session:nbb-gone', { sid: 'ses_gone' });
    await db.setObject('tessera:session:nbb-2', { sid: 'ses_2' });
    const linked: FakeRequest = { cookies: {}, loggedIn: true, sessionID: 'nbb-1', session: { save: (cb) => cb() } };
    const first = await plugin.reportActivity({ req: linked });
    expect(await first!.done).toBe('reported');
    expect(calls).toEqual([expect.objectContaining({ method: 'POST', path: '/api/v1/sessions/ses_1/activity', authorization: expectedBasic })]);
    // The same process: remembered in memory, no call at all.
    expect(await plugin.reportActivity({ req: linked })).toBeNull();
    // Another NodeBB process (no memory): the claim in NodeBB's database stops it.
    forgetRecentActivity();
    expect(await (await plugin.reportActivity({ req: linked }))!.done).toBe('skipped');
    expect(calls).toHaveLength(1);
    // A session Tessera no longer knows: logged, no throw.
    answer = () => 404;
    const gone: FakeRequest = { cookies: {}, loggedIn: true, sessionID: 'nbb-gone', session: { save: (cb) => cb() } };
    expect(await (await plugin.reportActivity({ req: gone }))!.done).toBe('http-404');
    // Unlinked (a local login) or guest sessions, or reports turned off.
    expect(await plugin.reportActivity({ req: { cookies: {}, loggedIn: true, sessionID: 'nbb-local', session: { save: (cb) => cb() } } })).toBeNull();
    expect(await plugin.reportActivity({ req: { cookies: {}, loggedIn: false, sessionID: 'nbb-2', session: { save: (cb) => cb() } } })).toBeNull();
    settings.tessera!.activityMinutes = '0';
    forgetRecentActivity();
    const other: FakeRequest = { cookies: {}, loggedIn: true, sessionID: 'nbb-2', session: { save: (cb) => cb() } };
    expect(await plugin.reportActivity({ req: other })).toBeNull();
    expect(calls).toHaveLength(2);
    // … and on again: the same page view is reported.
    answer = () => 204;
    settings.tessera!.activityMinutes = '5';
    expect(await (await plugin.reportActivity({ req: other }))!.done).toBe('reported');
    expect(calls.at(-1)).toMatchObject({ path: '/api/v1/sessions/ses_2/activity' });
  });
});

// ---------------------------------------------------------------------------------------
// The issue's scenario end to end: a real Tessera node (SQLite, its outbox worker, its
// login page issuing the shared cookie) and the forum stand-in. The forum answers 400 while
// an administrator ends all of the user's sessions; the user signs in again; the forum
// recovers and Tessera's retry — signed afresh, iat after the new sign-in — arrives.
// ---------------------------------------------------------------------------------------
describe('a real Tessera node retries a user-wide logout into a forum where the user signed in again', () => {
  let node: TesseraNode;
  const PASSWORD = 'correct horse battery staple';

  beforeAll(async () => {
    node = await startTesseraNode({
      outbox: { backoffBaseMs: 50, backoffMaxMs: 200, pollIntervalMs: 20, timeoutMs: 5_000 },
      sharedCookie: { enabled: true, secret: SHARING_SECRET, clientId: CLIENT_ID },
    });
    await registerApp(node.url, { client_id: CLIENT_ID, name: 'forum', backchannel_logout_uri: `${forumUrl}/tessera/backchannel-logout` });
  });
  afterAll(async () => node?.close());

  /**
   * Signs in at Tessera's login page; returns the shared cookie then held. The HTTP form
   * client is enough: what is tested is the cookie the server sets, not a browser's rules.
   */
  async function signInAtTessera(username: string): Promise<string> {
    const browser = createFormClient();
    const login = await browser.open(`${node.url}/login`);
    const done = await browser.submitForm(login, { action: '/login', fields: { username, password: PASSWORD } });
    expect(done.hops[0]!.status).toBe(303);
    return browser.jar.get('token', node.url)!.value;
  }

  it('ends the NodeBB session of the ended Tessera session and keeps the new one', async () => {
    const username = `alice${Math.random().toString(36).slice(2, 8)}`;
    const created = await callAdmin<{ user: { id: string } }>(node.url, 'POST', '/users', { username, email: `${username}@example.test`, password: PASSWORD });
    const userId = created.body.user.id;
    settings['session-sharing'] = { name: 'forum', secret: SHARING_SECRET, cookieName: 'token' };
    await db.sortedSetAdd('forum:uid', 42, userId);
    db.zsets.delete('uid:42:sessions');

    const oldCookie = await signInAtTessera(username);
    const oldNodebb = await nodebbLoginFromCookie(42, oldCookie);
    const oldSid = linkOf(oldNodebb)!.sid!;

    // The forum is not configured yet: it answers every logout token 400.
    settings.tessera = { issuer: node.url };
    const ended = await callAdmin<{ revoked: string[] }>(node.url, 'DELETE', `/users/${userId}/sessions`);
    expect(ended.body.revoked).toEqual([oldSid]);
    const deliveries = async () => (await callAdmin<{ deliveries: DeliveryJson[] }>(node.url, 'GET', `/sessions/${oldSid}/deliveries`)).body.deliveries;
    await waitFor('two refused attempts', async () => ((await deliveries())[0]!.attempts >= 2 ? true : undefined));
    expect((await deliveries())[0]).toMatchObject({ status: 'pending', last_status: 400, scope: 'user' });

    // The user signs in again and the forum logs them in from the new cookie.
    const newCookie = await signInAtTessera(username);
    const newNodebb = await nodebbLoginFromCookie(42, newCookie);
    expect(linkOf(newNodebb)!.sid).not.toBe(oldSid);
    // Over a second later the forum recovers: the delivering attempt's iat is then later
    // than the new cookie's iat, which the 0.1 plugin took as "ended".
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    settings.tessera = { issuer: node.url, clientId: CLIENT_ID };
    await waitFor('delivered', async () => ((await deliveries())[0]!.status === 'delivered' ? true : undefined));

    expect(db.sessions.has(oldNodebb)).toBe(false);
    expect(nodebbSessionsOf(42)).toEqual([newNodebb]);
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: newCookie })).resolves.toBeUndefined();
    await expect(plugin.refuseEndedSessionCookie({ uid: 42, isNewUser: false, token: oldCookie })).rejects.toThrow('tessera-session-ended');
  });
});

// ---------------------------------------------------------------------------------------
// A session NodeBB left out of uid:<uid>:sessions, as a sign-in through
// nodebb-plugin-sso-oauth2-multiple 2.0.0 did on the real forum: the plugin's own early
// onSuccessfulLogin listed the pre-login session id, NodeBB's req.login regenerated the
// session, and NodeBB's onSuccessfulLogin for the new id returned early ("already called").
// ---------------------------------------------------------------------------------------
describe('a signed-in session NodeBB did not list is listed at its first page view, so that logouts reach it', () => {
  function ssoSignIn(uid: number, loginAt: number) {
    const preLogin = addNodebbSession(uid, { loginAt });
    db.sessions.delete(preLogin); // regenerated away by req.login
    const id = `nbb-${randomUUID()}`;
    db.sessions.set(id, { passport: { user: uid }, meta: { datetime: loginAt } });
    const req = { cookies: {}, loggedIn: true, uid, sessionID: id, session: { ...db.sessions.get(id)!, save: (cb: () => void) => cb() } };
    return { id, req };
  }

  it('lists it with its login time; a logout of the user then ends it', async () => {
    await db.setObject('tesseraId:uid', { usr_alice: '42' });
    activePlugins.add('nodebb-plugin-sso-oauth2-multiple');
    db.zsets.delete('uid:42:sessions');
    const loginAt = Date.now() - 30_000;
    const { id, req } = ssoSignIn(42, loginAt);
    expect(nodebbSessionsOf(42)).toEqual([]);
    expect(await plugin.listUnlistedSession({ req })).toBe(true);
    expect(db.zsets.get('uid:42:sessions')!.get(id)).toBe(loginAt);
    expect(logs.some((l) => l.level === 'info' && l.message.includes('had not listed'))).toBe(true);
    // Already listed: no second write (remembered), and no write for a listed session in another process either.
    expect(await plugin.listUnlistedSession({ req })).toBe(false);
    forgetListedSessions();
    expect(await plugin.listUnlistedSession({ req })).toBe(false);
    expect((await postToken(await logoutToken({ claims: { sid: 'ses_alice_1', revoked_at: Date.now() } }))).status).toBe(200);
    expect(db.sessions.has(id)).toBe(false);
  });

  it('leaves the throw-away session of an API token request alone (NodeBB does not list it, and destroys it)', async () => {
    const req = { cookies: {}, loggedIn: true, uid: 42, sessionID: 'nbb-api', headers: { authorization: 'Bearer nodebb-api-token' }, session: { save: (cb: () => void) => cb() } };
    expect(await plugin.listUnlistedSession({ req })).toBe(false);
    expect(db.zsets.get('uid:42:sessions')?.has('nbb-api') ?? false).toBe(false);
  });

  it('leaves guests and listed sessions alone', async () => {
    const listedId = addNodebbSession(42);
    expect(await plugin.listUnlistedSession({ req: { cookies: {}, loggedIn: true, uid: 42, sessionID: listedId, session: { save: (cb) => cb() } } })).toBe(false);
    expect(await plugin.listUnlistedSession({ req: { cookies: {}, loggedIn: false, uid: 0, sessionID: 'nbb-guest', session: { save: (cb) => cb() } } })).toBe(false);
    expect(db.zsets.get('uid:0:sessions')?.size ?? 0).toBe(0);
  });
});

describe('the door into NodeBB (lib/nodebb.js)', () => {
  it('uses NodeBB 4.15\'s global nodebb.require when there is one, not the deprecated require.main.require', () => {
    const { nodebb } = requireCjs(`${pluginDir}lib/nodebb.js`) as { nodebb(): Record<string, unknown> };
    const asked: string[] = [];
    const previous = (globalThis as { nodebb?: unknown }).nodebb;
    (globalThis as { nodebb?: unknown }).nodebb = { require: (id: string) => (asked.push(id), { id }) };
    setModuleLoader();
    try {
      expect(nodebb().db).toEqual({ id: './src/database' });
      expect(asked).toEqual(['./src/database', './src/user', './src/meta', './src/plugins', './src/routes/helpers', 'nconf', 'winston']);
    } finally {
      (globalThis as { nodebb?: unknown }).nodebb = previous;
      installFakeNodebb();
    }
  });
});
