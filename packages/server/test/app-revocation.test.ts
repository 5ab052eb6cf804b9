import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp, createTestServer, createUserWithSessions, expectError, revocationLog, whoamiStatus, type TestServer } from './support.js';

let t: TestServer;
beforeEach(async () => {
  t = await createTestServer();
});
afterEach(async () => t.close());

describe('app-authenticated revocation', () => {
  it('DELETE /api/v1/sessions/:handle: a trusted app ends any session, an untrusted one only sessions it joined', async () => {
    const { sessions, app } = await createUserWithSessions(t, 2);
    const outsider = await createApp(t, { trusted: false });
    expectError(await t.app.inject({ method: 'DELETE', url: `/api/v1/sessions/${sessions[0]!.handle}`, headers: { authorization: outsider.basic } }), 404, 'SESSION_NOT_FOUND');
    expect(await whoamiStatus(t, sessions[0]!.token)).toBe(200);
    // The outsider joins the second session (whoami with its credentials), then may end it.
    const joined = await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: outsider.basic, 'x-session-token': sessions[1]!.token } });
    expect(joined.statusCode).toBe(200);
    const ended = await t.app.inject({ method: 'DELETE', url: `/api/v1/sessions/${sessions[1]!.handle}`, headers: { authorization: outsider.basic } });
    expect(ended.statusCode).toBe(204);
    expect(await whoamiStatus(t, sessions[1]!.token)).toBe(401);
    const trusted = await t.app.inject({ method: 'DELETE', url: `/api/v1/sessions/${sessions[0]!.handle}`, headers: { authorization: app.basic } });
    expect(trusted.statusCode).toBe(204);
    expect((await revocationLog(t)).map((e) => e.actor)).toEqual([`app:${outsider.clientId}`, `app:${app.clientId}`]);
    expectError(await t.app.inject({ method: 'DELETE', url: '/api/v1/sessions/ses_unknown', headers: { authorization: app.basic } }), 404, 'SESSION_NOT_FOUND');
  });

  it('DELETE /api/v1/users/:id/sessions: trusted apps only; all, all but one, or one app\'s part', async () => {
    const { user, sessions, app } = await createUserWithSessions(t, 3);
    const untrusted = await createApp(t, { trusted: false });
    expectError(await t.app.inject({ method: 'DELETE', url: `/api/v1/users/${user.id}/sessions`, headers: { authorization: untrusted.basic } }), 403, 'APP_NOT_TRUSTED');
    const appOnly = await t.app.inject({ method: 'DELETE', url: `/api/v1/users/${user.id}/sessions?app=${app.clientId}&except=${sessions[2]!.handle}`, headers: { authorization: app.basic } });
    expect(appOnly.json<{ revoked: string[] }>().revoked.sort()).toEqual([sessions[0]!.handle, sessions[1]!.handle].sort());
    expect(await whoamiStatus(t, sessions[0]!.token)).toBe(200);
    const all = await t.app.inject({ method: 'DELETE', url: `/api/v1/users/${user.id}/sessions?except=${sessions[2]!.handle}`, headers: { authorization: app.basic } });
    expect(all.json<{ revoked: string[] }>().revoked.sort()).toEqual([sessions[0]!.handle, sessions[1]!.handle].sort());
    expect(await whoamiStatus(t, sessions[0]!.token)).toBe(401);
    expect(await whoamiStatus(t, sessions[2]!.token)).toBe(200);
    expectError(await t.app.inject({ method: 'DELETE', url: '/api/v1/users/nobody/sessions', headers: { authorization: app.basic } }), 404, 'USER_NOT_FOUND');
  });
});
