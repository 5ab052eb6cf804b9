import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ISSUER,
  SITE_RETURN,
  bearer,
  createApp,
  createTestServer,
  createUser,
  expectError,
  loginWithForm,
  signIn,
  pathOf,
  requestLogoutUrl,
  revocationLog,
  setCookie,
  whoamiStatus,
  type Response,
  type TestServer,
} from './support.js';

function expectCookieCleared(res: Response, domain?: string): void {
  const cookie = setCookie(res, 'tessera_session');
  expect(cookie, 'the session cookie is cleared').toBeDefined();
  expect(cookie!.value).toBe('');
  const expired = (cookie!.expires !== undefined && cookie!.expires.getTime() <= Date.now()) || cookie!.maxAge === 0;
  expect(expired).toBe(true);
  expect(cookie!.path).toBe('/');
  expect(cookie!.domain).toBe(domain);
}

describe('browser logout', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('GET /v1/logout/browser → 401 UNAUTHENTICATED without a session', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/v1/logout/browser' }), 401, 'UNAUTHENTICATED');
    expectError(await t.app.inject({ method: 'GET', url: '/v1/logout/browser', cookies: { tessera_session: 'nope.nope' } }), 401, 'UNAUTHENTICATED');
  });

  it('GET /v1/logout/browser → 200 {logout_url, logout_token}; the URL carries the token', async () => {
    const token = await signIn(t);
    const res = await t.app.inject({ method: 'GET', url: '/v1/logout/browser', cookies: { tessera_session: token } });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ logout_url: string; logout_token: string }>();
    expect(Object.keys(body).sort()).toEqual(['logout_token', 'logout_url']);
    const url = new URL(body.logout_url);
    expect(url.origin + url.pathname).toBe(`${ISSUER}/v1/logout`);
    expect(url.searchParams.get('token')).toBe(body.logout_token);
    // The logout token is not the session token, nor part of it.
    expect(body.logout_token).not.toBe(token);
    for (const part of token.split('.')) expect(res.body).not.toContain(part);
    // Getting a URL ends nothing.
    expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
  });

  it('opening the logout URL ends the session, clears the cookie and 303s to the default URL', async () => {
    const token = await signIn(t);
    const { logoutUrl } = await requestLogoutUrl(t, token);
    const res = await t.app.inject({ method: 'GET', url: pathOf(logoutUrl), cookies: { tessera_session: token } });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`${ISSUER}/login`);
    expectCookieCleared(res);
    expect(await whoamiStatus(t, token, 'cookie')).toBe(401);
    const [entry] = await revocationLog(t);
    expect(entry).toMatchObject({ reason: 'logout', actor: 'user', app: null });
  });

  it('with an allow-listed return_to, 303s to exactly that URL (config list and app return_urls)', async () => {
    await createApp(t, { return_urls: ['https://forum.example/bye?from=tessera'] });
    for (const returnTo of [SITE_RETURN, 'https://forum.example/bye?from=tessera']) {
      const token = await signIn(t);
      const { logoutUrl } = await requestLogoutUrl(t, token, returnTo);
      expect(new URL(logoutUrl).searchParams.get('return_to')).toBe(returnTo);
      const res = await t.app.inject({ method: 'GET', url: pathOf(logoutUrl) });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe(returnTo);
      expectCookieCleared(res);
      expect(await whoamiStatus(t, token, 'cookie')).toBe(401);
    }
  });

  it('answers 204 with Accept: application/json instead of redirecting', async () => {
    const token = await signIn(t);
    const { logoutToken } = await requestLogoutUrl(t, token);
    const res = await t.app.inject({ method: 'GET', url: '/v1/logout', query: { token: logoutToken }, headers: { accept: 'application/json' } });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(res.headers.location).toBeUndefined();
    expectCookieCleared(res);
    expect(await whoamiStatus(t, token)).toBe(401);
  });

  it('a wrong, missing or malformed logout token → 403 LOGOUT_TOKEN_INVALID and the session lives on', async () => {
    const token = await signIn(t);
    const { logoutToken } = await requestLogoutUrl(t, token);
    const lastChanged = logoutToken.slice(0, -1) + (logoutToken.endsWith('A') ? 'B' : 'A');
    const queries: Array<Record<string, string>> = [{ token: lastChanged }, {}, { token: 'short' }, { token: 'x'.repeat(200) }, { token }];
    for (const query of queries) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/logout', query, cookies: { tessera_session: token } });
      expectError(res, 403, 'LOGOUT_TOKEN_INVALID');
      expect(setCookie(res, 'tessera_session')).toBeUndefined();
    }
    expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
    expect(await revocationLog(t)).toHaveLength(0);
  });

  it('the logout token is one-time: a second use → 403', async () => {
    const token = await signIn(t);
    const { logoutUrl } = await requestLogoutUrl(t, token);
    expect((await t.app.inject({ method: 'GET', url: pathOf(logoutUrl) })).statusCode).toBe(303);
    expectError(await t.app.inject({ method: 'GET', url: pathOf(logoutUrl) }), 403, 'LOGOUT_TOKEN_INVALID');
    expectError(await t.app.inject({ method: 'GET', url: pathOf(logoutUrl), headers: { accept: 'application/json' } }), 403, 'LOGOUT_TOKEN_INVALID');
    expect(await revocationLog(t)).toHaveLength(1);
  });

  it('a logout token expires after logout.tokenTtlSeconds', async () => {
    const token = await signIn(t);
    const { logoutUrl } = await requestLogoutUrl(t, token);
    t.clock.advance(t.config.logout.tokenTtlSeconds * 1000 + 1);
    expectError(await t.app.inject({ method: 'GET', url: pathOf(logoutUrl) }), 403, 'LOGOUT_TOKEN_INVALID');
    expect(await whoamiStatus(t, token)).toBe(200);
  });

  it('a logout token of one session never ends another session, nor clears its cookie', async () => {
    // An attacker can get a logout URL for their own session and make a victim open it:
    // that must neither end the victim's session nor sign the victim's browser out.
    const a = await signIn(t);
    const b = await signIn(t);
    const { logoutUrl } = await requestLogoutUrl(t, a);
    const res = await t.app.inject({ method: 'GET', url: pathOf(logoutUrl), cookies: { tessera_session: b } });
    expect(res.statusCode).toBe(303);
    expect(setCookie(res, 'tessera_session')).toBeUndefined();
    expect(await whoamiStatus(t, a)).toBe(401);
    expect(await whoamiStatus(t, b, 'cookie')).toBe(200);
  });

  const badReturns = ['https://evil.example/', 'https://site.example/bye/../x', 'https://site.example.evil.com', '//evil.com', 'https://SITE.example/bye', 'https://site.example/bye/'];

  it('GET /v1/logout/browser with a return_to that is not allowed → 400 RETURN_URL_NOT_ALLOWED, no token', async () => {
    const token = await signIn(t);
    for (const returnTo of badReturns) {
      expectError(await t.app.inject({ method: 'GET', url: '/v1/logout/browser', query: { return_to: returnTo }, headers: bearer(token) }), 400, 'RETURN_URL_NOT_ALLOWED');
    }
    expect(await whoamiStatus(t, token)).toBe(200);
  });

  it('opening a logout URL with a bad return_to → 400, no redirect, the session is NOT ended and the token not spent', async () => {
    const token = await signIn(t);
    const { logoutToken } = await requestLogoutUrl(t, token);
    for (const returnTo of badReturns) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/logout', query: { token: logoutToken, return_to: returnTo }, cookies: { tessera_session: token } });
      expectError(res, 400, 'RETURN_URL_NOT_ALLOWED');
      expect(res.headers.location).toBeUndefined();
      expect(setCookie(res, 'tessera_session')).toBeUndefined();
      expect(await whoamiStatus(t, token, 'cookie')).toBe(200);
    }
    expect(await revocationLog(t)).toHaveLength(0);
    const ok = await t.app.inject({ method: 'GET', url: '/v1/logout', query: { token: logoutToken, return_to: SITE_RETURN } });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe(SITE_RETURN);
  });

  it('clears the cookie with its Domain when TESSERA_COOKIE_DOMAIN is set', async () => {
    const d = await createTestServer({ env: { TESSERA_COOKIE_DOMAIN: 'site.example' } });
    try {
      const { user, password } = await createUser(d);
      const { token } = await loginWithForm(d, { username: user.username, password });
      const { logoutUrl } = await requestLogoutUrl(d, token!);
      const res = await d.app.inject({ method: 'GET', url: pathOf(logoutUrl) });
      expect(res.statusCode).toBe(303);
      expectCookieCleared(res, 'site.example');
    } finally {
      await d.close();
    }
  });

  it('the signed-in page of /login signs out with a CSRF-protected form (no logout link to leak or prefetch)', async () => {
    const token = await signIn(t);
    const page = await t.app.inject({ method: 'GET', url: '/login', cookies: { tessera_session: token } });
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('/v1/logout?token=');
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const csrfCookie = page.cookies.find((c) => c.name === 'tessera_csrf')!.value;
    const out = await t.app.inject({
      method: 'POST',
      url: '/login/sign-out',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ csrf, scope: 'device' }).toString(),
      cookies: { tessera_session: token, tessera_csrf: csrfCookie },
    });
    expect(out.statusCode).toBe(303);
    expect(await whoamiStatus(t, token)).toBe(401);
  });
});
