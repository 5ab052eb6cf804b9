import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLoggerOptions } from '../src/start.js';
import {
  ADMIN_TOKEN,
  SITE_ORIGIN,
  adminRequest,
  basicAuth,
  createApp,
  createTestServer,
  createUserWithSessions,
  revocationLog,
  type TestServer,
  type TestServerOptions,
} from './support.js';

// The lean whoami path (src/whoami-lean.ts) answers GET /v1/whoami in front of Fastify. Its
// promise: the same answer as the Fastify route, byte for byte apart from date and request
// id, and every case it does not serve exactly like the route goes to the route. These tests
// run over real HTTP (inject bypasses the server's request listener, so it never reaches the
// lean path) and count the requests Fastify saw, which tells which path answered.
// `/v1/whoami?via=route` is the same route for Fastify but never taken by the lean path: it is the
// reference the lean answers are compared with.

interface Served {
  status: number;
  headers: Record<string, string>;
  body: string;
}

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function setup(options: TestServerOptions = {}) {
  const seen: string[] = [];
  t = await createTestServer({ ...options, beforeReady: (app) => app.addHook('onRequest', (request, _reply, done) => {
    seen.push(request.url);
    done();
  }) });
  const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
  const get = async (path: string, headers: Record<string, string> = {}): Promise<Served> => {
    const res = await fetch(`${base}${path}`, { headers });
    return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
  };
  /** Whoami requests that reached Fastify's hooks since the last call (set-up calls are not counted). */
  const fastifySaw = () => seen.splice(0).filter((url) => url.startsWith('/v1/whoami'));
  return { t, base, get, fastifySaw };
}

/** The headers a client can compare: everything but the date and the request id. */
function comparable(res: Served): Record<string, string> {
  const { date: _date, 'x-request-id': _id, ...rest } = res.headers;
  return rest;
}

describe('GET /v1/whoami lean path', () => {
  it('answers a bearer or X-Session-Token whoami itself, with the same bytes and headers as the Fastify route', async () => {
    const { t, get, fastifySaw } = await setup();
    const { sessions } = await createUserWithSessions(t, 1);
    const token = sessions[0]!.token;
    for (const headers of [{ authorization: `Bearer ${token}` }, { 'x-session-token': token }]) {
      const reference = await get('/v1/whoami?via=route', headers);
      expect(fastifySaw()).toEqual(['/v1/whoami?via=route']);
      const lean = await get('/v1/whoami', headers);
      expect(fastifySaw(), 'the lean path answered').toEqual([]);
      expect(lean.status).toBe(200);
      expect(lean.body).toBe(reference.body);
      expect(comparable(lean)).toEqual(comparable(reference));
      expect(lean.headers['cache-control']).toBe('no-store');
      expect(lean.headers['x-content-type-options']).toBe('nosniff');
      expect(lean.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(JSON.parse(lean.body)).toMatchObject({ session: { handle: sessions[0]!.handle, current: true, active: true } });
    }
    // A plain caller request id is echoed, as on the Fastify route; a hostile one is replaced.
    expect((await get('/v1/whoami', { 'x-session-token': token, 'x-request-id': 'trace-42' })).headers['x-request-id']).toBe('trace-42');
    expect((await get('/v1/whoami', { 'x-session-token': token, 'x-request-id': 'a b\tc' })).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(fastifySaw()).toEqual([]);
  });

  it('hands every failure to the Fastify route, which answers 401 UNAUTHENTICATED with the envelope', async () => {
    const { t, get, fastifySaw } = await setup();
    const { sessions } = await createUserWithSessions(t, 1);
    const [id] = sessions[0]!.token.split('.');
    const cases: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer ' },
      { authorization: 'Bearer not-a-token' },
      { 'x-session-token': `${id}.${'A'.repeat(43)}` }, // right id, wrong secret
      { 'x-session-token': `${'x'.repeat(400)}.y` },
      { 'x-session-token': 'nope.nope' },
    ];
    for (const headers of cases) {
      const lean = await get('/v1/whoami', headers);
      expect(lean.status, JSON.stringify(headers)).toBe(401);
      expect(JSON.parse(lean.body)).toMatchObject({ error: 'UNAUTHENTICATED' });
      expect(fastifySaw()).toEqual(['/v1/whoami']);
      const reference = await get('/v1/whoami?via=route', headers);
      fastifySaw();
      expect(lean.body).toBe(reference.body);
      expect(comparable(lean)).toEqual(comparable(reference));
    }
  });

  it('sees an end at once: ended by an admin, the next lean whoami is a 401 from the Fastify route', async () => {
    const { t, get, fastifySaw } = await setup();
    const { sessions } = await createUserWithSessions(t, 2);
    const [ended, kept] = sessions;
    for (const s of sessions) expect((await get('/v1/whoami', { 'x-session-token': s.token })).status).toBe(200);
    expect(fastifySaw()).toEqual([]);
    expect((await adminRequest(t, 'DELETE', `/sessions/${ended!.handle}`)).statusCode).toBe(204);
    expect((await get('/v1/whoami', { 'x-session-token': ended!.token })).status).toBe(401);
    expect(fastifySaw()).toEqual(['/v1/whoami']);
    expect((await get('/v1/whoami', { 'x-session-token': kept!.token })).status).toBe(200);
    expect(fastifySaw()).toEqual([]);
  });

  it('runs the same session rules: touch after the interval, idle expiry ends the session as expired', async () => {
    const { t, get } = await setup();
    const { sessions } = await createUserWithSessions(t, 1);
    const headers = { 'x-session-token': sessions[0]!.token };
    const first = JSON.parse((await get('/v1/whoami', headers)).body) as { session: { last_seen_at: string; idle_expires_at: string } };
    t.clock.advance((t.config.session.touchIntervalSeconds + 1) * 1000);
    const touched = JSON.parse((await get('/v1/whoami', headers)).body) as { session: { last_seen_at: string; idle_expires_at: string } };
    expect(Date.parse(touched.session.last_seen_at)).toBe(t.clock.now());
    expect(Date.parse(touched.session.idle_expires_at)).toBeGreaterThan(Date.parse(first.session.idle_expires_at));
    t.clock.advance(t.config.session.idleTimeoutSeconds * 1000 + 1);
    expect((await get('/v1/whoami', headers)).status).toBe(401);
    expect((await revocationLog(t)).map((e) => [e.sid, e.reason])).toEqual([[sessions[0]!.handle, 'expired']]);
  });

  it('leaves cookies, CORS requests and other methods to the Fastify route', async () => {
    const { t, get, base, fastifySaw } = await setup();
    const { sessions } = await createUserWithSessions(t, 1);
    const token = sessions[0]!.token;

    expect((await get('/v1/whoami', { cookie: `${t.config.cookie.name}=${token}` })).status).toBe(200);
    expect(fastifySaw()).toEqual(['/v1/whoami']);

    const cors = await get('/v1/whoami', { 'x-session-token': token, origin: SITE_ORIGIN });
    expect(cors.status).toBe(200);
    // whoami is not one of the credentialed CORS routes (docs/api.md, CORS): no ACAO header.
    expect(cors.headers['access-control-allow-origin']).toBeUndefined();
    expect(fastifySaw()).toEqual(['/v1/whoami']);


    const head = await fetch(`${base}/v1/whoami`, { method: 'HEAD', headers: { 'x-session-token': token } });
    expect(head.status).toBe(200);
    expect(fastifySaw()).toEqual(['/v1/whoami']);
    const post = await fetch(`${base}/v1/whoami`, { method: 'POST', headers: { 'x-session-token': token } });
    expect(post.status).toBe(404);
    expect(fastifySaw()).toEqual(['/v1/whoami']);
  });

  it('serves an app asking with its Basic credentials (it joins the session, as on the route); a wrong secret goes to the route', async () => {
    const { t, get, fastifySaw } = await setup();
    const { sessions, app } = await createUserWithSessions(t, 1);
    const token = sessions[0]!.token;
    const reader = await createApp(t, { trusted: false });
    const later = await createApp(t, { trusted: false });
    const appsOf = (res: Served) => (JSON.parse(res.body) as { session: { apps: Array<{ client_id: string }> } }).session.apps.map((a) => a.client_id);

    const joined = await get('/v1/whoami', { authorization: reader.basic, 'x-session-token': token });
    expect(fastifySaw(), 'the lean path answered').toEqual([]);
    expect(joined.status).toBe(200);
    expect(appsOf(joined)).toEqual([app.clientId, reader.clientId]);
    expect((await t.store.findSessionByHandle(sessions[0]!.handle))!.apps.map((a) => a.clientId)).toEqual([app.clientId, reader.clientId]);
    // The route records the join the same way (the reference for bytes and headers).
    const reference = await get('/v1/whoami?via=route', { authorization: later.basic, 'x-session-token': token });
    const lean = await get('/v1/whoami', { authorization: later.basic, 'x-session-token': token });
    expect(fastifySaw()).toEqual(['/v1/whoami?via=route']);
    expect(appsOf(lean)).toEqual([app.clientId, reader.clientId, later.clientId]);
    expect(lean.body).toBe(reference.body);
    expect(comparable(lean)).toEqual(comparable(reference));

    // A wrong secret (or an unknown client) never gets to the session: the route says INVALID_CLIENT.
    for (const authorization of [basicAuth(reader.clientId, 'wrong-secret'), basicAuth('nobody', 'x')]) {
      const wrong = await get('/v1/whoami', { authorization, 'x-session-token': token });
      expect(fastifySaw()).toEqual(['/v1/whoami']);
      expect(wrong.status).toBe(401);
      expect(JSON.parse(wrong.body)).toMatchObject({ error: 'INVALID_CLIENT' });
      expect(wrong.headers['www-authenticate']).toBe('Basic realm="tessera"');
    }
    // Right credentials, wrong session token: the route's 401 UNAUTHENTICATED.
    const noSession = await get('/v1/whoami', { authorization: reader.basic, 'x-session-token': 'nope.nope' });
    expect(fastifySaw()).toEqual(['/v1/whoami']);
    expect(JSON.parse(noSession.body)).toMatchObject({ error: 'UNAUTHENTICATED' });
  });

  it('hands a store failure to the Fastify route, which answers it with the envelope (no stack, no hang)', async () => {
    const { t, get, fastifySaw } = await setup();
    const { sessions } = await createUserWithSessions(t, 1);
    const headers = { 'x-session-token': sessions[0]!.token };
    expect((await get('/v1/whoami', headers)).status).toBe(200); // now in the session cache
    await t.store.close();
    const lean = await get('/v1/whoami', headers);
    expect(fastifySaw()).toEqual(['/v1/whoami']);
    const reference = await get('/v1/whoami?via=route', headers);
    expect(lean.status).toBeGreaterThanOrEqual(500);
    expect(lean.status).toBe(reference.status);
    expect(lean.body).toBe(reference.body);
    expect(JSON.parse(lean.body)).toEqual({ error: expect.any(String), message: expect.any(String) });
    expect(lean.body).not.toMatch(/\bat \S+ \(/);
  });

  it('counts its requests in the latency histogram like the route does', async () => {
    const { t, get } = await setup();
    const { sessions } = await createUserWithSessions(t, 1);
    for (let i = 0; i < 3; i++) expect((await get('/v1/whoami', { 'x-session-token': sessions[0]!.token })).status).toBe(200);
    const metrics = await get('/metrics', { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(metrics.body).toMatch(/tessera_http_request_duration_seconds_count\{route="\/v1\/whoami",method="GET",status="200"\} 3\n/);
  });

  it('stays off while requests are logged (level info): every whoami then gets its log lines from Fastify', async () => {
    let text = '';
    const stream = new Writable({ write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    } });
    const { t, get, fastifySaw } = await setup({ logger: { ...createLoggerOptions('info'), stream } });
    const { sessions } = await createUserWithSessions(t, 1);
    fastifySaw();
    const token = sessions[0]!.token;
    for (let i = 0; i < 2; i++) expect((await get('/v1/whoami', { 'x-session-token': token })).status).toBe(200);
    expect(fastifySaw()).toEqual(['/v1/whoami', '/v1/whoami']);
    const completed = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { msg: string; req?: { url: string } }).filter((l) => l.req?.url === '/v1/whoami');
    expect(completed.map((l) => l.msg)).toEqual(['incoming request', 'incoming request']);
    expect(text).not.toContain(token);
  });
});
