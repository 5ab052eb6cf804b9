import { ERROR_CATALOGUE, type ErrorCode } from '@tessera/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  SITE_ORIGIN,
  adminRequest,
  basicAuth,
  bearer,
  createApp,
  createTestServer,
  createUser,
  createUserWithSessions,
  expectError,
  loginWithForm,
  openLoginForm,
  postLogin,
  requestLogoutUrl,
  whoamiStatus,
  type Response,
  type TestServer,
} from './support.js';

// What must never reach a client: stack frames, hashes, internal field names.
const STACK = /\bat [^\n]*\(?[^\s()]+:\d+:\d+\)?|node_modules|\.ts:\d+|Error: .*\n\s+at /;
const INTERNAL = /secret_hash|password_hash|secretHash|passwordHash|token_id|tokenId|\$argon2/;

/** A JSON error response carries a code of the catalogue, with the catalogue's status. */
function expectCatalogueError(res: Response, what: string): void {
  if (res.statusCode < 400 || !String(res.headers['content-type']).startsWith('application/json')) return;
  const body = res.json<{ error?: unknown; message?: unknown }>();
  expect(Object.keys(ERROR_CATALOGUE), `${what}: ${res.body.slice(0, 200)}`).toContain(body.error);
  expect(res.statusCode, what).toBe(ERROR_CATALOGUE[body.error as ErrorCode].status);
  expect(typeof body.message, what).toBe('string');
}

function expectNoLeak(res: Response, secrets: string[] = []): void {
  expect(res.statusCode, `${res.statusCode} ${res.body.slice(0, 200)}`).toBeLessThan(500);
  expect(res.body).not.toMatch(STACK);
  expect(res.body).not.toMatch(INTERNAL);
  for (const secret of secrets) expect(res.body).not.toContain(secret);
}

describe('abuse: malformed requests', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer({ file: { bodyLimitBytes: 2048 } });
  });
  afterEach(async () => t.close());

  it('malformed JSON → 400 MALFORMED_BODY on every JSON route', async () => {
    const app = await createApp(t);
    const cases: Array<[string, string, Record<string, string>]> = [
      ['POST', '/admin/api/users', bearer(ADMIN_TOKEN)],
      ['POST', '/admin/api/apps', bearer(ADMIN_TOKEN)],
      ['POST', '/admin/api/sessions/revoke', bearer(ADMIN_TOKEN)],
      ['POST', '/v1/sessions', { authorization: app.basic }],
      ['DELETE', '/v1/logout/api', {}],
      ['POST', '/api/v1/logout', { authorization: app.basic }],
      ['POST', '/v1/logout', { origin: SITE_ORIGIN }],
    ];
    for (const [method, url, headers] of cases) {
      for (const payload of ['{"username": ', '{username: "x"}', "{'a': 1}", '{"a":1}}', '\u0000\u0001', '[1,2', '{"a": NaN}']) {
        const res = await t.app.inject({ method: method as 'POST', url, headers: { ...headers, 'content-type': 'application/json' }, payload });
        expectError(res, 400, 'MALFORMED_BODY');
        expectNoLeak(res);
      }
    }
  });

  it('an empty body declared as JSON → 400, not 500', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/admin/api/users', headers: { ...bearer(ADMIN_TOKEN), 'content-type': 'application/json' }, payload: '' });
    expect(res.json().error).toMatch(/^(MALFORMED_BODY|INVALID_REQUEST)$/);
    expect(res.statusCode).toBe(400);
  });

  it(`a body over bodyLimitBytes → 413 PAYLOAD_TOO_LARGE`, async () => {
    const app = await createApp(t);
    const big = JSON.stringify({ username: 'x', first_name: 'y'.repeat(4000) });
    for (const [url, headers] of [['/admin/api/users', bearer(ADMIN_TOKEN)], ['/v1/sessions', { authorization: app.basic }]] as const) {
      const res = await t.app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': 'application/json' }, payload: big });
      expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    }
    const form = await t.app.inject({ method: 'POST', url: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `username=${'a'.repeat(5000)}&password=x&csrf=y` });
    expectError(form, 413, 'PAYLOAD_TOO_LARGE');
    const text = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic, 'content-type': 'text/plain' }, payload: 'a'.repeat(5000) });
    expectError(text, 413, 'PAYLOAD_TOO_LARGE');
    expect(await t.store.findUserByLogin('x')).toBeNull();
  });

  it('a wrong content type → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    for (const contentType of ['application/xml', 'text/csv', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
      const res = await t.app.inject({ method: 'POST', url: '/admin/api/users', headers: { ...bearer(ADMIN_TOKEN), 'content-type': contentType }, payload: 'username=x' });
      expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    const login = await t.app.inject({ method: 'POST', url: '/login', headers: { 'content-type': 'application/json' }, payload: { username: 'x', password: 'y', csrf: 'z' } });
    expect(login.statusCode).toBeGreaterThanOrEqual(400);
    expect(login.statusCode).toBeLessThan(500);
  });

  it('unknown fields → 400 INVALID_REQUEST, and nothing is created', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    expectError(await adminRequest(t, 'POST', '/users', { username: 'eve', is_admin: true }), 400, 'INVALID_REQUEST');
    expect(await t.store.findUserByLogin('eve')).toBeNull();
    expectError(await adminRequest(t, 'POST', '/apps', { name: 'x', allowed_orgins: ['https://a.example'] }), 400, 'INVALID_REQUEST');
    expectError(await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user_id: user.id, admin: true } }), 400, 'INVALID_REQUEST');
    expectError(await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user: { username: 'eve', role: 'admin' } } }), 400, 'INVALID_REQUEST');
    expectError(await t.app.inject({ method: 'DELETE', url: '/v1/logout/api', payload: { session_token: 'a.b', all: true } }), 400, 'INVALID_REQUEST');
    expect(await t.store.listSessionsByUser(user.id)).toHaveLength(0);
  });

  it('prototype-pollution keys are refused and pollute nothing', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/admin/api/users', headers: { ...bearer(ADMIN_TOKEN), 'content-type': 'application/json' }, payload: '{"username":"pp","__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}}}' });
    expect(res.statusCode).toBe(400);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('huge and odd session tokens → 401/403, never 500', async () => {
    const app = await createApp(t);
    const { sessions } = await createUserWithSessions(t, 1, app);
    const odd = ['x'.repeat(10 * 1024), `${'a'.repeat(5000)}.${'b'.repeat(5000)}`, 'a.b.c', '.', '..', 'é.ü', 'ÿÿÿÿÿÿÿÿÿÿ.ÿÿÿÿÿÿÿÿÿÿ', '%00.%00', 'null', 'undefined', '[object Object]', ' '];
    const unicode = ['😀.😀', '\u202e.\u202e', 'ａｂｃ.ｄｅｆ'];
    for (const token of odd) {
      for (const headers of [bearer(token), { 'x-session-token': token }, { cookie: `tessera_session=${token}` }]) {
        for (const url of ['/v1/whoami', '/v1/sessions', '/v1/logout/browser']) {
          const res = await t.app.inject({ method: 'GET', url, headers });
          expect([401, 403]).toContain(res.statusCode);
          expectNoLeak(res);
        }
        const del = await t.app.inject({ method: 'DELETE', url: '/v1/sessions', headers });
        expect([401, 403]).toContain(del.statusCode);
      }
    }
    // Non-ASCII characters cannot travel in a raw header; they come percent-encoded in cookies.
    for (const token of unicode) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/whoami', cookies: { tessera_session: token } });
      expectError(res, 401, 'UNAUTHENTICATED');
    }
    for (const token of [...odd, ...unicode]) {
      const api = await t.app.inject({ method: 'DELETE', url: '/v1/logout/api', payload: { session_token: token } });
      // 413 for the tokens longer than this server's 2 KiB body limit.
      expect([400, 403, 413]).toContain(api.statusCode);
      expectNoLeak(api);
      const s2s = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic }, payload: { token } });
      expect([400, 403, 413]).toContain(s2s.statusCode);
      expectNoLeak(s2s);
    }
    const emptyBearer = await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: 'Bearer ' } });
    expectError(emptyBearer, 401, 'UNAUTHENTICATED');
    const emptyBody = await t.app.inject({ method: 'DELETE', url: '/v1/logout/api', payload: { session_token: '' } });
    expectError(emptyBody, 400, 'INVALID_REQUEST');
    const hugeBasic = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: `Basic ${'Q'.repeat(10 * 1024)}`, 'content-type': 'text/plain' }, payload: sessions[0]!.token });
    expectError(hugeBasic, 401, 'INVALID_CLIENT');
    const hugeAdmin = await t.app.inject({ method: 'GET', url: '/admin/api/apps', headers: bearer('z'.repeat(10 * 1024)) });
    expectError(hugeAdmin, 401, 'INVALID_ADMIN_TOKEN');
    expect(await whoamiStatus(t, sessions[0]!.token)).toBe(200);
  });

  it('an unknown route → 404 NOT_FOUND envelope, also under /admin/api and for wrong methods', async () => {
    for (const [method, url] of [['GET', '/nope'], ['GET', '/v2/whoami'], ['POST', '/v1/whoami'], ['PUT', '/v1/sessions'], ['GET', '/admin/api/nope'], ['GET', `/${'x'.repeat(3000)}`], ['GET', '/v1/logout/api']]) {
      const res = await t.app.inject({ method: method as 'GET', url, headers: bearer(ADMIN_TOKEN) });
      expect([404, 401]).toContain(res.statusCode);
      if (res.statusCode === 404) expectError(res, 404, 'NOT_FOUND');
      expect(res.body.length).toBeLessThan(600);
    }
    expectError(await t.app.inject({ method: 'GET', url: '/nope' }), 404, 'NOT_FOUND');
    expectError(await t.app.inject({ method: 'GET', url: '/admin/api/nope', headers: bearer(ADMIN_TOKEN) }), 404, 'NOT_FOUND');
  });

  it('bad URLs and path parameters → 4xx with the error envelope and a catalogue code', async () => {
    for (const url of ['/v1/sessions/%E0%A4%A', '/admin/api/users/%', '/admin/api/users/..%2F..%2Fetc', '/admin/api/users/a%00b', `/admin/api/sessions/${'h'.repeat(500)}`, `/v1/sessions/${'h'.repeat(120)}`, '/v1/logout?token=%ZZ', '/login?return_to=%E0%A4%A']) {
      for (const method of ['GET', 'DELETE'] as const) {
        const res = await t.app.inject({ method, url, headers: bearer(ADMIN_TOKEN) });
        expect(res.statusCode, `${method} ${url}`).toBeGreaterThanOrEqual(400);
        expectNoLeak(res);
        expectCatalogueError(res, `${method} ${url}`);
      }
    }
    // Router-level failures (bad percent-encoding, over-long parameters) included.
    expectError(await t.app.inject({ method: 'DELETE', url: '/v1/sessions/%E0%A4%A' }), 400, 'INVALID_REQUEST');
    expectError(await t.app.inject({ method: 'DELETE', url: `/admin/api/sessions/${'h'.repeat(500)}`, headers: bearer(ADMIN_TOKEN) }), 400, 'INVALID_REQUEST');
  });
});

describe('abuse: nothing secret ever leaves in a response', () => {
  it('a tour of every read route after a full flow shows no hash, token id or secret', async () => {
    const t = await createTestServer();
    try {
      const app = await createApp(t, { return_urls: ['https://site.example/bye'] });
      const { user, password } = await createUser(t);
      const browser = await loginWithForm(t, { username: user.username, password });
      const appSession = (await createUserWithSessions(t, 1, app)).sessions[0]!;
      const { logoutToken } = await requestLogoutUrl(t, browser.token!);
      const secrets = [
        app.clientSecret,
        password,
        ...browser.token!.split('.'),
        ...appSession.token.split('.'),
        logoutToken,
      ];
      const handle = (await t.store.listSessionsByUser(user.id))[0]!.handle;
      const reads: Array<[string, Record<string, string>]> = [
        ['/admin/api/apps', bearer(ADMIN_TOKEN)],
        [`/admin/api/apps/${app.clientId}`, bearer(ADMIN_TOKEN)],
        [`/admin/api/users/${user.id}`, bearer(ADMIN_TOKEN)],
        [`/admin/api/users/${user.id}/sessions`, bearer(ADMIN_TOKEN)],
        [`/admin/api/users/${user.id}/sessions?include_ended=true`, bearer(ADMIN_TOKEN)],
        [`/admin/api/sessions/${handle}`, bearer(ADMIN_TOKEN)],
        [`/admin/api/sessions/${handle}/deliveries`, bearer(ADMIN_TOKEN)],
        ['/admin/api/audit', bearer(ADMIN_TOKEN)],
        ['/v1/whoami', bearer(browser.token!)],
        ['/v1/sessions', bearer(browser.token!)],
        ['/v1/sessions', bearer(appSession.token)],
        ['/openapi.json', {}],
        ['/health', {}],
        ['/login', {}],
      ];
      for (const [url, headers] of reads) {
        const res = await t.app.inject({ method: 'GET', url, headers });
        expect(res.statusCode, url).toBe(200);
        expectNoLeak(res, secrets);
      }
      // The admin token is never echoed either.
      const audit = await t.app.inject({ method: 'GET', url: '/admin/api/audit', headers: bearer(ADMIN_TOKEN) });
      expect(audit.body).not.toContain(ADMIN_TOKEN);
    } finally {
      await t.close();
    }
  });
});

describe('abuse: rate limits', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer({ file: { rateLimit: { enabled: true, loginMax: 3, logoutMax: 3, windowSeconds: 60 } } });
  });
  afterEach(async () => t.close());

  it('POST /login: past loginMax per IP → 429 RATE_LIMITED with Retry-After, other IPs unaffected', async () => {
    const { user, password } = await createUser(t);
    const form = await openLoginForm(t);
    for (let i = 0; i < 3; i += 1) {
      const res = await postLogin(t, { fields: { username: user.username, password: 'wrong password', csrf: form.csrf }, cookies: { tessera_csrf: form.csrfCookie }, remoteAddress: '198.51.100.1' });
      expect(res.statusCode).toBe(401);
    }
    // Even the right password is refused once the limit is reached (no guessing past it).
    const limited = await postLogin(t, { fields: { username: user.username, password, csrf: form.csrf }, cookies: { tessera_csrf: form.csrfCookie }, remoteAddress: '198.51.100.1' });
    // The hosted form answers with its page, as for every sign-in error.
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^text\/html/);
    expect(limited.body).toContain('Too many failed sign-ins');
    expect(limited.headers['retry-after']).toBeDefined();
    expect(limited.cookies.find((c) => c.name === 'tessera_session')).toBeUndefined();

    const elsewhere = await loginWithForm(t, { username: user.username, password, remoteAddress: '198.51.100.2' });
    expect(elsewhere.res.statusCode).toBe(303);
  });

  it('every logout route counts its failures: past logoutMax → 429 RATE_LIMITED', async () => {
    const app = await createApp(t);
    // One address per route: the failures of all logout routes share one count per address.
    let n = 10;
    const routes: Array<{ method: 'GET' | 'POST' | 'DELETE'; url: string; headers?: Record<string, string>; payload?: string | object }> = [
      { method: 'GET', url: '/v1/logout?token=not-a-real-logout-token' },
      // A failed CSRF check (an XHR logout without a session is not counted: its 401 means "already logged out").
      { method: 'POST', url: '/v1/logout', headers: { origin: SITE_ORIGIN } },
      { method: 'DELETE', url: '/v1/logout/api', payload: { session_token: 'unknownid1234567.unknownsecret12345678' } },
      { method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic, 'content-type': 'text/plain' }, payload: 'unknownid1234567.unknownsecret12345678' },
    ];
    for (const route of routes) {
      const statuses: number[] = [];
      let last: Response | null = null;
      const ip = `198.51.100.${(n += 1)}`;
      for (let i = 0; i < 4; i += 1) {
        last = await t.app.inject({ ...route, remoteAddress: ip });
        statuses.push(last.statusCode);
      }
      expect(statuses.slice(0, 3).every((s) => s !== 429), `${route.method} ${route.url}: ${statuses.join(',')}`).toBe(true);
      expectError(last!, 429, 'RATE_LIMITED');
    }
  });

  it('POST /v1/password counts against the login limit (no unlimited password guessing with a stolen session)', async () => {
    const { sessions } = await createUserWithSessions(t, 1);
    const attempt = () => t.app.inject({ method: 'POST', url: '/v1/password', headers: bearer(sessions[0]!.token), payload: { current_password: 'guess guess', new_password: 'a brand new passphrase' }, remoteAddress: '198.51.100.9' });
    for (let i = 0; i < 3; i += 1) expectError(await attempt(), 401, 'INVALID_CREDENTIALS');
    expectError(await attempt(), 429, 'RATE_LIMITED');
  });
});

describe('abuse: fuzz', () => {
  it('~200 random malformed requests across routes never answer 5xx nor leak', async () => {
    const t = await createTestServer();
    try {
      const app = await createApp(t);
      const { user, sessions } = await createUserWithSessions(t, 2, app);
      const secrets = [app.clientSecret, ...sessions.flatMap((s) => s.token.split('.'))];

      // A seeded generator: a failure reproduces with the same sequence.
      let seed = 0x7e55e7a;
      const random = () => {
        seed = (seed + 0x6d2b79f5) | 0;
        let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
        return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
      };
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      const junk = (max: number) => Array.from({ length: Math.floor(random() * max) }, () => String.fromCharCode(Math.floor(random() * 0x7f))).join('');

      const routes = [
        ['GET', '/health'], ['GET', '/openapi.json'], ['GET', '/login'], ['POST', '/login'],
        ['POST', '/admin/api/users'], ['GET', `/admin/api/users/${user.id}`], ['PATCH', `/admin/api/users/${user.id}`], ['DELETE', '/admin/api/users/:id'],
        ['GET', `/admin/api/users/${user.id}/sessions`], ['DELETE', `/admin/api/users/${user.id}/sessions`], ['DELETE', '/admin/api/sessions/:handle'],
        ['POST', '/admin/api/sessions/revoke'], ['GET', '/admin/api/sessions/:handle/deliveries'], ['POST', '/admin/api/apps'], ['GET', '/admin/api/apps'],
        ['GET', `/admin/api/apps/${app.clientId}`], ['PATCH', `/admin/api/apps/${app.clientId}`], ['POST', '/admin/api/apps/:id/secret'],
        ['POST', '/v1/sessions'], ['GET', '/v1/whoami'], ['GET', '/v1/sessions'], ['DELETE', '/v1/sessions'], ['DELETE', '/v1/sessions/:handle'],
        ['POST', '/v1/password'], ['GET', '/v1/logout/browser'], ['GET', '/v1/logout'], ['POST', '/v1/logout'], ['DELETE', '/v1/logout/api'], ['POST', '/api/v1/logout'],
      ] as const;
      const params = ['x', '%', '%00', '..', '%2e%2e%2f', 'ses_' + 'a'.repeat(300), '😀', '%F0%9F%98%80', '%E0%A4%A', ' ', sessions[0]!.handle, '[]', '{}'];
      const contentTypes = ['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data', 'application/json; charset=utf-16', '*/*', ''];
      const bodies = [
        () => junk(200),
        () => JSON.stringify({ [junk(8)]: junk(20) }),
        () => JSON.stringify({ token: junk(40), scope: pick(['app', 'session', 'user', junk(5)]) }),
        () => JSON.stringify({ session_token: random() < 0.5 ? junk(50) : sessions[1]!.token.slice(0, -3) }),
        () => JSON.stringify({ user_id: junk(10), user: { username: junk(10) } }),
        () => JSON.stringify({ handles: [junk(10), 5, null] }),
        () => JSON.stringify([1, 'a', null, { a: [] }]),
        () => '{"a":'.repeat(50),
        () => 'null',
        () => '"string"',
        () => `username=${junk(10)}&password=${junk(10)}&csrf=${junk(10)}&return_to=${encodeURIComponent(junk(30))}`,
      ];
      const auths = [
        () => bearer(ADMIN_TOKEN).authorization,
        () => `Bearer ${junk(60)}`,
        () => `Basic ${Buffer.from(junk(30)).toString('base64')}`,
        () => basicAuth(app.clientId, app.clientSecret),
        () => basicAuth(app.clientId, junk(20)),
        () => junk(30),
        () => undefined,
      ];

      for (let i = 0; i < 200; i += 1) {
        const [method, template] = pick(routes);
        const url = template.replace(/:(id|handle)/, () => pick(params)) + (random() < 0.3 ? `?${pick(['token', 'return_to', 'app', 'except', 'include_ended', junk(5)])}=${encodeURIComponent(junk(40))}` : '');
        const headers: Record<string, string> = {};
        const auth = pick(auths)();
        if (auth !== undefined) headers.authorization = auth.replace(/[^\x20-\x7e]/g, '');
        if (random() < 0.3) headers['x-session-token'] = junk(50).replace(/[^\x21-\x7e]/g, 'x');
        if (random() < 0.3) headers.origin = pick([SITE_ORIGIN, 'https://evil.example', 'null', junk(20).replace(/[^\x21-\x7e]/g, 'x')]);
        if (random() < 0.3) headers['x-tessera-csrf'] = '1';
        if (random() < 0.2) headers.cookie = `tessera_session=${encodeURIComponent(junk(40))}; tessera_csrf=${encodeURIComponent(junk(10))}`;
        const withBody = method !== 'GET' && random() < 0.85;
        if (withBody) {
          const contentType = pick(contentTypes);
          if (contentType) headers['content-type'] = contentType;
        }
        const res = await t.app.inject({ method, url, headers, ...(withBody ? { payload: pick(bodies)() } : {}) });
        expect(res.statusCode, `#${i} ${method} ${url} → ${res.statusCode} ${res.body.slice(0, 300)}`).toBeLessThan(500);
        expectNoLeak(res, secrets);
        expectCatalogueError(res, `#${i} ${method} ${url}`);
      }
    } finally {
      await t.close();
    }
  });
});
