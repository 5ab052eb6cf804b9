// One target of the protected-route benchmark: a plain node:http server with one route,
// `GET /me`, which answers a small JSON of the caller's identity. Forked with an IPC channel;
// the parent sends { variant, … } and gets { url, … } back once the server listens. Every
// variant runs in its own process and has the same server, the same routing and the same
// response writer; only the guard differs:
//
//   unguarded       no check (the baseline); answers a fixed identity
//   tessera         @tessera/sdk/node `withSession` (local verification, token cache,
//                   revocation set; the SDK follows the revocation feed, started before listen)
//   jose            jose `jwtVerify` on every request against the issuer's JWKS (fetched once,
//                   held locally with createLocalJWKSet), no token cache
//   express-session express-session's middleware function called directly on node:http's
//                   req/res (no Express), MemoryStore; sessions made up front via GET /login
//   better-auth     better-auth `auth.api.getSession` (cookie, no cookie cache) on SQLite through
//                   better-sqlite3; users and sessions made up front with `auth.api.signUpEmail`
//
// While `record` is on (a check run before the timed rounds, never during them), the server
// counts the distinct credentials and identities it served, so the parent can verify that
// the load generator really rotates credentials and every one of them is accepted.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { stopOnParentExit } from '../lib/children.mjs';

const JSON_TYPE = 'application/json; charset=utf-8';

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const unauthorized = (res) => sendJson(res, 401, { error: 'UNAUTHORIZED' });

let recording = null;
function record(credential, identity) {
  if (recording === null) return;
  recording.requests++;
  recording.credentials.add(credential);
  recording.identities.add(identity);
}

/** The response every variant sends for an authenticated caller. */
function sendMe(res, sub, sid) {
  sendJson(res, 200, { sub, sid });
}

async function unguarded() {
  const sub = `usr_${randomBytes(12).toString('base64url')}`;
  const sid = `ses_${randomBytes(16).toString('base64url')}`;
  return {
    me(req, res) {
      if (recording) record(req.headers.authorization ?? req.headers.cookie, sub);
      sendMe(res, sub, sid);
    },
  };
}

async function tesseraGuard({ issuer, clientId, clientSecret }) {
  const { createTessera } = await import('@tessera/sdk');
  const { withSession } = await import('@tessera/sdk/node');
  const tessera = createTessera({ issuer, clientId, clientSecret });
  // As in production: caught up with the revocation log and following it before serving.
  await tessera.start();
  return {
    me: withSession(tessera, (req, res) => {
      if (recording) record(req.headers.authorization, req.tessera.sub);
      sendMe(res, req.tessera.sub, req.tessera.sid);
    }),
    status: () => tessera.feedStatus(),
    close: () => tessera.close(),
  };
}

async function joseGuard({ issuer, clientId }) {
  const { createLocalJWKSet, jwtVerify } = await import('jose');
  const response = await fetch(`${issuer}/.well-known/jwks.json`);
  if (!response.ok) throw new Error(`JWKS: ${response.status}`);
  const keys = createLocalJWKSet(await response.json());
  const options = { issuer, audience: clientId, algorithms: ['EdDSA'], typ: 'at+jwt', requiredClaims: ['sub', 'sid', 'exp'] };
  return {
    async me(req, res) {
      const authorization = req.headers.authorization;
      if (typeof authorization !== 'string' || !authorization.startsWith('Bearer ')) return unauthorized(res);
      let payload;
      try {
        ({ payload } = await jwtVerify(authorization.slice(7), keys, options));
      } catch {
        return unauthorized(res);
      }
      if (recording) record(authorization, payload.sub);
      sendMe(res, payload.sub, payload.sid);
    },
  };
}

async function expressSessionGuard({ secret }) {
  const { default: session } = await import('express-session');
  const middleware = session({
    secret,
    name: 'sid',
    store: new session.MemoryStore(),
    // The settings a production app would use: no writes for unchanged sessions, no empty sessions.
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', secure: false, maxAge: 86_400_000 },
  });
  return {
    me(req, res) {
      middleware(req, res, (error) => {
        if (error) return sendJson(res, 500, { error: 'INTERNAL' });
        const user = req.session?.user;
        if (!user) return unauthorized(res);
        if (recording) record(req.headers.cookie, user.sub);
        sendMe(res, user.sub, req.sessionID);
      });
    },
    // Setup only (before any timing): a sign-in that stores the user in a new session.
    login(req, res) {
      middleware(req, res, (error) => {
        if (error) return sendJson(res, 500, { error: 'INTERNAL' });
        const n = new URL(req.url, 'http://x').searchParams.get('user');
        req.session.user = { sub: `usr_${n}` };
        sendJson(res, 200, { ok: true });
      });
    },
  };
}

async function betterAuthGuard({ secret, dataDir, users }) {
  const { betterAuth } = await import('better-auth');
  const { getMigrations } = await import('better-auth/db/migration');
  const { fromNodeHeaders } = await import('better-auth/node');
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(dataDir, 'better-auth.db'));
  db.pragma('journal_mode = WAL');
  const auth = betterAuth({
    database: db,
    secret,
    baseURL: 'http://127.0.0.1',
    telemetry: { enabled: false },
    logger: { level: 'error' },
    emailAndPassword: {
      enabled: true,
      // Setup only: signing up 1,000 users with better-auth's default scrypt takes about
      // 0.2 s each on this machine. getSession never hashes a password, so a fast hash here
      // changes nothing that is measured.
      password: {
        hash: async (password) => createHash('sha256').update(password).digest('hex'),
        verify: async ({ hash, password }) => createHash('sha256').update(password).digest('hex') === hash,
      },
    },
  });
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  const cookies = [];
  for (let i = 0; i < users; i++) {
    const { headers } = await auth.api.signUpEmail({ body: { email: `bench-${i}@example.test`, password: `bench password ${i}`, name: `Bench ${i}` }, returnHeaders: true });
    const setCookie = headers.get('set-cookie') ?? '';
    const pair = setCookie.split(';')[0];
    if (!pair.startsWith('better-auth.session_token=')) throw new Error(`signUpEmail gave no session cookie: ${setCookie}`);
    cookies.push(pair);
  }
  return {
    async me(req, res) {
      const result = await auth.api.getSession({ headers: fromNodeHeaders(req.headers) });
      if (!result) return unauthorized(res);
      if (recording) record(req.headers.cookie, result.user.id);
      sendMe(res, result.user.id, result.session.id);
    },
    setup: { cookies },
    close: () => db.close(),
  };
}

/**
 * The handler's own cost per request, in process and without HTTP: `guard.me` is called with
 * a minimal request (a fresh header string each time, as the HTTP parser makes one per
 * request, from `values` in rotation) and a response whose `end` resolves the call. Returns
 * the median over `reps` runs of `iterations` calls, in µs of CPU time per call, after a
 * warm-up.
 */
async function measureCost(guard, { header, values, iterations = 100_000, reps = 5 }) {
  const bytes = values.map((v) => Buffer.from(v, 'latin1'));
  const call = (i) =>
    new Promise((resolve) => {
      const res = { headersSent: false, statusCode: 200, writeHead(status) { this.statusCode = status; return this; }, setHeader() {}, end: () => resolve(res.statusCode) };
      guard.me({ url: '/me', method: 'GET', headers: { host: '127.0.0.1', [header]: bytes[i % bytes.length].toString('latin1') } }, res);
    });
  // CPU time, not wall time: on a shared machine the process may wait for a core mid-run.
  const run = async (n) => {
    const before = process.cpuUsage();
    for (let i = 0; i < n; i++) if ((await call(i)) !== 200) throw new Error('the guard refused a valid credential');
    const used = process.cpuUsage(before);
    return (used.user + used.system) / n;
  };
  await run(Math.floor(iterations / 5));
  const results = [];
  for (let r = 0; r < reps; r++) results.push(await run(iterations));
  results.sort((a, b) => a - b);
  return { microsPerCall: results[results.length >> 1], runs: results };
}

const VARIANTS = { unguarded, tessera: tesseraGuard, jose: joseGuard, 'express-session': expressSessionGuard, 'better-auth': betterAuthGuard };

process.once('message', async (config) => {
  let guard;
  try {
    const make = VARIANTS[config.variant];
    if (!make) throw new Error(`unknown variant ${config.variant}`);
    guard = await make(config);
  } catch (error) {
    process.send?.({ error: String(error?.stack ?? error) });
    return;
  }
  const server = createServer((req, res) => {
    if (req.url === '/me') return guard.me(req, res);
    if (guard.login && req.url.startsWith('/login?')) return guard.login(req, res);
    sendJson(res, 404, { error: 'NOT_FOUND' });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ url: `http://127.0.0.1:${server.address().port}`, ...(guard.setup ?? {}) }));

  process.on('message', async (m) => {
    if (m?.type === 'cost') {
      process.send?.({ type: 'cost', ...(await measureCost(guard, m)) });
    } else if (m?.type === 'record') {
      recording = { requests: 0, credentials: new Set(), identities: new Set() };
      process.send?.({ type: 'recording' });
    } else if (m?.type === 'report') {
      const r = recording ?? { requests: 0, credentials: new Set(), identities: new Set() };
      recording = null;
      process.send?.({ type: 'report', requests: r.requests, distinctCredentials: r.credentials.size, distinctIdentities: r.identities.size, sdk: guard.status?.() ?? null });
    }
  });
  stopOnParentExit(async () => {
    server.closeAllConnections?.();
    server.close();
    await guard.close?.();
  });
});
