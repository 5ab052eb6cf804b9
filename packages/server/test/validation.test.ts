import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, adminRequest, createApp, createTestServer, createUserWithSessions, expectError, whoamiStatus, type TestServer } from './support.js';

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

describe('numbers that are not numbers', () => {
  it('GET /v1/revocations?after=1e309 or Infinity → 400 INVALID_REQUEST, not a store query', async () => {
    const app = await createApp(t);
    for (const after of ['1e309', 'Infinity', '-Infinity', 'NaN', '9007199254740992', '1e3', '0x10', '1.0', '+1']) {
      expectError(await t.app.inject({ method: 'GET', url: `/v1/revocations?after=${after}`, headers: { authorization: app.basic } }), 400, 'INVALID_REQUEST');
      expectError(await t.app.inject({ method: 'GET', url: `/v1/revocations/stream?after=${after}`, headers: { authorization: app.basic } }), 400, 'INVALID_REQUEST');
    }
    expectError(await t.app.inject({ method: 'GET', url: '/v1/revocations?limit=1001', headers: { authorization: app.basic } }), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'GET', '/audit?limit=1e2'), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'GET', '/deliveries?limit=Infinity'), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'POST', '/deliveries/1e309/retry'), 400, 'INVALID_REQUEST');
    // The largest exact cursor is fine.
    expect((await t.app.inject({ method: 'GET', url: `/v1/revocations?after=${Number.MAX_SAFE_INTEGER}`, headers: { authorization: app.basic } })).statusCode).toBe(200);
  });
});

describe('free-form JSON', () => {
  const nested = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

  it('connectors nested 6 000 levels (POST and PATCH /admin/api/apps) → 400 INVALID_REQUEST, not a stack overflow', async () => {
    const post = await t.app.inject({ method: 'POST', url: '/admin/api/apps', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, payload: `{"name":"deep","connectors":${nested(6000)}}` });
    expectError(post, 400, 'INVALID_REQUEST');
    const app = await createApp(t);
    const patch = await t.app.inject({ method: 'PATCH', url: `/admin/api/apps/${app.clientId}`, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, payload: `{"connectors":{"webhook":${nested(9)}}}` });
    expectError(patch, 400, 'INVALID_REQUEST');
    // More than 16 KiB of JSON, however flat.
    expectError(await adminRequest(t, 'PATCH', `/apps/${app.clientId}`, { connectors: { note: 'x'.repeat(17_000) } }), 400, 'INVALID_REQUEST');
  });

  it('real connector settings are within the bounds', async () => {
    const res = await adminRequest(t, 'POST', '/apps', { name: 'forum', connectors: { webhook: { url: 'https://forum.example/hooks/tessera', events: ['session.revoked'] }, nodebb: { url: 'https://forum.example', options: { a: { b: { c: 1 } } } } } });
    expect(res.statusCode, res.body).toBe(201);
  });
});

describe('bodies as clients send them', () => {
  it('an empty body under a JSON content type is no body: 400 INVALID_REQUEST where one is needed; broken JSON is still MALFORMED_BODY', async () => {
    const json = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    expectError(await t.app.inject({ method: 'POST', url: '/admin/api/users', headers: json, payload: '' }), 400, 'INVALID_REQUEST');
    expectError(await t.app.inject({ method: 'POST', url: '/admin/api/users', headers: json, payload: '{"username":' }), 400, 'MALFORMED_BODY');
    expectError(await t.app.inject({ method: 'POST', url: '/admin/api/users', headers: json, payload: '{"__proto__":{"x":1},"username":"p"}' }), 400, 'MALFORMED_BODY');
  });

  it('a trailing slash names the same route', async () => {
    const { sessions } = await createUserWithSessions(t, 1);
    expect((await t.app.inject({ method: 'GET', url: '/v1/sessions/', headers: { authorization: `Bearer ${sessions[0]!.token}` } })).statusCode).toBe(200);
  });
});
