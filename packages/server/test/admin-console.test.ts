// The admin console (/admin, console/): its own sign-in with the admin token and its own
// cookie (Path=/admin), CSRF on every form, users, sessions, deliveries, apps and the
// revocation log as pages — each action checked against what it changed in the store, and
// every bad input answered with the error next to its field.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, adminRequest, createApp, createUser, createTestServer, loginWithForm, setCookie, startAppSession, type Response, type TestServer } from './support.js';
import { expectPageHeaders } from './page-headers.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** A signed-in console: its cookie and the CSRF token of its forms. */
interface Console {
  cookie: string;
  csrf: string;
  csrfCookie: string;
}

const csrfField = (html: string) => /<input type="hidden" name="csrf" value="([^"]+)">/.exec(html)?.[1];

async function signIn(t: TestServer, token = ADMIN_TOKEN): Promise<Console> {
  const form = await t.app.inject({ method: 'GET', url: '/admin/login' });
  expect(form.statusCode).toBe(200);
  const csrfCookie = setCookie(form, 'tessera_admin_csrf')!.value;
  const res = await t.app.inject({ method: 'POST', url: '/admin/login', headers: FORM, payload: new URLSearchParams({ csrf: csrfField(form.body)!, token }).toString(), cookies: { tessera_admin_csrf: csrfCookie } });
  expect(res.statusCode, res.body).toBe(303);
  expect(res.headers.location).toBe('/admin');
  const cookie = setCookie(res, 'tessera_admin')!.value;
  const page = await t.app.inject({ method: 'GET', url: '/admin', cookies: { tessera_admin: cookie } });
  expect(page.statusCode).toBe(200);
  return { cookie, csrf: csrfField(page.body)!, csrfCookie: setCookie(page, 'tessera_admin_csrf')!.value };
}

function get(t: TestServer, c: Console, url: string): Promise<Response> {
  return t.app.inject({ method: 'GET', url, cookies: { tessera_admin: c.cookie } });
}

function post(t: TestServer, c: Console, url: string, fields: Record<string, string> = {}, withCsrf = true): Promise<Response> {
  return t.app.inject({
    method: 'POST', url, headers: FORM,
    payload: new URLSearchParams({ ...(withCsrf ? { csrf: c.csrf } : {}), ...fields }).toString(),
    cookies: { tessera_admin: c.cookie, tessera_admin_csrf: c.csrfCookie },
  });
}

/** The error shown next to a field: its text, and the field points at it with aria-describedby. */
function fieldError(html: string, name: string): string | undefined {
  const input = new RegExp(`<(?:input|textarea|select)[^>]*id="f-${name}"[^>]*>`).exec(html)?.[0];
  if (!input || !/aria-invalid="true"/.test(input) || !input.includes(`f-${name}-error`)) return undefined;
  return new RegExp(`<p class="field-error" id="f-${name}-error">([^<]*)</p>`).exec(html)?.[1];
}

async function userSession(t: TestServer, username: string, password: string, userAgent?: string): Promise<string> {
  const { token } = await loginWithForm(t, { username, password, userAgent });
  expect(token).not.toBeNull();
  return token!;
}

describe('admin console: sign-in and separation from user sessions', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('sends a browser without a console sign-in to the sign-in form, which has the page headers and a CSRF cookie scoped to /admin', async () => {
    for (const url of ['/admin', '/admin/users', '/admin/apps', '/admin/revocations', '/admin/sessions/ses_x', '/admin/nothing-here']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(303);
      expect(res.headers.location).toBe('/admin/login');
    }
    const form = await t.app.inject({ method: 'GET', url: '/admin/login' });
    expectPageHeaders(form);
    expect(form.body).toContain('<link rel="stylesheet" href="/assets/tessera-');
    const csrf = setCookie(form, 'tessera_admin_csrf')!;
    expect(csrf).toMatchObject({ path: '/admin', httpOnly: true, sameSite: 'Strict' });
  });

  it('signs in with the admin token: a console cookie (HttpOnly, SameSite=Strict, Path=/admin) that is not the admin token', async () => {
    const form = await t.app.inject({ method: 'GET', url: '/admin/login' });
    const res = await t.app.inject({ method: 'POST', url: '/admin/login', headers: FORM, payload: new URLSearchParams({ csrf: csrfField(form.body)!, token: ADMIN_TOKEN }).toString(), cookies: { tessera_admin_csrf: setCookie(form, 'tessera_admin_csrf')!.value } });
    expect(res.statusCode).toBe(303);
    const cookie = setCookie(res, 'tessera_admin')!;
    expect(cookie).toMatchObject({ path: '/admin', httpOnly: true, sameSite: 'Strict' });
    expect(cookie.domain).toBeUndefined();
    expect(cookie.value).toMatch(/^acs[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(cookie.value).not.toContain(ADMIN_TOKEN);
    // The console's own session: Secure follows cookie.secure (false only in these local tests).
    expect(cookie.secure ?? false).toBe(t.config.cookie.secure);
  });

  it('refuses a wrong or empty token with the error next to the field, and a form without its CSRF token', async () => {
    const form = await t.app.inject({ method: 'GET', url: '/admin/login' });
    const csrfCookie = setCookie(form, 'tessera_admin_csrf')!.value;
    const send = (fields: Record<string, string>) => t.app.inject({ method: 'POST', url: '/admin/login', headers: FORM, payload: new URLSearchParams(fields).toString(), cookies: { tessera_admin_csrf: csrfCookie } });
    const wrong = await send({ csrf: csrfField(form.body)!, token: `${ADMIN_TOKEN}x` });
    expect(wrong.statusCode).toBe(401);
    expect(fieldError(wrong.body, 'token')).toBe('That is not a valid admin token.');
    expect(setCookie(wrong, 'tessera_admin')).toBeUndefined();
    expectPageHeaders(wrong);
    const empty = await send({ csrf: csrfField(form.body)!, token: '  ' });
    expect(empty.statusCode).toBe(400);
    expect(fieldError(empty.body, 'token')).toBe('Enter the admin token.');
    const long = await send({ csrf: csrfField(form.body)!, token: 'x'.repeat(5000) });
    expect(long.statusCode).toBe(401);
    const noCsrf = await send({ token: ADMIN_TOKEN });
    expect(noCsrf.statusCode).toBe(403);
    expect(noCsrf.body).toContain('CSRF_FAILED');
    expect(setCookie(noCsrf, 'tessera_admin')).toBeUndefined();
    const badCsrf = await send({ csrf: 'A'.repeat(32), token: ADMIN_TOKEN });
    expect(badCsrf.statusCode).toBe(403);
  });

  it('admin pages refuse a user session cookie; user pages refuse the console cookie', async () => {
    const { user, password } = await createUser(t);
    const userToken = await userSession(t, user.username, password);
    const c = await signIn(t);
    // A valid user session, as the session cookie or in the console cookie's place: not signed in.
    for (const cookies of [{ [t.config.cookie.name]: userToken }, { tessera_admin: userToken }]) {
      const res = await t.app.inject({ method: 'GET', url: '/admin/users', cookies });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/admin/login');
    }
    // Nor does a bearer admin token sign a page in (that is the API's credential).
    expect((await t.app.inject({ method: 'GET', url: '/admin', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).statusCode).toBe(303);
    // A valid console sign-in, as the console cookie (sent to /account only by a forged request) or as a session cookie: /account asks for a login.
    for (const cookies of [{ tessera_admin: c.cookie }, { [t.config.cookie.name]: c.cookie }]) {
      const res = await t.app.inject({ method: 'GET', url: '/account', cookies });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toMatch(/^\/login\?return_to=/);
    }
    expect((await t.app.inject({ method: 'GET', url: '/v1/whoami', cookies: { [t.config.cookie.name]: c.cookie } })).statusCode).toBe(401);
    // The admin API does not take the console cookie either.
    const api = await t.app.inject({ method: 'GET', url: '/admin/api/apps', cookies: { tessera_admin: c.cookie } });
    expect(api.statusCode).toBe(401);
    expect(api.json<{ error: string }>().error).toBe('INVALID_ADMIN_TOKEN');
  });

  it('signs out: the console sign-in ends, and replaying its cookie goes to the sign-in form', async () => {
    const c = await signIn(t);
    const noCsrf = await post(t, c, '/admin/logout', {}, false);
    expect(noCsrf.statusCode).toBe(403);
    expect((await get(t, c, '/admin')).statusCode).toBe(200);
    const out = await post(t, c, '/admin/logout');
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe('/admin/login?signed_out=1');
    expect(setCookie(out, 'tessera_admin')?.value).toBe('');
    const replay = await get(t, c, '/admin');
    expect(replay.statusCode).toBe(303);
    expect(replay.headers.location).toBe('/admin/login');
  });

  it('a console sign-in expires after adminConsole.sessionSeconds', async () => {
    const c = await signIn(t);
    t.clock.advance(t.config.adminConsole.sessionSeconds * 1000 - 1000);
    expect((await get(t, c, '/admin')).statusCode).toBe(200);
    t.clock.advance(2000);
    expect((await get(t, c, '/admin')).statusCode).toBe(303);
  });

  it('unknown console pages and malformed ids are error pages with a catalogue code; the admin API keeps its JSON', async () => {
    const c = await signIn(t);
    const missing = await get(t, c, '/admin/nothing-here');
    expect(missing.statusCode).toBe(404);
    expectPageHeaders(missing);
    expect(missing.body).toContain('NOT_FOUND');
    const bad = await get(t, c, '/admin/users/has%20space');
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('INVALID_REQUEST');
    expect(bad.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(bad.body).not.toMatch(/at .*\.ts:\d+|FST_ERR/);
    const unknownUser = await get(t, c, '/admin/users/usr_nobody');
    expect(unknownUser.statusCode).toBe(404);
    expect(unknownUser.body).toContain('USER_NOT_FOUND');
    const api = await t.app.inject({ method: 'GET', url: '/admin/api/nothing', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(api.statusCode).toBe(404);
    expect(api.json<{ error: string }>().error).toBe('NOT_FOUND');
  });
});

describe('admin console: sign-in failure limit', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer({ file: { rateLimit: { enabled: true, credentialMax: 3, windowSeconds: 60 } } });
  });
  afterEach(async () => t.close());

  it('counts wrong tokens per address and answers 429 past the limit; the right token still signs in; the window ends', async () => {
    const form = await t.app.inject({ method: 'GET', url: '/admin/login' });
    const csrf = csrfField(form.body)!;
    const csrfCookie = setCookie(form, 'tessera_admin_csrf')!.value;
    const attempt = (token: string) => t.app.inject({ method: 'POST', url: '/admin/login', headers: FORM, payload: new URLSearchParams({ csrf, token }).toString(), cookies: { tessera_admin_csrf: csrfCookie } });
    for (let i = 0; i < 3; i += 1) expect((await attempt(`wrong-${i}-${'x'.repeat(40)}`)).statusCode).toBe(401);
    const limited = await attempt(`wrong-4-${'x'.repeat(40)}`);
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.body).toContain('RATE_LIMITED');
    expect((await attempt(ADMIN_TOKEN)).statusCode).toBe(303);
    t.clock.advance(61_000);
    expect((await attempt(`wrong-5-${'x'.repeat(40)}`)).statusCode).toBe(401);
  });
});
