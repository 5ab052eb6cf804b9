// Hosted pages: every HTML response gets the same security headers from one place
// (pages/send-page.ts), the login page's form-action admits exactly the validated return_to's
// origin, and the signed-in page's two sign-out buttons end exactly what they say.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pageContentSecurityPolicy, pageHeaders } from '../src/pages/index.js';
import {
  SITE_RETURN,
  createTestServer,
  createUser,
  createUserWithSessions,
  loginWithForm,
  openLoginForm,
  postLogin,
  rawSetCookie,
  whoamiStatus,
  type Response,
  type TestServer,
} from './support.js';
import { expectPageHeaders } from './page-headers.js';

function signOut(t: TestServer, input: { scope: string; csrf?: string; cookies: Record<string, string> }): Promise<Response> {
  return t.app.inject({
    method: 'POST',
    url: '/login/sign-out',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ scope: input.scope, ...(input.csrf === undefined ? {} : { csrf: input.csrf }) }).toString(),
    cookies: input.cookies,
  });
}

describe('hosted pages', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('every HTML response carries the same security headers', async () => {
    const { user, password } = await createUser(t);
    const pages: Array<[string, Response, string?]> = [];
    pages.push(['login form', (await openLoginForm(t)).page]);
    pages.push(['return_to not allowed', await t.app.inject({ method: 'GET', url: '/login', query: { return_to: 'https://evil.example/' } })]);
    pages.push(['form expired (403)', await postLogin(t, { fields: { username: user.username, password } })]);
    pages.push(['wrong password (401)', (await loginWithForm(t, { username: user.username, password: 'wrong password!' })).res]);
    const { token } = await loginWithForm(t, { username: user.username, password });
    pages.push(['signed-in page', (await t.app.inject({ method: 'GET', url: '/login', cookies: { tessera_session: token! } }))]);
    pages.push(['sign-out form expired (403)', await signOut(t, { scope: 'device', cookies: { tessera_session: token! } })]);
    for (const [what, res] of pages) {
      expect(res.headers['content-type'], what).toMatch(/^text\/html/);
      expectPageHeaders(res);
    }
    expect(pages.map(([, res]) => res.statusCode)).toEqual([200, 400, 403, 401, 200, 403]);
  });

  it('form-action admits the origin of the validated return_to, on the form and on its 401 re-render', async () => {
    const form = await openLoginForm(t, { return_to: SITE_RETURN });
    expectPageHeaders(form.page, "'self' https://site.example");
    const { user } = await createUser(t);
    const wrong = await loginWithForm(t, { username: user.username, password: 'not the password', returnTo: SITE_RETURN });
    expect(wrong.res.statusCode).toBe(401);
    expectPageHeaders(wrong.res, "'self' https://site.example");
    // A return_to that is not allowed widens nothing.
    const refused = await t.app.inject({ method: 'GET', url: '/login', query: { return_to: 'https://site.example.evil/' } });
    expect(refused.statusCode).toBe(400);
    expectPageHeaders(refused);
  });

  it('the policy takes only http(s) origins, exactly as serialised', () => {
    expect(pageContentSecurityPolicy(['https://a.example', 'http://127.0.0.1:4001', 'https://a.example'])).toContain("form-action 'self' https://a.example http://127.0.0.1:4001;");
    for (const bad of ['https://a.example/path', "https://a.example; script-src 'unsafe-inline'", 'javascript:alert(1)', '*', 'HTTPS://A.EXAMPLE']) {
      expect(() => pageHeaders([bad]), bad).toThrow(TypeError);
    }
  });

  describe('signed-in page', () => {
    async function signedIn() {
      const { user, password, sessions } = await createUserWithSessions(t, 3);
      const { token } = await loginWithForm(t, { username: user.username, password });
      const form = await openLoginForm(t, {}, { tessera_session: token! });
      return { user, sessions, token: token!, form };
    }

    it('offers two buttons, each saying what it ends', async () => {
      const { form } = await signedIn();
      const buttons = [...form.page.body.matchAll(/<button[^>]*>([^<]+)<\/button>/g)].map((m) => m[1]);
      expect(buttons).toEqual(['Sign out of all apps on this device', 'Sign out all my devices']);
      expect(form.page.body).not.toContain('Sign out everywhere');
      expect(form.page.body.match(/<form method="post" action="\/login\/sign-out">/g)).toHaveLength(2);
    });

    it('"Sign out of all apps on this device" ends this browser\'s session only', async () => {
      const { sessions, token, form } = await signedIn();
      const res = await signOut(t, { scope: 'device', csrf: form.csrf, cookies: { tessera_session: token, tessera_csrf: form.csrfCookie } });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/login?signed_out=device');
      expect(rawSetCookie(res, 'tessera_session')).toMatch(/Max-Age=0/);
      expect(await whoamiStatus(t, token)).toBe(401);
      for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(200);
      const after = await t.app.inject({ method: 'GET', url: '/login', query: { signed_out: 'device' } });
      expect(after.body).toContain('You are signed out of all apps on this device.');
    });

    it('"Sign out all my devices" ends every session of the user', async () => {
      const { sessions, token, form } = await signedIn();
      const res = await signOut(t, { scope: 'all', csrf: form.csrf, cookies: { tessera_session: token, tessera_csrf: form.csrfCookie } });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/login?signed_out=all');
      expect(await whoamiStatus(t, token)).toBe(401);
      for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(401);
    });

    it('refuses a sign-out without the form\'s CSRF token, and ends nothing', async () => {
      const { sessions, token, form } = await signedIn();
      for (const attempt of [{ csrf: undefined, cookie: form.csrfCookie }, { csrf: 'forged-value-forged-value', cookie: form.csrfCookie }, { csrf: form.csrf, cookie: undefined }]) {
        const res = await signOut(t, { scope: 'all', ...(attempt.csrf === undefined ? {} : { csrf: attempt.csrf }), cookies: { tessera_session: token, ...(attempt.cookie ? { tessera_csrf: attempt.cookie } : {}) } });
        expect(res.statusCode).toBe(403);
        expect(rawSetCookie(res, 'tessera_session')).toBeUndefined();
      }
      expect(await whoamiStatus(t, token)).toBe(200);
      for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(200);
    });

    it('an unknown scope is a 400 envelope, not a sign-out', async () => {
      const { token, form } = await signedIn();
      const res = await signOut(t, { scope: 'everything', csrf: form.csrf, cookies: { tessera_session: token, tessera_csrf: form.csrfCookie } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('INVALID_REQUEST');
      expect(await whoamiStatus(t, token)).toBe(200);
    });
  });
});
