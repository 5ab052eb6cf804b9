// The route-walking contract: every route of the OpenAPI document, called over a real socket
// the way real clients call it (a content type on an empty body, Accept: */*, HEAD where GET
// exists, a trailing slash, a header sent twice): a route that worked without the habit works
// with it. Then every route gets bad numbers, deep JSON, control characters and oversized
// values: always a 4xx with the error envelope, never a 5xx. New routes are walked as soon
// as they are in the document; the table below only says how to call a route RIGHT.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, type ErrorCode } from '@tessera/core';
import {
  ADMIN_TOKEN,
  SITE_ORIGIN,
  createApp,
  createTestServer,
  adminRequest,
  requestLogoutUrl,
  startAppSession,
  unique,
  type TestServer,
} from './support.js';
import { closeClient, listen, send, type Framing, type RawResponse, type SendOptions } from './http-client.js';

interface Parameter {
  in: 'query' | 'path' | 'header' | 'cookie';
  name: string;
  schema?: { type?: string; maximum?: number; minimum?: number };
}
interface Operation {
  parameters?: Parameter[];
  security?: Array<Record<string, string[]>>;
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, { type?: string }> } }> };
}
interface Route {
  method: string;
  path: string;
  op: Operation;
}

/** What one call needs: a fresh user with two sessions, a trusted app, a logout token. */
interface Fixture {
  userId: string;
  clientId: string;
  basic: string;
  tokens: [string, string];
  handles: [string, string];
  logoutToken: string;
  /** A fresh admin console sign-in (cookie tessera_admin). */
  consoleToken: string;
  /** The app's Shared Signals access token (client_credentials, every scope it may hold) and a poll stream of its own. */
  ssfToken: string;
  streamId: string;
}

// The console forms' double-submit CSRF token: the same value as cookie and field.
const CONSOLE_CSRF = 'walkerCsrfToken0123456789abcdefghijkl';

let t: TestServer;
let base: string;
let routes: Route[];

beforeAll(async () => {
  // A poll without a body is a long poll: one second, so the walk does not wait 30.
  t = await createTestServer({ file: { rateLimit: { enabled: false }, ssf: { longPollSeconds: 1 } } });
  base = await listen(t);
  const doc = (await send(base, 'GET', '/openapi.json')).json<{ paths: Record<string, Record<string, Operation>> }>();
  routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op })));
});
afterAll(async () => {
  await t.close();
  closeClient();
});

/**
 * A fresh fixture. Only POST /v1/password needs a user with a password; the others get a
 * user without one (an argon2 hash per call would make the walk several times slower).
 */
async function fixture(withPassword = false): Promise<Fixture> {
  // The app is also a Shared Signals receiver client (and trusted: global token revocation).
  const app = await createApp(t, { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
  const issued = await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: app.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials' });
  expect(issued.statusCode, issued.body).toBe(200);
  const ssfToken = issued.json<{ access_token: string }>().access_token;
  const stream = await t.app.inject({ method: 'POST', url: '/ssf/streams', headers: { authorization: `Bearer ${ssfToken}` }, payload: { events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'] } });
  expect(stream.statusCode, stream.body).toBe(201);
  const streamId = stream.json<{ stream_id: string }>().stream_id;
  const created = await adminRequest(t, 'POST', '/users', { username: unique('walker'), ...(withPassword ? { password: PASSWORD } : {}) });
  expect(created.statusCode, created.body).toBe(201);
  const userId = created.json<{ user: { id: string } }>().user.id;
  const sessions = [await startAppSession(t, app, userId), await startAppSession(t, app, userId)];
  const { logoutToken } = await requestLogoutUrl(t, sessions[0]!.token);
  // A consent the user gave the app on the OpenID Provider's consent page, to withdraw.
  await t.store.saveConsent({ userId, clientId: app.clientId, scope: 'openid', createdAt: t.clock.now() });
  const consoleToken = (await t.authority.admin.signInToConsole(ADMIN_TOKEN))!.token;
  return { userId, clientId: app.clientId, basic: app.basic, tokens: [sessions[0]!.token, sessions[1]!.token], handles: [sessions[0]!.handle, sessions[1]!.handle], logoutToken, consoleToken, ssfToken, streamId };
}

const PASSWORD = 'correct horse battery staple';

const key = (r: Route) => `${r.method} ${r.path}`;
const isStream = (r: Route) => r.path.endsWith('/stream');

/** The path with its parameters filled from the fixture. */
function pathOf(r: Route, fx: Fixture, overrides: Record<string, string> = {}): string {
  return r.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    if (overrides[name] !== undefined) return overrides[name]!;
    if (name === 'handle') return fx.handles[1];
    if (name === 'client_id') return fx.clientId;
    if (name === 'event') return '1';
    if (name === 'stream_id' || r.path.startsWith('/admin/api/ssf/streams') || r.path.startsWith('/admin/ssf/')) return fx.streamId;
    if (r.path.startsWith('/admin/api/apps') || r.path.startsWith('/admin/apps')) return fx.clientId;
    if (r.path.startsWith('/admin/api/deliveries') || r.path.startsWith('/admin/deliveries')) return '1';
    return fx.userId;
  });
}

/** The credentials a route's security asks for. */
function authOf(r: Route, fx: Fixture): Record<string, string> {
  const schemes = (r.op.security ?? []).flatMap((s) => Object.keys(s));
  if (schemes.includes('admin') || r.path === '/metrics') return { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (schemes.includes('adminConsole')) return { cookie: `tessera_admin=${fx.consoleToken}; tessera_admin_csrf=${CONSOLE_CSRF}` };
  if (schemes.includes('client')) return { authorization: fx.basic };
  if (schemes.some((s) => s.startsWith('session'))) return { authorization: `Bearer ${fx.tokens[0]}` };
  if (schemes.includes('ssfBearer')) return { authorization: `Bearer ${fx.ssfToken}` };
  return {};
}

// How to call a route right beyond its credentials: the query and headers it needs, and a
// valid body. Every other route is called with its credentials alone.
function rightCall(r: Route, fx: Fixture): { query?: string; headers?: Record<string, string>; body?: { type: string; text: string } } {
  const json = (value: unknown) => ({ type: 'application/json', text: JSON.stringify(value) });
  // The console's forms: form-encoded, with the CSRF token that matches authOf's cookie.
  const consoleForm = (fields: Record<string, string> = {}) => ({ body: { type: 'application/x-www-form-urlencoded', text: new URLSearchParams({ csrf: CONSOLE_CSRF, ...fields }).toString() } });
  if (r.method === 'POST' && r.path.startsWith('/admin/') && !r.path.startsWith('/admin/api/')) {
    switch (key(r)) {
      case 'POST /admin/users': return consoleForm({ username: unique('walker') });
      case 'POST /admin/users/{id}/disable': return consoleForm({ disabled: '1' });
      case 'POST /admin/users/{id}/delete': return consoleForm({ confirm: '1' });
      case 'POST /admin/users/{id}/sessions/end': return consoleForm({ scope: 'all' });
      case 'POST /admin/apps': return consoleForm({ name: unique('walker-app') });
      case 'POST /admin/apps/{id}': return consoleForm({ name: unique('renamed') });
      case 'POST /admin/apps/{id}/delete': return consoleForm({ confirm: '1' });
      case 'POST /admin/ssf/{id}/status': return consoleForm({ status: 'paused', reason: 'walked' });
      case 'POST /admin/ssf/{id}/audience': return consoleForm({ aud: 'https://receiver.example.test walked' });
      case 'POST /admin/login': return { body: { type: 'application/x-www-form-urlencoded', text: new URLSearchParams({ csrf: CONSOLE_CSRF, token: ADMIN_TOKEN }).toString() }, headers: { cookie: `tessera_admin_csrf=${CONSOLE_CSRF}` } };
      default: return consoleForm();
    }
  }
  switch (key(r)) {
    case 'GET /v1/logout': return { query: `?token=${encodeURIComponent(fx.logoutToken)}` };
    case 'GET /v1/logout/browser': return { headers: { authorization: `Bearer ${fx.tokens[0]}` } };
    case 'POST /v1/logout': return { headers: { origin: SITE_ORIGIN, 'x-tessera-csrf': '1', authorization: `Bearer ${fx.tokens[0]}` } };
    case 'DELETE /v1/logout/api': return { body: json({ session_token: fx.tokens[1] }) };
    case 'POST /api/v1/logout': return { body: { type: 'text/plain', text: fx.tokens[1] } };
    case 'POST /v1/sessions': return { body: json({ user_id: fx.userId }) };
    case 'POST /v1/password': return { body: json({ current_password: PASSWORD, new_password: 'another long passphrase' }) };
    case 'POST /v1/token': return { body: { type: 'application/x-www-form-urlencoded', text: `grant_type=session_token&session_token=${encodeURIComponent(fx.tokens[0])}` } };
    case 'POST /v1/introspect': return { body: json({ token: fx.tokens[0] }) };
    case 'POST /admin/api/users': return { body: json({ username: unique('walker'), password: 'correct horse battery staple' }) };
    case 'PATCH /admin/api/users/{id}': return { body: json({ first_name: 'Walker' }) };
    case 'POST /admin/api/sessions/revoke': return { body: json({ handles: [fx.handles[1]] }) };
    case 'POST /admin/api/apps': return { body: json({ name: unique('walker-app') }) };
    case 'PATCH /admin/api/apps/{id}': return { body: json({ name: unique('renamed') }) };
    case 'POST /oidc/register': return { body: json({ redirect_uris: ['https://walker.example/cb'], client_name: unique('walker-rp') }) };
    case 'POST /ssf/streams': return { body: json({}) };
    case 'GET /ssf/status': return { query: `?stream_id=${fx.streamId}` };
    case 'DELETE /ssf/streams': return { query: `?stream_id=${fx.streamId}` };
    case 'PATCH /ssf/streams': return { body: json({ stream_id: fx.streamId, description: 'walked' }) };
    case 'PUT /ssf/streams': return { body: json({ stream_id: fx.streamId }) };
    case 'POST /ssf/status': return { body: json({ stream_id: fx.streamId, status: 'paused' }) };
    case 'POST /ssf/verify': return { body: json({ stream_id: fx.streamId, state: 'walk' }) };
    case 'POST /ssf/subjects/add': return { body: json({ stream_id: fx.streamId, subject: { format: 'opaque', id: fx.userId } }) };
    case 'POST /ssf/subjects/remove': return { body: json({ stream_id: fx.streamId, subject: { format: 'opaque', id: fx.userId } }) };
    case 'POST /ssf/poll/{stream_id}': return { body: json({ returnImmediately: true }) };
    case 'POST /ssf/receive/{name}': return { body: { type: 'application/secevent+jwt', text: 'e30.e30.sig' } };
    case 'POST /oauth/global-token-revocation': return { body: json({ sub_id: { format: 'opaque', id: fx.userId } }) };
    case 'POST /admin/api/ssf/streams/{id}/status': return { body: json({ status: 'paused' }) };
    case 'PUT /admin/api/ssf/streams/{id}/audience': return { body: json({ aud: ['https://receiver.example.test', 'walked'] }) };
    default: return {};
  }
}

/** Calls a route on a fresh fixture, right, then with `change` applied. */
async function call(r: Route, change: { method?: string; slash?: boolean; headers?: SendOptions['headers']; withBody?: boolean; emptyAs?: { type: string; framing: Framing } } = {}): Promise<RawResponse> {
  const fx = await fixture(key(r) === 'POST /v1/password');
  const right = rightCall(r, fx);
  const headers: SendOptions['headers'] = { ...authOf(r, fx), ...right.headers };
  let body: string | undefined;
  let framing: Framing = 'none';
  if (change.emptyAs) {
    headers['content-type'] = change.emptyAs.type;
    framing = change.emptyAs.framing;
  } else if (change.withBody !== false && right.body) {
    headers['content-type'] = right.body.type;
    body = right.body.text;
  } else if (r.method === 'POST' || r.method === 'PATCH') framing = 'length0';
  return send(base, change.method ?? r.method, pathOf(r, fx) + (change.slash ? '/' : '') + (right.query ?? ''), { headers: { ...headers, ...change.headers }, body, framing, headersOnly: isStream(r) });
}

const problems: string[] = [];

// The OAuth endpoints of the OpenID Provider answer errors in the format their specs name
// (RFC 6749 §5.2, RFC 6750 §3): `error` is an OAuth code, with `error_description` and
// Tessera's `message` beside it (oidc/protocol.ts, sendOAuthError).
// Dynamic client registration answers in RFC 7591 §3.2.2's codes.
const OAUTH_ROUTE = /^(GET|POST) \/oidc\/(token|userinfo|register)[ /]/;
const OAUTH_ERRORS: Record<string, number[]> = {
  invalid_request: [400], invalid_client: [401], invalid_grant: [400], unauthorized_client: [400],
  unsupported_grant_type: [400], invalid_scope: [400], invalid_token: [401], insufficient_scope: [403],
  invalid_client_metadata: [400], invalid_redirect_uri: [400],
};

/** Records a 5xx, or a 4xx without the error envelope (a catalogue code with its status). */
function checkEnvelope(what: string, res: RawResponse, method = 'GET'): void {
  if (res.status >= 500) problems.push(`${what} → ${res.status} ${res.body.slice(0, 200)}`);
  if (res.status < 400 || res.status >= 500) return;
  // A HEAD answer has no body: its content type says what GET would send.
  if (method === 'HEAD') {
    // (A hosted page's 400/401/403 is a page, as for GET below.)
    const page = (res.status === 400 || res.status === 401 || res.status === 403) && /^text\/html/.test(String(res.headers['content-type']));
    if (!/^application\/json/.test(String(res.headers['content-type'])) && !page) problems.push(`${what} → ${res.status} with content type ${res.headers['content-type']}`);
    return;
  }
  try {
    const body = JSON.parse(res.body) as { error?: string; message?: unknown };
    if (!/^application\/json/.test(String(res.headers['content-type']))) throw new Error('not JSON');
    const oauth = OAUTH_ROUTE.test(what) && OAUTH_ERRORS[String(body.error)]?.includes(res.status) && typeof (body as { error_description?: unknown }).error_description === 'string';
    if ((ERROR_CATALOGUE[body.error as ErrorCode]?.status !== res.status && !oauth) || typeof body.message !== 'string') throw new Error('not the envelope');
  } catch {
    // A hosted page's error is a page: a 400/401/403 form page, or (the admin console) an
    // error page that names its catalogue code, answered with that code's status.
    const html = /^text\/html/.test(String(res.headers['content-type']));
    const code = /\(([A-Z_]+)\)<\/p>/.exec(res.body)?.[1];
    const coded = html && code !== undefined && ERROR_CATALOGUE[code as ErrorCode]?.status === res.status;
    if (!coded && (!(res.status === 401 || res.status === 403 || res.status === 400) || !html)) problems.push(`${what} → ${res.status} without the envelope: ${res.body.slice(0, 200)}`);
  }
}

/** The catalogue code of an error: the envelope's, or the one an error page names. */
function codeOf(res: RawResponse): string | undefined {
  if (/^text\/html/.test(String(res.headers['content-type']))) return /\(([A-Z_]+)\)<\/p>/.exec(res.body)?.[1];
  return res.json<{ error?: string }>().error;
}

function expectNoProblems(): void {
  const found = problems.splice(0);
  expect(found, found.join('\n')).toEqual([]);
}

const worked = (res: RawResponse) => res.status < 400;

/** Writes raw bytes to the server and reads until it closes the connection. */
function rawRequest(base: string, text: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.end(text));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', (error) => ((error as { code?: string }).code === 'ECONNRESET' ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(error)));
  });
}

/** Percent-encodes a value; a lone surrogate (not encodable) is sent as its raw UTF-8 bytes. */
function encode(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return '%ED%A0%80';
  }
}

describe('route walking: client habits', () => {
  it('the document has the routes of the contract (the walk is not vacuous)', () => {
    expect(routes.length).toBeGreaterThanOrEqual(40);
    expect(routes.map(key)).toEqual(expect.arrayContaining(['DELETE /admin/api/sessions/{handle}', 'DELETE /v1/sessions', 'POST /api/v1/logout', 'GET /v1/revocations']));
  });

  it('an empty body with any content type (and any framing) is no body: the route answers as it does without one', async () => {
    const types = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml'];
    const deletes: string[] = [];
    for (const r of routes.filter((r) => r.method !== 'GET')) {
      const plain = await call(r, { withBody: false });
      checkEnvelope(`${key(r)} without a body`, plain);
      if (r.method === 'DELETE' && worked(plain)) deletes.push(key(r));
      for (const type of types) {
        for (const framing of ['length0', 'chunked'] as const) {
          if (framing === 'chunked' && type !== 'application/json') continue;
          const res = await call(r, { emptyAs: { type, framing } });
          const what = `${key(r)} with ${type}, empty (${framing})`;
          checkEnvelope(what, res);
          if (res.status !== plain.status) problems.push(`${what} → ${res.status}, without a body → ${plain.status}: ${res.body.slice(0, 200)}`);
        }
      }
    }
    // Every DELETE but the one that takes its token in a body works without a body.
    expect(deletes.length).toBe(routes.filter((r) => r.method === 'DELETE').length - 1);
    expect(deletes).not.toContain('DELETE /v1/logout/api');
    expectNoProblems();
  }, 300_000);

  it('Accept: */*, a trailing slash, a header sent twice, HEAD where GET exists, and a JSON content type on a bodiless GET change nothing', async () => {
    const failedRight: string[] = [];
    for (const r of routes) {
      const right = await call(r);
      checkEnvelope(`${key(r)} called right`, right);
      if (!worked(right)) failedRight.push(`${key(r)} → ${right.status}`);
      const variants: Array<[string, Parameters<typeof call>[1]]> = [
        ['Accept: */*', { headers: { accept: '*/*' } }],
        ['a trailing slash', { slash: true }],
        ['Accept sent twice', { headers: { accept: ['application/json', 'application/json'] } }],
      ];
      if (r.method === 'GET') {
        variants.push(['HEAD', { method: 'HEAD' }]);
        // A shared headers object (fetch, axios defaults, curl -H on every call) puts a JSON
        // content type on GETs too, which have no body.
        for (const type of ['application/json', 'application/json; charset=utf-8']) variants.push([`Content-Type: ${type} and no body`, { headers: { 'content-type': type } }]);
      }
      for (const [what, change] of variants) {
        const res = await call(r, change);
        checkEnvelope(`${key(r)} with ${what}`, res, change?.method);
        if (worked(right) !== worked(res) || (r.method !== 'GET' && res.status !== right.status)) problems.push(`${key(r)} with ${what} → ${res.status}, called right → ${right.status}: ${res.body.slice(0, 200)}`);
      }
    }
    // The walk is not vacuous: every route but these works when called right: the login and
    // sign-out forms, and the three forms of the devices page (/account, walked right in
    // account-page.test.ts), need their CSRF cookie; no delivery and no dead SET exists to
    // retry (both retried in admin-console.test.ts and ssf-events.test.ts), and no upstream
    // SSF transmitter is configured to push (received in test/e2e/ssf-upstream.test.ts); the OpenID
    // Provider's routes need the state of a browser flow (a registered redirect URI and a
    // session cookie, a consent or logout form's CSRF cookie, a code, an OIDC access token),
    // walked right in oidc-flow.test.ts and oidc-errors.test.ts.
    expect(failedRight.sort()).toEqual([
      'GET /oidc/authorize → 400',
      'GET /oidc/userinfo → 401',
      'POST /account/consents/withdraw → 400',
      'POST /account/password → 400',
      'POST /account/sign-out → 400',
      'POST /account/sign-out-others → 400',
      'POST /admin/api/deliveries/{id}/retry → 404',
      'POST /admin/api/ssf/streams/{id}/events/{event}/retry → 404',
      'POST /admin/deliveries/{id}/retry → 404',
      'POST /admin/ssf/{id}/events/{event}/retry → 404',
      'POST /login → 400',
      'POST /login/sign-out → 400',
      'POST /oidc/authorize → 400',
      'POST /oidc/consent → 403',
      'POST /oidc/logout/confirm → 403',
      'POST /oidc/token → 401',
      'POST /oidc/userinfo → 401',
      'POST /ssf/receive/{name} → 404',
    ]);
    expectNoProblems();
  }, 300_000);

  it('session, CSRF and origin headers sent twice (identical) count once; differing copies are a 400, not a guess', async () => {
    const sessionRoutes = routes.filter((r) => (r.op.security ?? []).some((s) => Object.keys(s).some((k) => k.startsWith('session'))));
    expect(sessionRoutes.length).toBeGreaterThanOrEqual(5);
    for (const r of sessionRoutes) {
      const fx = await fixture(key(r) === 'POST /v1/password');
      const right = rightCall(r, fx);
      const path = pathOf(r, fx) + (right.query ?? '');
      const body = right.body ? { body: right.body.text } : {};
      const type = right.body ? { 'content-type': right.body.type } : {};
      const twice = await send(base, r.method, path, { headers: { ...type, 'x-session-token': [fx.tokens[0], fx.tokens[0]], 'x-tessera-csrf': ['1', '1'] }, ...body });
      checkEnvelope(`${key(r)} with X-Session-Token twice`, twice);
      if (!worked(twice)) problems.push(`${key(r)} with X-Session-Token twice → ${twice.status} ${twice.body.slice(0, 200)}`);
      const differing = await send(base, r.method, path, { headers: { ...type, 'x-session-token': [fx.tokens[0], fx.tokens[1]] }, ...body });
      checkEnvelope(`${key(r)} with two different X-Session-Token`, differing);
      if (differing.status !== 400) problems.push(`${key(r)} with two different X-Session-Token → ${differing.status}`);
    }
    const fx = await fixture();
    const xhr = await send(base, 'POST', '/v1/logout', { headers: { origin: [SITE_ORIGIN, SITE_ORIGIN], 'x-tessera-csrf': '1', authorization: `Bearer ${fx.tokens[0]}` } });
    expect(xhr.status, xhr.body).toBe(204);
    expectNoProblems();
  }, 120_000);
});

describe('route walking: bad input', () => {
  it('every integer parameter is a bounded integer in the document', () => {
    const integers = routes.flatMap((r) => (r.op.parameters ?? []).filter((p) => p.schema?.type === 'integer').map((p) => ({ r, p })));
    expect(integers.length).toBeGreaterThanOrEqual(5);
    for (const { r, p } of integers) {
      expect(p.schema!.maximum, `${key(r)} ${p.name}`).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
      expect(p.schema!.minimum, `${key(r)} ${p.name}`).toBeGreaterThanOrEqual(0);
    }
  });

  it('every free-form JSON object in a request body is bounded in depth and size in the document', () => {
    type Node = { type?: string; properties?: Record<string, Node>; additionalProperties?: unknown; items?: Node; anyOf?: Node[]; oneOf?: Node[]; allOf?: Node[]; 'x-max-depth'?: number; 'x-max-bytes'?: number };
    const free: string[] = [];
    const walk = (node: Node | undefined, where: string): void => {
      if (!node || typeof node !== 'object') return;
      const open = node.additionalProperties === true || (typeof node.additionalProperties === 'object' && node.additionalProperties !== null) || (node.type === 'object' && !node.properties && node.additionalProperties !== false);
      if (open) {
        free.push(where);
        expect(node['x-max-depth'], `${where} has no depth bound`).toBeGreaterThan(0);
        expect(node['x-max-bytes'], `${where} has no size bound`).toBeGreaterThan(0);
        return;
      }
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${where}.${name}`);
      for (const child of [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])]) walk(child, where);
      walk(node.items, `${where}[]`);
    };
    for (const r of routes) for (const [type, content] of Object.entries(r.op.requestBody?.content ?? {})) walk(content.schema as Node, `${key(r)} (${type})`);
    // The walk sees the connectors of both app routes (so it would see a new one).
    expect(free.filter((w) => w.endsWith('.connectors')).length).toBeGreaterThanOrEqual(2);
  });

  it('numbers that are not numbers → 400 INVALID_REQUEST on every integer parameter', async () => {
    const bad = ['1e309', 'Infinity', '-Infinity', 'NaN', '1.5', '-1', '99999999999999999999', '9007199254740993', '0x10', '1e3', '', '%201', '1,2'];
    for (const r of routes) {
      for (const p of (r.op.parameters ?? []).filter((p) => p.schema?.type === 'integer' && (p.in === 'query' || p.in === 'path'))) {
        for (const value of bad) {
          if (p.in === 'path' && value === '') continue;
          const fx = await fixture();
          const path = p.in === 'path' ? pathOf(r, fx, { [p.name]: value }) : `${pathOf(r, fx)}?${p.name}=${value}`;
          const res = await send(base, r.method, path, { headers: authOf(r, fx), framing: r.method === 'POST' ? 'length0' : 'none', headersOnly: false });
          checkEnvelope(`${key(r)} ${p.name}=${value}`, res);
          if (res.status !== 400 || codeOf(res) !== 'INVALID_REQUEST') problems.push(`${key(r)} ${p.name}=${value} → ${res.status} ${res.body.slice(0, 200)}`);
        }
      }
    }
    expectNoProblems();
  }, 120_000);

  it('deep JSON in every body field (and as the body) → 4xx with the envelope', async () => {
    const deepArray = '['.repeat(6000) + ']'.repeat(6000);
    const deepObject = '{"a":'.repeat(6000) + '1' + '}'.repeat(6000);
    for (const r of routes.filter((r) => r.op.requestBody)) {
      const properties = Object.keys(r.op.requestBody?.content?.['application/json']?.schema?.properties ?? {});
      const bodies = [deepArray, deepObject, ...properties.flatMap((name) => [`{"${name}":${deepArray}}`, `{"${name}":${deepObject}}`])];
      if (key(r) === 'POST /admin/api/apps') bodies.push(`{"name":"deep","connectors":{"webhook":${deepObject}}}`);
      for (const text of bodies) {
        const fx = await fixture();
        const res = await send(base, r.method, pathOf(r, fx), { headers: { ...authOf(r, fx), 'content-type': 'application/json' }, body: text });
        checkEnvelope(`${key(r)} deep ${text.slice(0, 20)}`, res);
        if (res.status < 400 || res.status >= 500) problems.push(`${key(r)} deep ${text.slice(0, 20)} → ${res.status} ${res.body.slice(0, 200)}`);
      }
    }
    expectNoProblems();
  }, 120_000);

  it('control characters, bidi overrides and zero-width characters in paths, queries and bodies never answer 5xx', async () => {
    const nasty = ['a\u0000b', '\u202eevil', 'zero\u200bwidth', '\u001b[31mred', 'line\r\nbreak', '\ud800'];
    for (const r of routes) {
      const queryNames = (r.op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
      const pathNames = (r.op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      const properties = Object.keys(r.op.requestBody?.content?.['application/json']?.schema?.properties ?? {});
      for (const value of nasty) {
        const fx = await fixture();
        const options = { headers: authOf(r, fx), headersOnly: isStream(r) };
        for (const name of pathNames) checkEnvelope(`${key(r)} path ${name}=${JSON.stringify(value)}`, await send(base, r.method, pathOf(r, fx, { [name]: encode(value) }), { ...options, framing: 'length0' }));
        for (const name of queryNames) checkEnvelope(`${key(r)} query ${name}=${JSON.stringify(value)}`, await send(base, r.method, `${pathOf(r, fx)}?${name}=${encode(value)}`, { ...options, framing: 'length0' }));
        for (const name of properties) {
          const res = await send(base, r.method, pathOf(r, fx), { ...options, headers: { ...options.headers, 'content-type': 'application/json' }, body: JSON.stringify({ ...JSON.parse(rightCall(r, fx).body?.type === 'application/json' ? rightCall(r, fx).body!.text : '{}'), [name]: value }) });
          checkEnvelope(`${key(r)} body ${name}=${JSON.stringify(value)}`, res);
        }
      }
      // A raw percent-encoded NUL and broken UTF-8 in the path itself.
      const fx = await fixture();
      checkEnvelope(`${key(r)} raw %00`, await send(base, r.method, `${pathOf(r, fx, { handle: '%00', id: '%00' })}?x=%00%ff`, { headers: authOf(r, fx), framing: 'length0', headersOnly: isStream(r) }));
    }
    expectNoProblems();
  }, 180_000);

  it('oversized values: every string parameter and body field far past its bound → 4xx with the envelope', async () => {
    const big = 'x'.repeat(9000);
    for (const r of routes) {
      const fx = await fixture();
      const auth = authOf(r, fx);
      for (const p of (r.op.parameters ?? []).filter((p) => p.in === 'query' || p.in === 'path')) {
        const path = p.in === 'path' ? pathOf(r, fx, { [p.name]: big }) : `${pathOf(r, fx)}?${p.name}=${big}`;
        const res = await send(base, r.method, path, { headers: auth, framing: 'length0', headersOnly: isStream(r) });
        checkEnvelope(`${key(r)} ${p.in} ${p.name} of 9000 characters`, res);
        if (res.status < 400) problems.push(`${key(r)} ${p.in} ${p.name} of 9000 characters → ${res.status}`);
      }
      const properties = Object.keys(r.op.requestBody?.content?.['application/json']?.schema?.properties ?? {});
      for (const name of properties) {
        const res = await send(base, r.method, pathOf(r, fx), { headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ [name]: big }) });
        checkEnvelope(`${key(r)} body ${name} of 9000 characters`, res);
        if (res.status < 400) problems.push(`${key(r)} body ${name} of 9000 characters → ${res.status}`);
      }
      // A body past bodyLimit, a URL and a header past Node's header limit.
      if (r.method !== 'GET') checkEnvelope(`${key(r)} body of 100 KiB`, await send(base, r.method, pathOf(r, fx), { headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(100_000) }) }));
    }
    const longUrl = await send(base, 'GET', `/health?q=${'x'.repeat(20_000)}`, { headers: {} });
    expect(longUrl.status).toBe(431);
    expect(longUrl.json().error).toBe('HEADERS_TOO_LARGE');
    const longHeader = await send(base, 'GET', '/v1/whoami', { headers: { 'x-session-token': 'x'.repeat(20_000) } });
    expect(longHeader.status).toBe(431);
    // Requests Node's parser refuses before any route: the envelope too.
    for (const raw of ['GARBAGE\r\n\r\n', 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 'GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n']) {
      const answer = await rawRequest(base, raw);
      expect(answer, JSON.stringify(raw)).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer.slice(answer.indexOf('\r\n\r\n') + 4)).toBe(JSON.stringify({ error: 'INVALID_REQUEST', message: ERROR_CATALOGUE.INVALID_REQUEST.message }));
    }
    expectNoProblems();
  }, 120_000);
});
