import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bearer,
  createTestServer,
  createUser,
  createUserWithSessions,
  expectError,
  loginWithForm,
  revocationLog,
  whoamiStatus,
  type SessionJson,
  type TestServer,
} from './support.js';

describe('self-service sessions', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('GET /v1/sessions lists my active sessions with device info and marks the current one', async () => {
    const { sessions: [a, b, c] } = await createUserWithSessions(t, 3);
    await createUserWithSessions(t, 1); // someone else's session is never listed
    const res = await t.app.inject({ method: 'GET', url: '/v1/sessions', headers: bearer(b!.token) });
    expect(res.statusCode).toBe(200);
    const { sessions } = res.json<{ sessions: SessionJson[] }>();
    expect(sessions.map((s) => s.handle).sort()).toEqual([a!.handle, b!.handle, c!.handle].sort());
    expect(sessions.filter((s) => s.current).map((s) => s.handle)).toEqual([b!.handle]);
    expect(sessions.every((s) => s.current === (s.handle === b!.handle))).toBe(true);
    expect(sessions.map((s) => s.user_agent).sort()).toEqual(['device-0', 'device-1', 'device-2']);
    for (const token of [a!.token, b!.token, c!.token]) {
      expect(res.body).not.toContain(token.split('.')[0]!);
      expect(res.body).not.toContain(token.split('.')[1]!);
    }
  });

  it('GET /v1/sessions without a session → 401', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/v1/sessions' }), 401, 'UNAUTHENTICATED');
  });

  it('DELETE /v1/sessions ends all my other sessions and keeps the current one', async () => {
    const { user, sessions: [a, b, c] } = await createUserWithSessions(t, 3);
    const other = await createUserWithSessions(t, 1);
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/sessions', headers: bearer(a!.token) });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ revoked: string[] }>().revoked.sort()).toEqual([b!.handle, c!.handle].sort());
    expect(await whoamiStatus(t, a!.token)).toBe(200);
    expect(await whoamiStatus(t, b!.token)).toBe(401);
    expect(await whoamiStatus(t, c!.token)).toBe(401);
    expect(await whoamiStatus(t, other.sessions[0]!.token)).toBe(200);
    const log = await revocationLog(t);
    expect(log.map((e) => e.sid).sort()).toEqual([b!.handle, c!.handle].sort());
    expect(log.every((e) => e.reason === 'user_revoked' && e.actor === 'user' && e.sub === user.id && e.app === null)).toBe(true);

    const again = await t.app.inject({ method: 'DELETE', url: '/v1/sessions', headers: bearer(a!.token) });
    expect(again.json()).toEqual({ revoked: [] });
  });

  it('DELETE /v1/sessions/:handle ends one of my sessions (204); it stays ended', async () => {
    const { sessions: [a, b] } = await createUserWithSessions(t, 2);
    const res = await t.app.inject({ method: 'DELETE', url: `/v1/sessions/${b!.handle}`, headers: bearer(a!.token) });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(await whoamiStatus(t, b!.token)).toBe(401);
    expect(await whoamiStatus(t, a!.token)).toBe(200);
    const [entry] = await revocationLog(t);
    expect(entry).toMatchObject({ sid: b!.handle, reason: 'user_revoked', actor: 'user' });
  });

  it('DELETE /v1/sessions/:handle can end the current session itself', async () => {
    const { sessions: [a] } = await createUserWithSessions(t, 1);
    const res = await t.app.inject({ method: 'DELETE', url: `/v1/sessions/${a!.handle}`, headers: bearer(a!.token) });
    expect(res.statusCode).toBe(204);
    expect(await whoamiStatus(t, a!.token)).toBe(401);
  });

  it("DELETE /v1/sessions/:handle with someone else's handle → 404 and their session lives on", async () => {
    const mine = await createUserWithSessions(t, 1);
    const theirs = await createUserWithSessions(t, 1);
    const res = await t.app.inject({ method: 'DELETE', url: `/v1/sessions/${theirs.sessions[0]!.handle}`, headers: bearer(mine.sessions[0]!.token) });
    expectError(res, 404, 'SESSION_NOT_FOUND');
    expect(await whoamiStatus(t, theirs.sessions[0]!.token)).toBe(200);
    expect(await revocationLog(t)).toHaveLength(0);
  });

  it('DELETE /v1/sessions/:handle with an unknown or malformed handle → 404 / 400', async () => {
    const { sessions: [a] } = await createUserWithSessions(t, 1);
    expectError(await t.app.inject({ method: 'DELETE', url: '/v1/sessions/ses_unknown', headers: bearer(a!.token) }), 404, 'SESSION_NOT_FOUND');
    expectError(await t.app.inject({ method: 'DELETE', url: `/v1/sessions/${encodeURIComponent('bad handle!')}`, headers: bearer(a!.token) }), 400, 'INVALID_REQUEST');
  });

  it('cookie-authenticated DELETEs need X-Tessera-CSRF (403 CSRF_FAILED without), Bearer ones do not', async () => {
    const { user, password } = await createUser(t);
    const browser = await loginWithForm(t, { username: user.username, password, userAgent: 'browser-1' });
    const other1 = await loginWithForm(t, { username: user.username, password, userAgent: 'browser-2' });
    const other2 = await loginWithForm(t, { username: user.username, password, userAgent: 'browser-3' });
    const cookie = { tessera_session: browser.token! };
    const handleOf = async (token: string) => (await t.authority.sessions.findActive(token))!.handle;
    const h1 = await handleOf(other1.token!);

    expectError(await t.app.inject({ method: 'DELETE', url: `/v1/sessions/${h1}`, cookies: cookie }), 403, 'CSRF_FAILED');
    expectError(await t.app.inject({ method: 'DELETE', url: '/v1/sessions', cookies: cookie }), 403, 'CSRF_FAILED');
    expect(await whoamiStatus(t, other1.token!)).toBe(200);
    expect(await whoamiStatus(t, other2.token!)).toBe(200);

    const one = await t.app.inject({ method: 'DELETE', url: `/v1/sessions/${h1}`, cookies: cookie, headers: { 'x-tessera-csrf': '1' } });
    expect(one.statusCode).toBe(204);
    expect(await whoamiStatus(t, other1.token!)).toBe(401);

    // Bearer: the token cannot be attached cross-site by a browser, so no CSRF header is needed.
    const all = await t.app.inject({ method: 'DELETE', url: '/v1/sessions', headers: bearer(browser.token!) });
    expect(all.statusCode).toBe(200);
    expect(all.json().revoked).toEqual([await t.store.findSessionByTokenId(other2.token!.split('.')[0]!).then((s) => s!.handle)]);
    expect(await whoamiStatus(t, other2.token!)).toBe(401);
    expect(await whoamiStatus(t, browser.token!)).toBe(200);
  });
});

describe('POST /v1/password', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('changes my password, ends all my other sessions and keeps this one', async () => {
    const { user, password } = await createUser(t);
    const a = await loginWithForm(t, { username: user.username, password, userAgent: 'a' });
    const b = await loginWithForm(t, { username: user.username, password, userAgent: 'b' });
    const c = await loginWithForm(t, { username: user.username, password, userAgent: 'c' });
    const res = await t.app.inject({ method: 'POST', url: '/v1/password', headers: bearer(a.token!), payload: { current_password: password, new_password: 'a brand new passphrase' } });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ revoked: string[] }>().revoked).toHaveLength(2);
    expect(await whoamiStatus(t, a.token!)).toBe(200);
    expect(await whoamiStatus(t, b.token!)).toBe(401);
    expect(await whoamiStatus(t, c.token!)).toBe(401);
    const log = await revocationLog(t);
    expect(log.map((e) => e.reason)).toEqual(['password_changed', 'password_changed']);

    const old = await loginWithForm(t, { username: user.username, password });
    expect(old.res.statusCode).toBe(401);
    const fresh = await loginWithForm(t, { username: user.username, password: 'a brand new passphrase' });
    expect(fresh.res.statusCode).toBe(303);
  });

  it('with a wrong current password → 401 INVALID_CREDENTIALS and nothing changes', async () => {
    const { user, password } = await createUser(t);
    const a = await loginWithForm(t, { username: user.username, password });
    const b = await loginWithForm(t, { username: user.username, password });
    const res = await t.app.inject({ method: 'POST', url: '/v1/password', headers: bearer(a.token!), payload: { current_password: 'wrong wrong', new_password: 'a brand new passphrase' } });
    expectError(res, 401, 'INVALID_CREDENTIALS');
    expect(await whoamiStatus(t, b.token!)).toBe(200);
    expect((await loginWithForm(t, { username: user.username, password })).res.statusCode).toBe(303);
  });

  it('with a cookie needs X-Tessera-CSRF; a too-short new password → 400', async () => {
    const { user, password } = await createUser(t);
    const a = await loginWithForm(t, { username: user.username, password });
    const payload = { current_password: password, new_password: 'a brand new passphrase' };
    expectError(await t.app.inject({ method: 'POST', url: '/v1/password', cookies: { tessera_session: a.token! }, payload }), 403, 'CSRF_FAILED');
    expectError(await t.app.inject({ method: 'POST', url: '/v1/password', headers: bearer(a.token!), payload: { current_password: password, new_password: 'short' } }), 400, 'INVALID_REQUEST');
    const ok = await t.app.inject({ method: 'POST', url: '/v1/password', cookies: { tessera_session: a.token! }, headers: { 'x-tessera-csrf': '1' }, payload });
    expect(ok.statusCode).toBe(200);
  });

  it('without a session → 401', async () => {
    expectError(await t.app.inject({ method: 'POST', url: '/v1/password', payload: { current_password: 'x', new_password: 'a brand new passphrase' } }), 401, 'UNAUTHENTICATED');
  });
});
