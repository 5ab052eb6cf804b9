import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestServer, createUserWithSessions, expectError, revocationLog, whoamiStatus, type TestServer } from './support.js';

describe('native-client logout: DELETE /v1/logout/api', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  const logout = (payload?: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'DELETE', url: '/v1/logout/api', headers, ...(payload === undefined ? {} : { payload: payload as object }) });

  it('ends the session of the token → 204, and 204 again when it has already ended (idempotent)', async () => {
    const { sessions: [a, b] } = await createUserWithSessions(t, 2);
    const first = await logout({ session_token: a!.token });
    expect(first.statusCode).toBe(204);
    expect(first.body).toBe('');
    expect(await whoamiStatus(t, a!.token)).toBe(401);
    expect(await whoamiStatus(t, b!.token)).toBe(200);
    const again = await logout({ session_token: a!.token });
    expect(again.statusCode).toBe(204);
    const log = await revocationLog(t);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ sid: a!.handle, reason: 'logout', actor: 'user', app: null });
  });

  it('204 also for a session ended by someone else (admin)', async () => {
    const { sessions: [a] } = await createUserWithSessions(t, 1);
    await t.authority.sessions.revokeSessions([a!.handle], { actor: 'admin', reason: 'admin_revoked' });
    expect((await logout({ session_token: a!.token })).statusCode).toBe(204);
    expect((await revocationLog(t)).map((e) => e.reason)).toEqual(['admin_revoked']);
  });

  it('an unknown or garbage token → 403 TOKEN_INVALID', async () => {
    const { sessions: [a] } = await createUserWithSessions(t, 1);
    const [id, secret] = a!.token.split('.');
    for (const token of ['garbage', 'a.b.c', 'unknownid1234567.unknownsecret12345678', `${id}.${secret!.slice(0, -2)}xx`, `${id}.`, `.${secret}`, '😀.😀', 'x'.repeat(300)]) {
      expectError(await logout({ session_token: token }), 403, 'TOKEN_INVALID');
    }
    expect(await whoamiStatus(t, a!.token)).toBe(200);
    expect(await revocationLog(t)).toHaveLength(0);
  });

  it('a missing or malformed body → 400', async () => {
    expectError(await logout(), 400, 'INVALID_REQUEST');
    expectError(await logout({}), 400, 'INVALID_REQUEST');
    expectError(await logout({ session_token: '' }), 400, 'INVALID_REQUEST');
    expectError(await logout({ session_token: { id: 'x', secret: 'y' } }), 400, 'INVALID_REQUEST');
    expectError(await logout({ token: 'x.y' }), 400, 'INVALID_REQUEST');
    expectError(await logout({ session_token: 'x'.repeat(301) }), 400, 'INVALID_REQUEST');
    expectError(await logout('{"session_token":', { 'content-type': 'application/json' }), 400, 'MALFORMED_BODY');
  });

  it('does not accept the token from a cookie or header instead of the body', async () => {
    const { sessions: [a] } = await createUserWithSessions(t, 1);
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/logout/api', headers: { authorization: `Bearer ${a!.token}` } });
    expectError(res, 400, 'INVALID_REQUEST');
    expect(await whoamiStatus(t, a!.token)).toBe(200);
  });
});
