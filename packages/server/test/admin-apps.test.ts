import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  adminRequest,
  basicAuth,
  createApp,
  createTestServer,
  createUser,
  expectError,
  type AppJson,
  type TestServer,
} from './support.js';

const APP_KEYS = [
  'allowed_origins', 'backchannel_logout_session_required', 'backchannel_logout_uri', 'client_id', 'client_name', 'connectors', 'created_at', 'grant_types',
  'id_token_signed_response_alg', 'name', 'post_logout_redirect_uris', 'redirect_uris', 'return_urls', 'token_endpoint_auth_method', 'trusted', 'updated_at',
];

describe('admin: apps', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  async function startWith(basic: string, userId: string) {
    return t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: basic }, payload: { user_id: userId } });
  }

  it('POST /admin/api/apps registers an app → 201 {app, client_secret}, the secret shown once', async () => {
    const res = await adminRequest(t, 'POST', '/apps', {
      name: 'Forum',
      trusted: true,
      allowed_origins: ['https://forum.example'],
      return_urls: ['https://forum.example/logged-out'],
      backchannel_logout_uri: 'https://forum.example/backchannel',
      connectors: { webhook: { url: 'https://forum.example/hook' } },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json<{ app: AppJson; client_secret: string; webhook_secret: string }>();
    expect(body.client_secret.length).toBeGreaterThanOrEqual(32);
    // The webhook connector got a Standard Webhooks signing secret, shown only here.
    expect(body.webhook_secret).toMatch(/^whsec_[A-Za-z0-9+/=]{32}$/);
    expect(body.app).toMatchObject({ name: 'Forum', trusted: true, allowed_origins: ['https://forum.example'], return_urls: ['https://forum.example/logged-out'], backchannel_logout_uri: 'https://forum.example/backchannel', connectors: { webhook: { url: 'https://forum.example/hook', has_secret: true } } });
    expect(body.app.client_id).toMatch(/^app_/);
    expect(Object.keys(body.app).sort()).toEqual(APP_KEYS);

    const read = await adminRequest(t, 'GET', `/apps/${body.app.client_id}`);
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual({ app: body.app });
    expect(read.body).not.toContain(body.client_secret);
    expect(read.body).not.toContain(body.webhook_secret);
    expect(read.body).not.toMatch(/"secret"|secret_hash|whsec_/);
  });

  it('defaults: untrusted, no origins, no return URLs, no back-channel; a chosen client_id is kept', async () => {
    const res = await adminRequest(t, 'POST', '/apps', { name: 'Shop', client_id: 'shop' });
    expect(res.statusCode).toBe(201);
    expect(res.json().app).toMatchObject({ client_id: 'shop', trusted: false, allowed_origins: [], return_urls: [], backchannel_logout_uri: null, connectors: {} });
    expectError(await adminRequest(t, 'POST', '/apps', { name: 'Shop again', client_id: 'shop' }), 409, 'APP_CONFLICT');
  });

  it('refuses malformed apps: typos in settings, bad origins and URLs', async () => {
    const bad = [
      {},
      { name: '' },
      { name: 'x', allowed_orgins: ['https://a.example'] },
      { name: 'x', allowed_origins: ['https://a.example/path'] },
      { name: 'x', allowed_origins: ['*'] },
      { name: 'x', return_urls: ['javascript:alert(1)'] },
      { name: 'x', return_urls: ['//evil.com'] },
      { name: 'x', backchannel_logout_uri: 'ftp://a.example/x' },
      { name: 'x', trusted: 'yes' },
    ];
    for (const body of bad) expectError(await adminRequest(t, 'POST', '/apps', body), 400, 'INVALID_REQUEST');
    expect((await adminRequest(t, 'GET', '/apps')).json().apps).toEqual([]);
  });

  it('GET /admin/api/apps lists apps without secrets', async () => {
    const a = await createApp(t, { name: 'A' });
    const b = await createApp(t, { name: 'B', trusted: false });
    const res = await adminRequest(t, 'GET', '/apps');
    expect(res.statusCode).toBe(200);
    const { apps } = res.json<{ apps: AppJson[] }>();
    expect(apps.map((x) => x.client_id).sort()).toEqual([a.clientId, b.clientId].sort());
    for (const app of apps) expect(Object.keys(app).sort()).toEqual(APP_KEYS);
    expect(res.body).not.toContain(a.clientSecret);
    expect(res.body).not.toContain(b.clientSecret);
  });

  it('registers and changes OIDC client metadata with the standard names; bad metadata is a 400', async () => {
    const res = await adminRequest(t, 'POST', '/apps', {
      client_name: 'Wiki', redirect_uris: ['https://wiki.example/cb'], post_logout_redirect_uris: ['https://wiki.example/bye'], grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none', backchannel_logout_uri: 'https://wiki.example/bc', backchannel_logout_session_required: true, id_token_signed_response_alg: 'ES256',
    });
    expect(res.statusCode).toBe(201);
    const { app } = res.json<{ app: AppJson & Record<string, unknown> }>();
    expect(app).toMatchObject({ name: 'Wiki', client_name: 'Wiki', redirect_uris: ['https://wiki.example/cb'], post_logout_redirect_uris: ['https://wiki.example/bye'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', backchannel_logout_session_required: true, id_token_signed_response_alg: 'ES256' });
    // Defaults of an app registered without OIDC metadata: confidential, both grants, RS256, no redirect URI.
    const plain = (await adminRequest(t, 'POST', '/apps', { name: 'Plain' })).json<{ app: Record<string, unknown> }>().app;
    expect(plain).toMatchObject({ redirect_uris: [], post_logout_redirect_uris: [], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_basic', backchannel_logout_session_required: false, id_token_signed_response_alg: 'RS256' });

    const patched = await adminRequest(t, 'PATCH', `/apps/${app.client_id}`, { redirect_uris: ['https://wiki.example/cb2'], grant_types: ['authorization_code', 'refresh_token'] });
    expect(patched.statusCode).toBe(200);
    // Only the given fields change.
    expect(patched.json<{ app: Record<string, unknown> }>().app).toMatchObject({ redirect_uris: ['https://wiki.example/cb2'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'ES256' });

    for (const bad of [
      { name: 'X', redirect_uris: ['https://x.example/cb#frag'] },
      { name: 'X', grant_types: ['implicit'] },
      { name: 'X', grant_types: ['refresh_token'] },
      { name: 'X', token_endpoint_auth_method: 'private_key_jwt' },
      { name: 'X', id_token_signed_response_alg: 'none' },
      { name: 'X', client_name: 'Y' },
      { redirect_uris: ['https://x.example/cb'] },
    ]) {
      const r = await adminRequest(t, 'POST', '/apps', bad);
      expect(r.statusCode, JSON.stringify(bad)).toBe(400);
      expect(r.json<{ error: string }>().error).toBe('INVALID_REQUEST');
    }
  });

  it('PATCH /admin/api/apps/:id changes settings, and they take effect (trusted, origins)', async () => {
    const app = await createApp(t, { trusted: false, allowed_origins: [] });
    const { user } = await createUser(t);
    expectError(await startWith(app.basic, user.id), 403, 'APP_NOT_TRUSTED');

    const res = await adminRequest(t, 'PATCH', `/apps/${app.clientId}`, { trusted: true, allowed_origins: ['https://new.example'], name: 'Renamed' });
    expect(res.statusCode).toBe(200);
    expect(res.json().app).toMatchObject({ client_id: app.clientId, trusted: true, allowed_origins: ['https://new.example'], name: 'Renamed' });
    expect((await startWith(app.basic, user.id)).statusCode).toBe(201);
    const preflight = await t.app.inject({ method: 'OPTIONS', url: '/v1/logout', headers: { origin: 'https://new.example', 'access-control-request-method': 'POST' } });
    expect(preflight.headers['access-control-allow-origin']).toBe('https://new.example');

    expectError(await adminRequest(t, 'PATCH', `/apps/${app.clientId}`, {}), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'PATCH', `/apps/${app.clientId}`, { client_secret: 'mine' }), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'PATCH', '/apps/app_missing', { name: 'x' }), 404, 'APP_NOT_FOUND');
  });

  it('POST /admin/api/apps/:id/secret rotates the secret: the old one stops working at once', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    expect((await startWith(app.basic, user.id)).statusCode).toBe(201);

    const res = await adminRequest(t, 'POST', `/apps/${app.clientId}/secret`);
    expect(res.statusCode).toBe(200);
    const { client_secret: fresh } = res.json<{ client_secret: string }>();
    expect(fresh).not.toBe(app.clientSecret);
    expect(fresh.length).toBeGreaterThanOrEqual(32);

    const old = await startWith(app.basic, user.id);
    expectError(old, 401, 'INVALID_CLIENT');
    expect((await startWith(basicAuth(app.clientId, fresh), user.id)).statusCode).toBe(201);
    expectError(await adminRequest(t, 'POST', '/apps/app_missing/secret'), 404, 'APP_NOT_FOUND');
  });

  it('DELETE /admin/api/apps/:id → 204; the app is gone and its credentials stop working', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    const res = await adminRequest(t, 'DELETE', `/apps/${app.clientId}`);
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expectError(await adminRequest(t, 'GET', `/apps/${app.clientId}`), 404, 'APP_NOT_FOUND');
    expectError(await adminRequest(t, 'DELETE', `/apps/${app.clientId}`), 404, 'APP_NOT_FOUND');
    expectError(await startWith(app.basic, user.id), 401, 'INVALID_CLIENT');
  });
});
