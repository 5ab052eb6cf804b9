// Issue "A logout is never refused": requests shaped the way real clients send them, and
// rate limits that cannot keep a session alive. Over a real socket from 127.0.0.1, on SQLite
// and PostgreSQL, with rate limits ON at their defaults.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  SITE_ORIGIN,
  bearer,
  createApp,
  createUserWithSessions,
  createTestServer,
  requestLogoutUrl,
  storedSession,
  whoamiStatus,
  type TestServer,
} from './support.js';
import { STORE_KINDS, storeOptions } from './store-kinds.js';
import { closeClient, listen, send, type Framing, type RawResponse } from './http-client.js';

afterAll(closeClient);

/** The error envelope over a real socket: catalogue code first, then status and shape. */
function expectEnvelope(res: RawResponse, status: number, code: string): void {
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<{ error: unknown; message: unknown }>();
  expect(body.error, res.body).toBe(code);
  expect(res.status).toBe(status);
  expect(typeof body.message).toBe('string');
}

const unknownToken = () => `ses${randomBytes(12).toString('base64url')}.${randomBytes(32).toString('base64url')}`;

describe.each(STORE_KINDS)('a logout is never refused (%s)', (kind) => {
  let t: TestServer;
  let base: string;
  beforeEach(async () => {
    // Rate limits on, every limit at its default (the test support turns them off otherwise).
    t = await createTestServer({ ...(await storeOptions(kind)), file: { rateLimit: { enabled: true } } });
    base = await listen(t);
  });
  afterEach(async () => t.close());

  it('500 logouts of 500 different sessions from 127.0.0.1 within one window all end their sessions', async () => {
    expect(t.config.rateLimit.logoutMax).toBe(60);
    const app = await createApp(t);
    const { sessions } = await createUserWithSessions(t, 500, app);
    // One headers object for every call, as ordinary client code has it.
    const shared = { 'content-type': 'application/json', accept: '*/*' };
    // The five logout flows in turn (API, server-to-server, logout URL, XHR, self-service).
    const flows: Array<(s: (typeof sessions)[number]) => Promise<{ res: RawResponse; expected: number }>> = [
      async (s) => ({ res: await send(base, 'DELETE', '/v1/logout/api', { headers: shared, body: JSON.stringify({ session_token: s.token }) }), expected: 204 }),
      async (s) => ({ res: await send(base, 'POST', '/api/v1/logout', { headers: { ...shared, 'content-type': 'text/plain', authorization: app.basic }, body: s.token }), expected: 200 }),
      async (s) => {
        const { logoutUrl } = await requestLogoutUrl(t, s.token);
        const url = new URL(logoutUrl);
        return { res: await send(base, 'GET', url.pathname + url.search, { headers: shared }), expected: 303 };
      },
      async (s) => ({ res: await send(base, 'POST', '/v1/logout', { headers: { ...shared, origin: SITE_ORIGIN, 'x-tessera-csrf': '1', ...bearer(s.token) }, framing: 'length0' }), expected: 204 }),
      async (s) => ({ res: await send(base, 'DELETE', `/v1/sessions/${s.handle}`, { headers: { ...shared, ...bearer(s.token) } }), expected: 204 }),
    ];
    const started = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < sessions.length; i += 10) {
      const batch = sessions.slice(i, i + 10).map(async (s, j) => {
        const { res, expected } = await flows[(i + j) % flows.length]!(s);
        expect(res.status, `logout #${i + j}: ${res.body}`).toBe(expected);
        statuses.push(res.status);
      });
      await Promise.all(batch);
    }
    expect(statuses).toHaveLength(500);
    expect(statuses.filter((s) => s === 429)).toEqual([]);
    // Every one of them ended its session (the manual clock stands still: one window).
    for (const s of sessions) expect((await storedSession(t, s.handle)).endedAt, s.handle).not.toBeNull();
    expect(await whoamiStatus(t, sessions[0]!.token)).toBe(401);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);

  it('500 failed logouts from one address are limited after logoutMax; a valid logout from it still ends its session', async () => {
    const app = await createApp(t);
    const { sessions } = await createUserWithSessions(t, 4, app);
    // Four kinds of failure, one count per address.
    const failures: Array<() => Promise<RawResponse>> = [
      () => send(base, 'DELETE', '/v1/logout/api', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_token: unknownToken() }) }),
      () => send(base, 'GET', `/v1/logout?token=${randomBytes(32).toString('base64url')}`, { headers: { accept: 'application/json' } }),
      () => send(base, 'POST', '/v1/logout', { headers: { origin: SITE_ORIGIN, ...bearer(sessions[3]!.token) }, framing: 'length0' }),
      () => send(base, 'POST', '/api/v1/logout', { headers: { 'content-type': 'text/plain', authorization: app.basic }, body: unknownToken() }),
    ];
    const codes: string[] = [];
    let limited: RawResponse | null = null;
    for (let i = 0; i < 500; i += 1) {
      const res = await failures[i % failures.length]!();
      expect(res.status, res.body).toBeLessThan(500);
      const code = res.json<{ error: string }>().error;
      codes.push(code);
      if (code === 'RATE_LIMITED') limited = res;
    }
    const refused = codes.filter((c) => c !== 'RATE_LIMITED');
    expect(refused).toHaveLength(60);
    expect(new Set(refused)).toEqual(new Set(['TOKEN_INVALID', 'LOGOUT_TOKEN_INVALID', 'CSRF_FAILED']));
    expect(codes.slice(60).every((c) => c === 'RATE_LIMITED')).toBe(true);
    expectEnvelope(limited!, 429, 'RATE_LIMITED');
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);

    // The address is over its limit, and still every valid logout from it ends its session.
    expect((await send(base, 'DELETE', '/v1/logout/api', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_token: sessions[0]!.token }) })).status).toBe(204);
    expect((await send(base, 'POST', '/api/v1/logout', { headers: { 'content-type': 'text/plain', authorization: app.basic }, body: sessions[1]!.token })).status).toBe(200);
    const { logoutUrl } = await requestLogoutUrl(t, sessions[2]!.token);
    expect((await send(base, 'GET', new URL(logoutUrl).pathname + new URL(logoutUrl).search, { headers: { accept: 'application/json' } })).status).toBe(204);
    expect((await send(base, 'POST', '/v1/logout', { headers: { origin: SITE_ORIGIN, 'x-tessera-csrf': '1', ...bearer(sessions[3]!.token) } })).status).toBe(204);
    for (const s of sessions) expect((await storedSession(t, s.handle)).endedAt).not.toBeNull();
    // An XHR logout of a session that already ended is "already logged out" (401), never a 429.
    expectEnvelope(await send(base, 'POST', '/v1/logout', { headers: { origin: SITE_ORIGIN, 'x-tessera-csrf': '1', ...bearer(sessions[3]!.token) } }), 401, 'UNAUTHENTICATED');

    // Another address has its own count; the window's end forgets this one.
    const elsewhere = await t.app.inject({ method: 'DELETE', url: '/v1/logout/api', payload: { session_token: unknownToken() }, remoteAddress: '203.0.113.9' });
    expect(elsewhere.json().error).toBe('TOKEN_INVALID');
    t.clock.advance(61_000);
    const later = await send(base, 'DELETE', '/v1/logout/api', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_token: unknownToken() }) });
    expectEnvelope(later, 403, 'TOKEN_INVALID');
  }, 120_000);

  it('every admin, app and self-service DELETE with a JSON content type and no body ends what it names', async () => {
    const contentTypes = ['application/json', 'application/json; charset=utf-8'];
    const framings: Framing[] = ['none', 'length0', 'chunked'];
    const admin = bearer(ADMIN_TOKEN);
    for (const contentType of contentTypes) {
      for (const framing of framings) {
        const how = `${contentType}, ${framing}`;
        const del = (path: string, headers: Record<string, string>) => send(base, 'DELETE', path, { headers: { 'content-type': contentType, ...headers }, framing });
        const app = await createApp(t);
        const other = await createApp(t);

        // Admin: one session.
        let fx = await createUserWithSessions(t, 2, app);
        let res = await del(`/admin/api/sessions/${fx.sessions[0]!.handle}`, admin);
        expect(res.status, `${how}: ${res.body}`).toBe(204);
        expect((await storedSession(t, fx.sessions[0]!.handle)).endedAt).not.toBeNull();
        expect((await storedSession(t, fx.sessions[1]!.handle)).endedAt).toBeNull();

        // Admin: all of a user's sessions; all but one; one app's part.
        res = await del(`/admin/api/users/${fx.user.id}/sessions?except=${fx.sessions[1]!.handle}`, admin);
        expect(res.status, `${how}: ${res.body}`).toBe(200);
        expect((await storedSession(t, fx.sessions[1]!.handle)).endedAt).toBeNull();
        res = await del(`/admin/api/users/${fx.user.id}/sessions?app=${app.clientId}`, admin);
        expect(res.status, `${how}: ${res.body}`).toBe(200);
        const left = (await storedSession(t, fx.sessions[1]!.handle)).apps.find((a) => a.clientId === app.clientId);
        expect(left?.leftAt ?? (await storedSession(t, fx.sessions[1]!.handle)).endedAt, how).not.toBeNull();
        fx = await createUserWithSessions(t, 2, app);
        res = await del(`/admin/api/users/${fx.user.id}/sessions`, admin);
        expect(res.status, `${how}: ${res.body}`).toBe(200);
        expect(res.json<{ revoked: string[] }>().revoked.sort()).toEqual(fx.sessions.map((s) => s.handle).sort());

        // Admin: a user (and with it their sessions); an app.
        fx = await createUserWithSessions(t, 1, app);
        res = await del(`/admin/api/users/${fx.user.id}`, admin);
        expect(res.status, `${how}: ${res.body}`).toBe(200);
        expect((await t.app.inject({ method: 'GET', url: `/admin/api/users/${fx.user.id}`, headers: admin })).statusCode).toBe(404);
        expect(await whoamiStatus(t, fx.sessions[0]!.token)).toBe(401);
        res = await del(`/admin/api/apps/${other.clientId}`, admin);
        expect(res.status, `${how}: ${res.body}`).toBe(204);
        expect((await t.app.inject({ method: 'GET', url: `/admin/api/apps/${other.clientId}`, headers: admin })).statusCode).toBe(404);

        // Self-service: all my other sessions; one of mine.
        fx = await createUserWithSessions(t, 3, app);
        res = await del('/v1/sessions', bearer(fx.sessions[0]!.token));
        expect(res.status, `${how}: ${res.body}`).toBe(200);
        expect(await whoamiStatus(t, fx.sessions[0]!.token)).toBe(200);
        expect(await whoamiStatus(t, fx.sessions[1]!.token)).toBe(401);
        fx = await createUserWithSessions(t, 2, app);
        res = await del(`/v1/sessions/${fx.sessions[1]!.handle}`, { 'x-session-token': fx.sessions[0]!.token });
        expect(res.status, `${how}: ${res.body}`).toBe(204);
        expect(await whoamiStatus(t, fx.sessions[1]!.token)).toBe(401);

        // Self-service: withdraw a consent given on the OpenID Provider's consent page.
        fx = await createUserWithSessions(t, 1, app);
        await t.store.saveConsent({ userId: fx.user.id, clientId: app.clientId, scope: 'openid', createdAt: t.clock.now() });
        res = await del(`/v1/consents/${app.clientId}`, bearer(fx.sessions[0]!.token));
        expect(res.status, `${how}: ${res.body}`).toBe(204);
        expect(await t.authority.oidc.listConsents(fx.user.id), how).toEqual([]);

        // Apps: one session; a user's sessions.
        fx = await createUserWithSessions(t, 2, app);
        res = await del(`/api/v1/sessions/${fx.sessions[0]!.handle}`, { authorization: app.basic });
        expect(res.status, `${how}: ${res.body}`).toBe(204);
        expect(await whoamiStatus(t, fx.sessions[0]!.token)).toBe(401);
        res = await del(`/api/v1/users/${fx.user.id}/sessions`, { authorization: app.basic });
        expect(res.status, `${how}: ${res.body}`).toBe(200);
        expect(await whoamiStatus(t, fx.sessions[1]!.token)).toBe(401);

        // A route that needs a body still says so, with the envelope.
        expectEnvelope(await del('/v1/logout/api', {}), 400, 'INVALID_REQUEST');
      }
    }
  }, 120_000);
});
