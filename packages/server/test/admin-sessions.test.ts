import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  adminRequest,
  bearer,
  createApp,
  createTestServer,
  createUser,
  createUserWithSessions,
  expectError,
  loginWithForm,
  revocationLog,
  startAppSession,
  whoamiStatus,
  type SessionJson,
  type TestServer,
} from './support.js';

describe('admin: sessions', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('GET /admin/api/users/:id/sessions lists the sessions with device info and joined apps, no current flag', async () => {
    const { user, app, sessions } = await createUserWithSessions(t, 2);
    const res = await adminRequest(t, 'GET', `/users/${user.id}/sessions`);
    expect(res.statusCode).toBe(200);
    const listed = res.json<{ sessions: SessionJson[] }>().sessions;
    expect(listed.map((s) => s.handle).sort()).toEqual(sessions.map((s) => s.handle).sort());
    for (const s of listed) {
      expect(s.user_agent).toMatch(/^device-\d$/);
      expect(s.ip).toBe('127.0.0.1');
      expect(s.apps.map((a) => a.client_id)).toEqual([app.clientId]);
      expect(s.current).toBeUndefined();
      expect(s.active).toBe(true);
    }
    for (const s of sessions) for (const part of s.token.split('.')) expect(res.body).not.toContain(part);
    expectError(await adminRequest(t, 'GET', '/users/usr_missing/sessions'), 404, 'USER_NOT_FOUND');
  });

  it('ends all sessions of a user with three devices in one call: 3 handles revoked, whoami 401 for all 3', async () => {
    const { user, password } = await createUser(t);
    const laptop = await loginWithForm(t, { username: user.username, password, userAgent: 'laptop' });
    const phone = await loginWithForm(t, { username: user.username, password, userAgent: 'phone' });
    const tablet = await loginWithForm(t, { username: user.username, password, userAgent: 'tablet' });
    const bystander = await createUserWithSessions(t, 1);
    const tokens = [laptop.token!, phone.token!, tablet.token!];
    for (const token of tokens) expect(await whoamiStatus(t, token, 'cookie')).toBe(200);

    const res = await adminRequest(t, 'DELETE', `/users/${user.id}/sessions`);
    expect(res.statusCode).toBe(200);
    const { revoked } = res.json<{ revoked: string[] }>();
    expect(revoked).toHaveLength(3);
    expect(new Set(revoked).size).toBe(3);
    for (const token of tokens) {
      expect(await whoamiStatus(t, token, 'cookie')).toBe(401);
      expect(await whoamiStatus(t, token, 'bearer')).toBe(401);
    }
    expect(await whoamiStatus(t, bystander.sessions[0]!.token)).toBe(200);
    const log = await revocationLog(t);
    expect(log.map((e) => e.sid).sort()).toEqual([...revoked].sort());
    expect(log.every((e) => e.reason === 'admin_revoked' && e.actor === 'admin' && e.app === null)).toBe(true);
    expect((await adminRequest(t, 'GET', `/users/${user.id}/sessions`)).json().sessions).toEqual([]);

    // Idempotent: nothing left to end.
    expect((await adminRequest(t, 'DELETE', `/users/${user.id}/sessions`)).json()).toEqual({ revoked: [] });
  });

  it('?except=<handle> keeps that one session', async () => {
    const { user, sessions: [keep, a, b] } = await createUserWithSessions(t, 3);
    const res = await adminRequest(t, 'DELETE', `/users/${user.id}/sessions?except=${keep!.handle}`);
    expect(res.statusCode).toBe(200);
    expect(res.json<{ revoked: string[] }>().revoked.sort()).toEqual([a!.handle, b!.handle].sort());
    expect(await whoamiStatus(t, keep!.token)).toBe(200);
    expect(await whoamiStatus(t, a!.token)).toBe(401);
    expect(await whoamiStatus(t, b!.token)).toBe(401);
  });

  it('?app=<client_id> ends only that app’s part: sessions stay active, log entries carry the app', async () => {
    const forum = await createApp(t, { name: 'forum' });
    const shop = await createApp(t, { name: 'shop' });
    const { user } = await createUser(t);
    const viaForum1 = await startAppSession(t, forum, user.id, 'one');
    const viaForum2 = await startAppSession(t, forum, user.id, 'two');
    const viaShop = await startAppSession(t, shop, user.id, 'three');

    const res = await adminRequest(t, 'DELETE', `/users/${user.id}/sessions?app=${forum.clientId}`);
    expect(res.statusCode).toBe(200);
    expect(res.json<{ revoked: string[] }>().revoked.sort()).toEqual([viaForum1.handle, viaForum2.handle].sort());

    // The sessions go on (for the other apps); only the forum left them.
    for (const s of [viaForum1, viaForum2, viaShop]) expect(await whoamiStatus(t, s.token)).toBe(200);
    const listed = (await adminRequest(t, 'GET', `/users/${user.id}/sessions`)).json<{ sessions: SessionJson[] }>().sessions;
    expect(listed).toHaveLength(3);
    for (const s of listed.filter((x) => x.handle !== viaShop.handle)) {
      expect(s.active).toBe(true);
      expect(s.apps).toHaveLength(1);
      expect(s.apps[0]!.client_id).toBe(forum.clientId);
      expect(s.apps[0]!.left_at).not.toBeNull();
    }
    expect(listed.find((x) => x.handle === viaShop.handle)!.apps[0]!.left_at).toBeNull();

    const log = await revocationLog(t);
    expect(log).toHaveLength(2);
    expect(log.every((e) => e.app === forum.clientId && e.reason === 'admin_revoked' && e.sub === user.id)).toBe(true);
    expect(log.map((e) => e.sid).sort()).toEqual([viaForum1.handle, viaForum2.handle].sort());

    // Leaving again changes nothing.
    expect((await adminRequest(t, 'DELETE', `/users/${user.id}/sessions?app=${forum.clientId}`)).json()).toEqual({ revoked: [] });
    expectError(await adminRequest(t, 'DELETE', `/users/${user.id}/sessions?app=app_missing`), 404, 'APP_NOT_FOUND');
    expectError(await adminRequest(t, 'DELETE', `/users/${user.id}/sessions?everything=1`), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'DELETE', '/users/usr_missing/sessions'), 404, 'USER_NOT_FOUND');
  });

  it('DELETE /admin/api/sessions/:handle ends one → 204, 404 when unknown', async () => {
    const { sessions: [a, b] } = await createUserWithSessions(t, 2);
    const res = await adminRequest(t, 'DELETE', `/sessions/${a!.handle}`);
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(await whoamiStatus(t, a!.token)).toBe(401);
    expect(await whoamiStatus(t, b!.token)).toBe(200);
    const [entry] = await revocationLog(t);
    expect(entry).toMatchObject({ sid: a!.handle, reason: 'admin_revoked', actor: 'admin', app: null });
    expectError(await adminRequest(t, 'DELETE', '/sessions/ses_unknown'), 404, 'SESSION_NOT_FOUND');
    // Ending an ended session: still known, nothing more is written.
    expect((await adminRequest(t, 'DELETE', `/sessions/${a!.handle}`)).statusCode).toBe(204);
    expect(await revocationLog(t)).toHaveLength(1);
    // The session is ended before it is looked up; neither the unknown handle nor the second
    // call leaves an audit line, as when the lookup came first.
    const audit = (await t.store.listAudit({ limit: 50 })).filter((e) => e.action === 'sessions.revoked');
    expect(audit.map((e) => [e.sessionHandle, e.details.revoked])).toEqual([[a!.handle, [a!.handle]]]);
  });

  it('GET /admin/api/sessions/:handle shows a session, ended ones included', async () => {
    const { sessions: [a] } = await createUserWithSessions(t, 1);
    await adminRequest(t, 'DELETE', `/sessions/${a!.handle}`);
    const res = await adminRequest(t, 'GET', `/sessions/${a!.handle}`);
    expect(res.statusCode).toBe(200);
    expect(res.json().session).toMatchObject({ handle: a!.handle, active: false, ended_by: 'admin', end_reason: 'admin_revoked' });
    expectError(await adminRequest(t, 'GET', '/sessions/ses_unknown'), 404, 'SESSION_NOT_FOUND');
  });

  it('POST /admin/api/sessions/revoke ends many → {revoked}, skipping unknown and ended handles', async () => {
    const { sessions: [a, b, c] } = await createUserWithSessions(t, 3);
    const other = await createUserWithSessions(t, 1);
    await adminRequest(t, 'DELETE', `/sessions/${c!.handle}`);
    const res = await adminRequest(t, 'POST', '/sessions/revoke', { handles: [a!.handle, other.sessions[0]!.handle, 'ses_unknown', c!.handle, a!.handle] });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ revoked: string[] }>().revoked.sort()).toEqual([a!.handle, other.sessions[0]!.handle].sort());
    expect(await whoamiStatus(t, a!.token)).toBe(401);
    expect(await whoamiStatus(t, other.sessions[0]!.token)).toBe(401);
    expect(await whoamiStatus(t, b!.token)).toBe(200);
    expectError(await adminRequest(t, 'POST', '/sessions/revoke', { handles: [] }), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'POST', '/sessions/revoke', {}), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'POST', '/sessions/revoke', { handles: ['not a handle!'] }), 400, 'INVALID_REQUEST');
  });

  it('GET /admin/api/sessions/:handle/deliveries shows each app\'s notice, and apps that only pull', async () => {
    const forum = await createApp(t, { backchannel_logout_uri: 'http://127.0.0.1:9/backchannel' });
    const shop = await createApp(t);
    const { user } = await createUser(t);
    const s = await startAppSession(t, forum, user.id);
    await t.authority.sessions.joinSession((await t.store.findSessionByHandle(s.handle))!, shop.clientId);

    const before = await adminRequest(t, 'GET', `/sessions/${s.handle}/deliveries`);
    expect(before.statusCode).toBe(200);
    const body = before.json<{ handle: string; active: boolean; ended_at: string | null; deliveries: Array<Record<string, unknown>>; pull_only: string[] }>();
    expect(body).toEqual({ handle: s.handle, active: true, ended_at: null, deliveries: [], pull_only: [shop.clientId] });

    await adminRequest(t, 'DELETE', `/sessions/${s.handle}`);
    const after = (await adminRequest(t, 'GET', `/sessions/${s.handle}/deliveries`)).json<typeof body>();
    expect(after.active).toBe(false);
    expect(new Date(after.ended_at!).toISOString()).toBe(after.ended_at);
    expect(after.pull_only).toEqual([shop.clientId]);
    expect(after.deliveries).toHaveLength(1);
    expect(after.deliveries[0]).toMatchObject({ client_id: forum.clientId, channel: 'backchannel', status: 'pending', scope: 'session', sid: s.handle, sub: user.id, sessions: 1, reason: 'admin_revoked', attempts: 0, delivered_at: null });
    expectError(await adminRequest(t, 'GET', '/sessions/ses_unknown/deliveries'), 404, 'SESSION_NOT_FOUND');
  });
});

describe('admin authentication', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  const routes: Array<[string, string, object?]> = [
    ['POST', '/admin/api/users', { username: 'x' }],
    ['GET', '/admin/api/users/usr_x'],
    ['PATCH', '/admin/api/users/usr_x', { disabled: true }],
    ['DELETE', '/admin/api/users/usr_x'],
    ['GET', '/admin/api/users/usr_x/sessions'],
    ['DELETE', '/admin/api/users/usr_x/sessions'],
    ['DELETE', '/admin/api/sessions/ses_x'],
    ['POST', '/admin/api/sessions/revoke', { handles: ['ses_x'] }],
    ['GET', '/admin/api/sessions/ses_x/deliveries'],
    ['POST', '/admin/api/apps', { name: 'x' }],
    ['GET', '/admin/api/apps'],
    ['GET', '/admin/api/apps/app_x'],
    ['PATCH', '/admin/api/apps/app_x', { name: 'y' }],
    ['DELETE', '/admin/api/apps/app_x'],
    ['POST', '/admin/api/apps/app_x/secret'],
  ];

  it('every admin route answers 401 INVALID_ADMIN_TOKEN without a token or with a wrong one, and changes nothing', async () => {
    const { user, sessions } = await createUserWithSessions(t, 1);
    const wrong = [undefined, 'Bearer wrong-token', `Bearer ${'x'.repeat(5000)}`, 'Basic YWRtaW46YWRtaW4=', 'Bearer ', `bearer test-admin-token-0123456789abcdefghijklmnoq`];
    for (const [method, url, payload] of [...routes, ['DELETE', `/admin/api/users/${user.id}/sessions`] as [string, string]]) {
      for (const authorization of wrong) {
        const res = await t.app.inject({ method: method as 'GET', url, headers: authorization === undefined ? {} : { authorization }, ...(payload ? { payload } : {}) });
        expectError(res, 401, 'INVALID_ADMIN_TOKEN');
      }
    }
    expect(await whoamiStatus(t, sessions[0]!.token)).toBe(200);
    expect(await revocationLog(t)).toHaveLength(0);
  });

  it('an admin token created by the CLI path works; the bootstrap token is case-sensitive', async () => {
    const created = await t.authority.admin.createAdminToken('ops');
    expect((await t.app.inject({ method: 'GET', url: '/admin/api/apps', headers: bearer(created) })).statusCode).toBe(200);
    expectError(await t.app.inject({ method: 'GET', url: '/admin/api/apps', headers: bearer('TEST-ADMIN-TOKEN-0123456789ABCDEFGHIJKLMNOP') }), 401, 'INVALID_ADMIN_TOKEN');
  });
});
