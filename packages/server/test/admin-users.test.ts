import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  adminRequest,
  bearer,
  createTestServer,
  createUser,
  createUserWithSessions,
  expectError,
  loginWithForm,
  revocationLog,
  whoamiStatus,
  type TestServer,
  type UserJson,
} from './support.js';

describe('admin: users', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('searches users by a part of the username or email (GET /admin/api/users?q=), never showing a password hash', async () => {
    await createUser(t, { username: 'searchable-ada', email: 'ada@lovelace.example' });
    await createUser(t, { username: 'searchable-bob', email: 'bob@builder.example' });
    const search = async (query: string) => {
      const res = await adminRequest(t, 'GET', `/users?${query}`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.body).not.toContain('argon2');
      return res.json<{ users: Array<{ username: string }> }>().users.map((u) => u.username);
    };
    expect(await search('q=SEARCHABLE')).toEqual(['searchable-ada', 'searchable-bob']);
    expect(await search('q=lovelace')).toEqual(['searchable-ada']);
    expect(await search('q=searchable&limit=1')).toEqual(['searchable-ada']);
    expect(await search('q=%25')).toEqual([]);
    expectError(await adminRequest(t, 'GET', '/users?limit=0'), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'GET', `/users?q=${'x'.repeat(300)}`), 400, 'INVALID_REQUEST');
    expectError(await t.app.inject({ method: 'GET', url: '/admin/api/users?q=a' }), 401, 'INVALID_ADMIN_TOKEN');
  });

  it('POST /admin/api/users creates a user → 201 {user} in snake_case, never the password hash', async () => {
    const res = await adminRequest(t, 'POST', '/users', { username: 'alice', email: 'alice@example.com', password: 'correct horse battery', first_name: 'Alice', last_name: 'Liddell', picture: 'https://img.example/a.png' });
    expect(res.statusCode).toBe(201);
    const { user } = res.json<{ user: UserJson }>();
    expect(user).toMatchObject({ username: 'alice', email: 'alice@example.com', first_name: 'Alice', last_name: 'Liddell', picture: 'https://img.example/a.png', disabled: false });
    expect(user.id).toMatch(/^usr_/);
    expect(Object.keys(user).sort()).toEqual(['created_at', 'disabled', 'email', 'email_verified', 'first_name', 'id', 'last_name', 'picture', 'updated_at', 'username']);
    expect(new Date(user.created_at).toISOString()).toBe(user.created_at);
    expect(res.body).not.toMatch(/password|argon2|hash/i);
  });

  it('accepts a caller-chosen id, and refuses duplicates with 409 USER_CONFLICT', async () => {
    const res = await adminRequest(t, 'POST', '/users', { id: 'legacy-42', username: 'bob', email: 'bob@example.com' });
    expect(res.statusCode).toBe(201);
    expect(res.json().user.id).toBe('legacy-42');
    expectError(await adminRequest(t, 'POST', '/users', { id: 'legacy-42', username: 'other' }), 409, 'USER_CONFLICT');
    expectError(await adminRequest(t, 'POST', '/users', { username: 'BOB' }), 409, 'USER_CONFLICT');
    expectError(await adminRequest(t, 'POST', '/users', { username: 'bobby', email: 'BOB@example.com' }), 409, 'USER_CONFLICT');
  });

  it('refuses invalid users with 400 INVALID_REQUEST', async () => {
    for (const body of [{}, { username: '' }, { username: 'has space' }, { username: 'x', password: 'short' }, { username: 'x', picture: 'javascript:alert(1)' }, { username: 'x', is_admin: true }]) {
      expectError(await adminRequest(t, 'POST', '/users', body), 400, 'INVALID_REQUEST');
    }
  });

  it('GET /admin/api/users/:id reads a user; unknown → 404 USER_NOT_FOUND', async () => {
    const { user } = await createUser(t, { email: 'c@example.com' });
    const res = await adminRequest(t, 'GET', `/users/${user.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ user });
    expectError(await adminRequest(t, 'GET', '/users/usr_missing'), 404, 'USER_NOT_FOUND');
  });

  it('PATCH changes profile fields without ending sessions', async () => {
    const { user, sessions } = await createUserWithSessions(t, 2);
    const res = await adminRequest(t, 'PATCH', `/users/${user.id}`, { first_name: 'Zed', email: 'zed@example.com' });
    expect(res.statusCode).toBe(200);
    expect(res.json().user).toMatchObject({ id: user.id, first_name: 'Zed', email: 'zed@example.com' });
    expect(res.json().revoked).toEqual([]);
    for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(200);
    expect(await revocationLog(t)).toHaveLength(0);
  });

  it('PATCH {"disabled": true} ends all sessions (reason user_disabled) and blocks login', async () => {
    const { user, password, sessions } = await createUserWithSessions(t, 3);
    const res = await adminRequest(t, 'PATCH', `/users/${user.id}`, { disabled: true });
    expect(res.statusCode).toBe(200);
    expect(res.json().user.disabled).toBe(true);
    expect(res.json<{ revoked: string[] }>().revoked.sort()).toEqual(sessions.map((s) => s.handle).sort());
    for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(401);
    const log = await revocationLog(t);
    expect(log).toHaveLength(3);
    expect(log.every((e) => e.reason === 'user_disabled' && e.actor === 'admin' && e.sub === user.id)).toBe(true);
    expect((await loginWithForm(t, { username: user.username, password })).res.statusCode).toBe(403);

    const enabled = await adminRequest(t, 'PATCH', `/users/${user.id}`, { disabled: false });
    expect(enabled.json().user.disabled).toBe(false);
    expect((await loginWithForm(t, { username: user.username, password })).res.statusCode).toBe(303);
    // Re-enabling does not bring ended sessions back.
    for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(401);
  });

  it('PATCH with a new password ends all sessions (reason password_changed)', async () => {
    const { user, password, sessions } = await createUserWithSessions(t, 2);
    const res = await adminRequest(t, 'PATCH', `/users/${user.id}`, { password: 'set by the admin now' });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ revoked: string[] }>().revoked.sort()).toEqual(sessions.map((s) => s.handle).sort());
    expect(res.body).not.toContain('set by the admin now');
    for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(401);
    expect((await revocationLog(t)).map((e) => e.reason)).toEqual(['password_changed', 'password_changed']);
    expect((await loginWithForm(t, { username: user.username, password })).res.statusCode).toBe(401);
    expect((await loginWithForm(t, { username: user.username, password: 'set by the admin now' })).res.statusCode).toBe(303);
  });

  it('PATCH refuses an empty body, unknown fields and unknown users', async () => {
    const { user } = await createUser(t);
    expectError(await adminRequest(t, 'PATCH', `/users/${user.id}`, {}), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'PATCH', `/users/${user.id}`, { disabled: true, role: 'admin' }), 400, 'INVALID_REQUEST');
    expect((await adminRequest(t, 'GET', `/users/${user.id}`)).json().user.disabled).toBe(false);
    expectError(await adminRequest(t, 'PATCH', '/users/usr_missing', { first_name: 'x' }), 404, 'USER_NOT_FOUND');
  });

  it('DELETE /admin/api/users/:id ends all sessions first; the log shows reason user_deleted', async () => {
    const { user, sessions } = await createUserWithSessions(t, 2);
    const res = await adminRequest(t, 'DELETE', `/users/${user.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json<{ revoked: string[] }>().revoked.sort()).toEqual(sessions.map((s) => s.handle).sort());
    for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(401);
    const log = await revocationLog(t);
    expect(log.map((e) => [e.sid, e.reason, e.sub]).sort()).toEqual(sessions.map((s) => [s.handle, 'user_deleted', user.id]).sort());
    expectError(await adminRequest(t, 'GET', `/users/${user.id}`), 404, 'USER_NOT_FOUND');
    expectError(await adminRequest(t, 'DELETE', `/users/${user.id}`), 404, 'USER_NOT_FOUND');
  });

  it('an admin token is not a session token and a session token is not an admin token', async () => {
    const { sessions } = await createUserWithSessions(t, 1);
    expect(await whoamiStatus(t, ADMIN_TOKEN)).toBe(401);
    expectError(await t.app.inject({ method: 'GET', url: '/admin/api/apps', headers: bearer(sessions[0]!.token) }), 401, 'INVALID_ADMIN_TOKEN');
  });
});
