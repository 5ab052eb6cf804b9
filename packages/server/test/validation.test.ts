import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adminRequest, createApp, createTestServer, createUserWithSessions, expectError, whoamiStatus, type TestServer } from './support.js';

let t: TestServer;
beforeEach(async () => {
  t = await createTestServer();
});
afterEach(async () => t.close());

describe('request validation', () => {
  it('does not coerce JSON body types: a number is not a token, a string is not a list', async () => {
    const { sessions } = await createUserWithSessions(t, 1);
    expectError(await t.app.inject({ method: 'DELETE', url: '/v1/logout/api', payload: { session_token: 42 } }), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'POST', '/sessions/revoke', { handles: sessions[0]!.handle }), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'PATCH', `/users/${sessions[0]!.session.user_id}`, { disabled: 'true' }), 400, 'INVALID_REQUEST');
    expect(await whoamiStatus(t, sessions[0]!.token)).toBe(200);
  });

  it('still coerces query strings, which are text by nature', async () => {
    const { user } = await createUserWithSessions(t, 1);
    const res = await adminRequest(t, 'GET', `/users/${user.id}/sessions?include_ended=true`);
    expect(res.statusCode).toBe(200);
  });

  it('authenticates apps before it validates their bodies', async () => {
    const noAuth = await t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { nonsense: true } });
    expectError(noAuth, 401, 'INVALID_CLIENT');
    expect(noAuth.headers['www-authenticate']).toBe('Basic realm="tessera"');
    expectError(await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { 'content-type': 'text/plain' }, payload: '' }), 401, 'INVALID_CLIENT');
    const app = await createApp(t);
    expectError(await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { nonsense: true } }), 400, 'INVALID_REQUEST');
  });
});
