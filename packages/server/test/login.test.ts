import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ISSUER,
  SITE_RETURN,
  createApp,
  createTestServer,
  createUser,
  loginWithForm,
  openLoginForm,
  postLogin,
  rawSetCookie,
  revocationLog,
  setCookie,
  whoamiStatus,
  type TestServer,
} from './support.js';

describe('hosted login page', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('GET /login renders a form with a CSRF field and a matching HttpOnly, SameSite=Strict CSRF cookie', async () => {
    const form = await openLoginForm(t);
    expect(form.page.headers['content-type']).toMatch(/^text\/html/);
    expect(form.page.body).toContain('<form method="post" action="/login">');
    expect(form.page.body).toContain('name="username"');
    expect(form.page.body).toContain('name="password"');
    expect(form.csrf).toBe(form.csrfCookie);
    expect(form.csrf.length).toBeGreaterThanOrEqual(24);
    const cookie = setCookie(form.page, 'tessera_csrf')!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Strict');
    expect(cookie.path).toBe('/login');
    // The page cannot be framed (clickjacking) nor cached.
    expect(form.page.headers['x-frame-options']).toBe('DENY');
    expect(form.page.headers['cache-control']).toBe('no-store');
  });

  it('gives a different CSRF value to every form', async () => {
    const a = await openLoginForm(t);
    const b = await openLoginForm(t);
    expect(a.csrf).not.toBe(b.csrf);
  });

  it('POST /login without a CSRF field or cookie answers the 403 page and signs nobody in', async () => {
    const { user, password } = await createUser(t);
    const res = await postLogin(t, { fields: { username: user.username, password } });
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(setCookie(res, t.config.cookie.name)).toBeUndefined();
    expect(await t.store.listSessionsByUser(user.id)).toHaveLength(0);
  });

  it('POST /login with the field but no cookie answers 403', async () => {
    const { user, password } = await createUser(t);
    const form = await openLoginForm(t);
    const res = await postLogin(t, { fields: { username: user.username, password, csrf: form.csrf } });
    expect(res.statusCode).toBe(403);
    expect(setCookie(res, t.config.cookie.name)).toBeUndefined();
  });

  it('POST /login with a wrong CSRF value answers 403', async () => {
    const { user, password } = await createUser(t);
    const form = await openLoginForm(t);
    const other = await openLoginForm(t);
    const res = await postLogin(t, { fields: { username: user.username, password, csrf: other.csrf }, cookies: { tessera_csrf: form.csrfCookie } });
    expect(res.statusCode).toBe(403);
    expect(res.body).not.toContain(password);
    expect(setCookie(res, t.config.cookie.name)).toBeUndefined();
    expect(await t.store.listSessionsByUser(user.id)).toHaveLength(0);
  });

  it('answers the same 401 page for a wrong password and for an unknown user', async () => {
    const { user } = await createUser(t, { username: 'alice' });
    const wrong = await loginWithForm(t, { username: user.username, password: 'not the password' });
    const unknown = await loginWithForm(t, { username: 'nobody-here', password: 'not the password' });
    expect(wrong.res.statusCode).toBe(401);
    expect(unknown.res.statusCode).toBe(401);
    expect(wrong.token).toBeNull();
    expect(unknown.token).toBeNull();
    // Apart from the fresh CSRF value and the echoed username, the two pages are identical:
    // nothing tells an attacker whether the account exists.
    const normalise = (body: string, username: string) => body.replace(/name="csrf" value="[^"]+"/, 'name="csrf" value="X"').replace(`value="${username}"`, 'value="U"');
    expect(normalise(wrong.res.body, 'alice')).toBe(normalise(unknown.res.body, 'nobody-here'));
    expect(wrong.res.body).toContain('Wrong username or password.');
    expect(wrong.res.body).not.toContain('not the password');
    expect(await t.store.listSessionsByUser(user.id)).toHaveLength(0);
  });

  it('an empty or missing username or password is shown next to its field (400), signs nobody in and is not counted as a failure', async () => {
    const limited = await createTestServer({ file: { rateLimit: { enabled: true, loginMax: 1, loginAccountMax: 1 } } });
    try {
      const { user, password } = await createUser(limited, { username: 'carol' });
      const errorOf = (html: string, id: string) => {
        const input = new RegExp(`<input id="${id}"[^>]*>`).exec(html)![0];
        if (!input.includes(`aria-describedby="${id}-error"`) || !input.includes('aria-invalid="true"')) return undefined;
        return new RegExp(`<p class="field-error" id="${id}-error">([^<]*)</p>`).exec(html)?.[1];
      };
      for (const fields of [{ username: '', password: '' }, { username: '  ', password: 'x' }, { password: 'x' }, { username: 'carol' }, { username: 'carol', password: '' }, {}]) {
        const form = await openLoginForm(limited);
        const res = await postLogin(limited, { fields: { ...fields, csrf: form.csrf }, cookies: { tessera_csrf: form.csrfCookie } });
        expect(res.statusCode, JSON.stringify(fields)).toBe(400);
        expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
        expect(errorOf(res.body, 'username')).toBe(!fields.username?.trim() ? 'Enter your username or email.' : undefined);
        expect(errorOf(res.body, 'password')).toBe(!fields.password ? 'Enter your password.' : undefined);
        expect(setCookie(res, limited.config.cookie.name)).toBeUndefined();
      }
      // None of those counted: with limits of one failure, the right password still signs in.
      const ok = await loginWithForm(limited, { username: user.username, password });
      expect(ok.res.statusCode).toBe(303);
      expect(ok.token).not.toBeNull();
    } finally {
      await limited.close();
    }
  });

  it('signs in: 303 to the exact allow-listed return_to and a session cookie that works', async () => {
    const { user, password } = await createUser(t);
    const { res, token } = await loginWithForm(t, { username: user.username, password, returnTo: SITE_RETURN });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(SITE_RETURN);
    expect(token).not.toBeNull();
    const cookie = setCookie(res, 'tessera_session')!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Lax');
    expect(cookie.path).toBe('/');
    expect(cookie.domain).toBeUndefined();
    // TESSERA_COOKIE_SECURE=false in the default test config.
    expect(rawSetCookie(res, 'tessera_session')).not.toMatch(/;\s*Secure/i);
    expect(await whoamiStatus(t, token!, 'cookie')).toBe(200);
    const sessions = await t.store.listSessionsByUser(user.id);
    expect(sessions).toHaveLength(1);
  });

  it('signs in by email as well as by username', async () => {
    const { user, password } = await createUser(t, { email: 'Bob@Example.com' });
    const { res, token } = await loginWithForm(t, { username: 'bob@example.com', password });
    expect(res.statusCode).toBe(303);
    expect(token).not.toBeNull();
    const who = await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${token!}` } });
    expect(who.json().user.id).toBe(user.id);
  });

  it('without return_to redirects to the issuer login page', async () => {
    const { user, password } = await createUser(t);
    const { res } = await loginWithForm(t, { username: user.username, password });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`${ISSUER}/login`);
  });

  it('accepts a return URL registered by an app', async () => {
    const app = await createApp(t, { return_urls: ['https://forum.example/after-login'] });
    const { user, password } = await createUser(t);
    const { res } = await loginWithForm(t, { username: user.username, password, returnTo: 'https://forum.example/after-login', clientId: app.clientId });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('https://forum.example/after-login');
    const [session] = await t.store.listSessionsByUser(user.id);
    expect(session!.apps.map((a) => a.clientId)).toEqual([app.clientId]);
  });

  it('refuses a disabled user after the right password (403 page, no session)', async () => {
    const { user, password } = await createUser(t);
    await t.authority.users.updateUser(user.id, { disabled: true }, 'admin');
    const { res, token } = await loginWithForm(t, { username: user.username, password });
    expect(res.statusCode).toBe(403);
    expect(token).toBeNull();
    expect(res.body).toContain('disabled');
  });

  const tricky = [
    ['a URL that is not registered at all', 'https://evil.example/'],
    ['a prefix-match path traversal', 'https://site.example/bye/../x'],
    ['an extension of the path', 'https://site.example/bye/more'],
    ['the allowed host as a subdomain of another', 'https://site.example.evil.com'],
    ['the allowed host as a subdomain of another, with the path', 'https://site.example.evil.com/bye'],
    ['a scheme-relative URL', '//evil.com'],
    ['a different case', 'https://SITE.example/bye'],
    ['a different path case', 'https://site.example/BYE'],
    ['a trailing slash', 'https://site.example/bye/'],
    ['an added query', 'https://site.example/bye?next=https://evil.com'],
    ['userinfo', 'https://site.example@evil.com/bye'],
    ['http instead of https', 'http://site.example/bye'],
    ['a javascript: URL', 'javascript:alert(1)'],
  ] as const;

  for (const [what, returnTo] of tricky) {
    it(`POST /login refuses ${what} (${returnTo}) with 400 and no redirect, no session`, async () => {
      const { user, password } = await createUser(t);
      const form = await openLoginForm(t);
      const res = await postLogin(t, { fields: { username: user.username, password, csrf: form.csrf, return_to: returnTo }, cookies: { tessera_csrf: form.csrfCookie } });
      expect(res.statusCode).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(setCookie(res, t.config.cookie.name)).toBeUndefined();
      expect(await t.store.listSessionsByUser(user.id)).toHaveLength(0);
    });
  }

  it('GET /login with a return_to that is not allowed answers 400 and no form', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/login', query: { return_to: 'https://site.example.evil.com' } });
    expect(res.statusCode).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.body).not.toContain('<form');
  });

  it('GET /login when already signed in redirects to the allowed return_to without a new session', async () => {
    const { user, password } = await createUser(t);
    const { token } = await loginWithForm(t, { username: user.username, password });
    const res = await t.app.inject({ method: 'GET', url: '/login', query: { return_to: SITE_RETURN }, cookies: { tessera_session: token! } });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(SITE_RETURN);
    expect(await t.store.listSessionsByUser(user.id)).toHaveLength(1);
  });

  it('never fixes a session: a second login in the same browser gets a new token and ends the old one', async () => {
    const { user, password } = await createUser(t);
    const first = await loginWithForm(t, { username: user.username, password });
    expect(first.token).not.toBeNull();
    // The browser still holds the first session cookie when it posts a login form again
    // (GET /login would show the signed-in page, so the form comes from before).
    const form = await openLoginForm(t);
    const secondRes = await postLogin(t, { fields: { username: user.username, password, csrf: form.csrf }, cookies: { tessera_csrf: form.csrfCookie, tessera_session: first.token! } });
    const second = { res: secondRes, token: setCookie(secondRes, 'tessera_session')?.value ?? null };
    expect(second.res.statusCode).toBe(303);
    expect(second.token).not.toBeNull();
    expect(second.token).not.toBe(first.token);
    // Neither part of the old token survives in the new one.
    const [oldId] = first.token!.split('.');
    expect(second.token!.startsWith(`${oldId}.`)).toBe(false);
    expect(await whoamiStatus(t, first.token!, 'cookie')).toBe(401);
    expect(await whoamiStatus(t, second.token!, 'cookie')).toBe(200);
    const active = await t.store.listSessionsByUser(user.id);
    expect(active).toHaveLength(1);
    const log = await revocationLog(t);
    expect(log).toHaveLength(1);
    expect(log[0]!.reason).toBe('logout');
  });

  it('a session cookie planted before login (fixation attempt) is never promoted', async () => {
    const { user, password } = await createUser(t);
    const planted = 'plantedid1234567.plantedsecret1234567890';
    const { token } = await loginWithForm(t, { username: user.username, password, cookies: { tessera_session: planted } });
    expect(token).not.toBeNull();
    expect(token).not.toBe(planted);
    expect(await whoamiStatus(t, planted, 'cookie')).toBe(401);
    expect(await whoamiStatus(t, token!, 'cookie')).toBe(200);
  });

  it('rejects a form that is not form-encoded with an error envelope, not a 500', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/login', payload: '<xml/>', headers: { 'content-type': 'application/xml' } });
    expect(res.json().error).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(res.statusCode).toBe(415);
  });
});

describe('session cookie attributes from configuration', () => {
  it('sets Secure by default (TESSERA_COOKIE_SECURE unset)', async () => {
    // An empty value counts as unset, so the schema default (secure) applies.
    const t = await createTestServer({ env: { TESSERA_COOKIE_SECURE: '' } });
    expect(t.config.cookie.secure).toBe(true);
    try {
      const { user, password } = await createUser(t);
      const { res, token } = await loginWithForm(t, { username: user.username, password });
      expect(res.statusCode).toBe(303);
      expect(token).not.toBeNull();
      expect(setCookie(res, 'tessera_session')!.secure).toBe(true);
      expect(rawSetCookie(res, 'tessera_session')).toMatch(/;\s*Secure/i);
      expect(rawSetCookie(res, 'tessera_session')).toMatch(/;\s*HttpOnly/i);
      expect(rawSetCookie(res, 'tessera_session')).toMatch(/;\s*SameSite=Lax/i);
    } finally {
      await t.close();
    }
  });

  it('sets Domain when TESSERA_COOKIE_DOMAIN is set', async () => {
    const t = await createTestServer({ env: { TESSERA_COOKIE_DOMAIN: 'site.example' } });
    try {
      const { user, password } = await createUser(t);
      const { res } = await loginWithForm(t, { username: user.username, password });
      expect(res.statusCode).toBe(303);
      expect(setCookie(res, 'tessera_session')!.domain).toBe('site.example');
      expect(rawSetCookie(res, 'tessera_session')).toMatch(/;\s*Domain=site\.example/i);
    } finally {
      await t.close();
    }
  });

  it('uses the configured cookie name', async () => {
    const t = await createTestServer({ env: { TESSERA_COOKIE_NAME: 'sid_custom' } });
    try {
      const { user, password } = await createUser(t);
      const { res, token } = await loginWithForm(t, { username: user.username, password });
      expect(res.statusCode).toBe(303);
      expect(token).not.toBeNull();
      expect(setCookie(res, 'tessera_session')).toBeUndefined();
      expect(await whoamiStatus(t, token!, 'cookie')).toBe(200);
    } finally {
      await t.close();
    }
  });
});
