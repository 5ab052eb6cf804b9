import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ISSUER,
  SITE_ORIGIN,
  createApp,
  createTestServer,
  expectError,
  requestLogoutUrl,
  revocationLog,
  setCookie,
  signIn,
  whoamiStatus,
  type TestServer,
} from './support.js';

describe('XHR logout: POST /v1/logout', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
    await createApp(t, { allowed_origins: [SITE_ORIGIN, 'http://localhost:5173'] });
  });
  afterEach(async () => t.close());

  function xhr(token: string | null, headers: Record<string, string>, payload?: object) {
    return t.app.inject({ method: 'POST', url: '/v1/logout', headers, ...(token ? { cookies: { tessera_session: token } } : {}), ...(payload ? { payload } : {}) });
  }

  it('registered Origin + cookie + X-Tessera-CSRF → 204, session ended, cookie cleared, CORS headers for that origin', async () => {
    const token = await signIn(t);
    const res = await xhr(token, { origin: SITE_ORIGIN, 'x-tessera-csrf': '1' });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(setCookie(res, 'tessera_session')?.value).toBe('');
    expect(res.headers['access-control-allow-origin']).toBe(SITE_ORIGIN);
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(await whoamiStatus(t, token, 'cookie')).toBe(401);
    const [entry] = await revocationLog(t);
    expect(entry).toMatchObject({ reason: 'logout', actor: 'user' });
  });

  it("Tessera's own origin may call it too", async () => {
    const token = await signIn(t);
    expect((await xhr(token, { origin: new URL(ISSUER).origin, 'x-tessera-csrf': '1' })).statusCode).toBe(204);
    expect(await whoamiStatus(t, token, 'cookie')).toBe(401);
  });

  it('without X-Tessera-CSRF → 403 CSRF_FAILED and the session lives on', async () => {
    const token = await signIn(t);
    const res = await xhr(token, { origin: SITE_ORIGIN });
    expectError(res, 403, 'CSRF_FAILED');
    expect(setCookie(res, 'tessera_session')).toBeUndefined();
    expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
  });

  it('from an unregistered origin → 403 ORIGIN_NOT_ALLOWED, without CORS headers, even with the header', async () => {
    const token = await signIn(t);
    const origins = ['https://evil.example', 'https://site.example.evil.com', 'http://site.example', 'https://SITE.example', 'https://site.example:8443', 'null', 'https://site.example/'];
    for (const origin of origins) {
      const res = await xhr(token, { origin, 'x-tessera-csrf': '1' });
      expectError(res, 403, 'ORIGIN_NOT_ALLOWED');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    }
    expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
  });

  it('without an Origin header → 403 ORIGIN_NOT_ALLOWED', async () => {
    const token = await signIn(t);
    expectError(await xhr(token, { 'x-tessera-csrf': '1' }), 403, 'ORIGIN_NOT_ALLOWED');
    expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
  });

  it('a registered origin without a session answers 401 UNAUTHENTICATED (already signed out)', async () => {
    expectError(await xhr(null, { origin: SITE_ORIGIN, 'x-tessera-csrf': '1' }), 401, 'UNAUTHENTICATED');
    expectError(await xhr('garbage.token', { origin: SITE_ORIGIN, 'x-tessera-csrf': '1' }), 401, 'UNAUTHENTICATED');
  });

  it('with the logout token in the JSON body → 204 without the CSRF header; a wrong one → 403', async () => {
    const token = await signIn(t);
    const { logoutToken } = await requestLogoutUrl(t, token);
    expectError(await xhr(token, { origin: SITE_ORIGIN }, { logout_token: 'x'.repeat(43) }), 403, 'LOGOUT_TOKEN_INVALID');
    expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
    const res = await xhr(token, { origin: SITE_ORIGIN }, { logout_token: logoutToken });
    expect(res.statusCode).toBe(204);
    expect(setCookie(res, 'tessera_session')?.value).toBe('');
    expect(await whoamiStatus(t, token, 'cookie')).toBe(401);
    // One-time.
    expectError(await xhr(token, { origin: SITE_ORIGIN }, { logout_token: logoutToken }), 403, 'LOGOUT_TOKEN_INVALID');
  });

  it('the logout token in the body still needs a registered origin', async () => {
    const token = await signIn(t);
    const { logoutToken } = await requestLogoutUrl(t, token);
    expectError(await xhr(token, { origin: 'https://evil.example' }, { logout_token: logoutToken }), 403, 'ORIGIN_NOT_ALLOWED');
    expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
  });

  it('unknown body fields → 400 INVALID_REQUEST', async () => {
    const token = await signIn(t);
    expectError(await xhr(token, { origin: SITE_ORIGIN, 'x-tessera-csrf': '1' }, { logout_token: 'x'.repeat(43), everywhere: true }), 400, 'INVALID_REQUEST');
    expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
  });

  it('answers the CORS preflight with credentials for a registered origin', async () => {
    const res = await t.app.inject({
      method: 'OPTIONS',
      url: '/v1/logout',
      headers: { origin: SITE_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-tessera-csrf,content-type' },
    });
    expect(res.statusCode).toBeLessThan(300);
    expect(res.headers['access-control-allow-origin']).toBe(SITE_ORIGIN);
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(String(res.headers['access-control-allow-methods'])).toMatch(/POST/);
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toContain('x-tessera-csrf');
    expect(String(res.headers.vary ?? '')).toMatch(/Origin/i);

    const other = await t.app.inject({ method: 'OPTIONS', url: '/v1/logout', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' } });
    expect(other.headers['access-control-allow-origin']).toBe('http://localhost:5173');
  });

  it('never answers the CORS preflight for other origins (no Allow-Origin, no credentials, never *)', async () => {
    for (const origin of ['https://evil.example', 'https://site.example.evil.com', 'null', 'http://localhost:5174']) {
      const res = await t.app.inject({ method: 'OPTIONS', url: '/v1/logout', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-tessera-csrf' } });
      expect(res.statusCode).toBeLessThan(500);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    }
    // Nor on other routes that carry session data.
    const whoami = await t.app.inject({ method: 'OPTIONS', url: '/v1/whoami', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect(whoami.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('an origin removed from the app stops being answered', async () => {
    const app = await createApp(t, { allowed_origins: ['https://temp.example'] });
    const token = await signIn(t);
    const preflight = () => t.app.inject({ method: 'OPTIONS', url: '/v1/logout', headers: { origin: 'https://temp.example', 'access-control-request-method': 'POST' } });
    expect((await preflight()).headers['access-control-allow-origin']).toBe('https://temp.example');
    await t.app.inject({ method: 'PATCH', url: `/admin/api/apps/${app.clientId}`, headers: { authorization: `Bearer ${t.config.adminToken!}` }, payload: { allowed_origins: [] } });
    expect((await preflight()).headers['access-control-allow-origin']).toBeUndefined();
    expectError(await xhr(token, { origin: 'https://temp.example', 'x-tessera-csrf': '1' }), 403, 'ORIGIN_NOT_ALLOWED');
  });
});
