// The admin console (/admin, console/): its own sign-in with the admin token and its own
// cookie (Path=/admin), CSRF on every form, users, sessions, deliveries, apps and the
// revocation log as pages — each action checked against what it changed in the store, and
// every bad input answered with the error next to its field.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, adminRequest, createApp, createUser, createTestServer, loginWithForm, setCookie, startAppSession, type Response, type TestServer } from './support.js';
import { expectPageHeaders } from './page-headers.js';
import { STORE_KINDS, storeOptions } from './store-kinds.js';

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
  const raw = new RegExp(`<p class="field-error" id="f-${name}-error">([^<]*)</p>`).exec(html)?.[1];
  return raw?.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

async function userSession(t: TestServer, username: string, password: string, userAgent?: string): Promise<string> {
  const { token } = await loginWithForm(t, { username, password, userAgent });
  expect(token).not.toBeNull();
  return token!;
}

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
const STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';
// The receiver's own credential that Tessera sends on every push: never on a page.
const PUSH_CREDENTIAL = 'Bearer push-credential-of-the-receiver-0123456789';

/** A Shared Signals receiver client with a push stream (with an authorization header) and a poll stream. */
async function ssfReceiver(t: TestServer): Promise<{ receiver: Awaited<ReturnType<typeof createApp>>; accessToken: string; push: string; poll: string }> {
  const receiver = await createApp(t, { name: 'Receiver SIEM', grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
  const issued = await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: receiver.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials&scope=ssf.manage' });
  expect(issued.statusCode, issued.body).toBe(200);
  const accessToken = issued.json<{ access_token: string }>().access_token;
  const create = async (payload: object) => {
    const res = await t.app.inject({ method: 'POST', url: '/ssf/streams', headers: { authorization: `Bearer ${accessToken}` }, payload });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ stream_id: string }>().stream_id;
  };
  const push = await create({ events_requested: [SESSION_REVOKED], description: 'SIEM push', delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'https://siem.example/events', authorization_header: PUSH_CREDENTIAL } });
  const poll = await create({ events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE] });
  return { receiver, accessToken, push, poll };
}

describe('admin console: sign-in and separation from user sessions', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('sends a browser without a console sign-in to the sign-in form, which has the page headers and a CSRF cookie scoped to /admin', async () => {
    for (const url of ['/admin', '/admin/users', '/admin/apps', '/admin/revocations', '/admin/ssf', '/admin/ssf/st_x', '/admin/sessions/ses_x', '/admin/nothing-here']) {
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

describe.each(STORE_KINDS)('admin console on %s: users, sessions, deliveries, apps, log', (kind) => {
  let t: TestServer;
  let c: Console;
  beforeEach(async () => {
    t = await createTestServer(await storeOptions(kind));
    c = await signIn(t);
  });
  afterEach(async () => t.close());

  it('searches users by part of the username or email', async () => {
    await createUser(t, { username: 'margaret', email: 'mh@nasa.example' });
    await createUser(t, { username: 'grace', email: 'grace@navy.example' });
    const byName = await get(t, c, '/admin/users?q=MARG');
    expectPageHeaders(byName);
    expect(byName.body).toContain('>margaret</a>');
    expect(byName.body).not.toContain('>grace</a>');
    const byEmail = await get(t, c, '/admin/users?q=navy.example');
    expect(byEmail.body).toContain('>grace</a>');
    expect(byEmail.body).not.toContain('>margaret</a>');
    expect((await get(t, c, '/admin/users?q=nobody-at-all')).body).toContain('No user matches.');
    // By exact id too.
    const grace = (await t.store.findUserByLogin('grace'))!;
    expect((await get(t, c, `/admin/users?q=${grace.id}`)).body).toContain('>grace</a>');
    // The query is shown escaped, never as markup.
    const xss = await get(t, c, `/admin/users?q=${encodeURIComponent('<script>x</script>')}`);
    expect(xss.body).not.toContain('<script>');
  });

  it('creates a user, and shows each bad field\'s error next to it (nothing created)', async () => {
    const bad = async (fields: Record<string, string>, name: string, status = 400) => {
      const res = await post(t, c, '/admin/users', fields);
      expect(res.statusCode, res.body).toBe(status);
      const error = fieldError(res.body, name);
      expect(error, `${name} error in ${res.body.slice(0, 200)}`).toBeTruthy();
      return error;
    };
    await bad({ username: '' }, 'username');
    await bad({ username: 'two words' }, 'username');
    await bad({ username: 'ok', email: 'not-an-email' }, 'email');
    await bad({ username: 'ok', password: 'short' }, 'password');
    await bad({ username: 'ad\u200bmin' }, 'username');
    expect(await t.store.searchUsers('', 10)).toEqual([]);
    const made = await post(t, c, '/admin/users', { username: 'ada', email: 'ada@example.com', password: 'correct horse battery', email_verified: '1' });
    expect(made.statusCode).toBe(303);
    const user = await t.store.findUserByLogin('ada');
    expect(user).toMatchObject({ email: 'ada@example.com', emailVerified: true });
    expect(made.headers.location).toBe(`/admin/users/${user!.id}?done=created`);
    expect((await get(t, c, made.headers.location as string)).body).toContain('The user is created.');
    expect(await bad({ username: 'ADA' }, 'username', 409)).toBe('A user with this username or email already exists.');
    // Without the CSRF token nothing is created.
    expect((await post(t, c, '/admin/users', { username: 'eve' }, false)).statusCode).toBe(403);
    expect(await t.store.findUserByLogin('eve')).toBeNull();
  });

  it('ends one session, all but one, one app\'s part, and all; disables, enables and deletes (with confirmation)', async () => {
    const forum = await createApp(t, { name: 'Forum' });
    const shop = await createApp(t, { name: 'Shop' });
    const { user } = await createUser(t);
    const [s1, s2, s3, s4] = [await startAppSession(t, forum, user.id, 'ua-1'), await startAppSession(t, forum, user.id, 'ua-2'), await startAppSession(t, shop, user.id, 'ua-3'), await startAppSession(t, shop, user.id, 'ua-4')];
    const page = await get(t, c, `/admin/users/${user.id}`);
    expect(page.body).toContain('Active sessions (4)');
    for (const s of [s1, s2, s3, s4]) expect(page.body).toContain(`/admin/sessions/${s!.handle}/end`);
    const active = async () => (await t.store.listSessionsByUser(user.id)).map((s) => s.handle).sort();

    const one = await post(t, c, `/admin/sessions/${s1!.handle}/end`);
    expect(one.statusCode).toBe(303);
    expect(one.headers.location).toBe(`/admin/sessions/${s1!.handle}?done=ended`);
    expect(await active()).toEqual([s2!.handle, s3!.handle, s4!.handle].sort());
    const ended = (await t.store.findSessionByHandle(s1!.handle))!;
    expect(ended).toMatchObject({ endReason: 'admin_revoked', endedBy: 'admin' });

    // Bad choices are errors next to their field; nothing ends.
    const url = `/admin/users/${user.id}/sessions/end`;
    let res = await post(t, c, url, { scope: 'bogus' });
    expect(res.statusCode).toBe(400);
    expect(fieldError(res.body, 'scope')).toBe('Choose which sessions to end.');
    res = await post(t, c, url, { scope: 'except', except: s1!.handle });
    expect(fieldError(res.body, 'except')).toBe('Choose one of the user\'s active sessions to keep.');
    res = await post(t, c, url, { scope: 'app', app: '' });
    expect(fieldError(res.body, 'app')).toBe('Choose the app whose part ends.');
    res = await post(t, c, url, { scope: 'app', app: 'app_nobody' });
    expect(fieldError(res.body, 'app')).toBe('No such app.');
    expect(await active()).toHaveLength(3);

    res = await post(t, c, url, { scope: 'app', app: shop.clientId });
    expect(res.headers.location).toBe(`/admin/users/${user.id}?done=app`);
    expect(await active()).toHaveLength(3);
    expect((await t.store.findSessionByHandle(s3!.handle))!.apps.find((a) => a.clientId === shop.clientId)?.leftAt).not.toBeNull();

    res = await post(t, c, url, { scope: 'except', except: s2!.handle });
    expect(res.headers.location).toBe(`/admin/users/${user.id}?done=others`);
    expect(await active()).toEqual([s2!.handle]);

    res = await post(t, c, `/admin/users/${user.id}/disable`, { disabled: '1' });
    expect(res.headers.location).toBe(`/admin/users/${user.id}?done=disabled`);
    expect((await t.store.findUserById(user.id))!.disabled).toBe(true);
    expect(await active()).toEqual([]);
    expect((await get(t, c, `/admin/users/${user.id}`)).body).toContain('Enable user');
    await post(t, c, `/admin/users/${user.id}/disable`, { disabled: '0' });
    expect((await t.store.findUserById(user.id))!.disabled).toBe(false);

    await startAppSession(t, forum, user.id);
    res = await post(t, c, url, { scope: 'all' });
    expect(res.headers.location).toBe(`/admin/users/${user.id}?done=all`);
    expect(await active()).toEqual([]);

    res = await post(t, c, `/admin/users/${user.id}/delete`, {});
    expect(res.statusCode).toBe(400);
    expect(fieldError(res.body, 'confirm')).toBe('Tick this box to confirm the deletion.');
    expect(await t.store.findUserById(user.id)).not.toBeNull();
    res = await post(t, c, `/admin/users/${user.id}/delete`, { confirm: '1' });
    expect(res.headers.location).toBe('/admin/users?done=deleted');
    expect(await t.store.findUserById(user.id)).toBeNull();
    // Actions without the CSRF token change nothing.
    const { user: other } = await createUser(t);
    expect((await post(t, c, `/admin/users/${other.id}/disable`, { disabled: '1' }, false)).statusCode).toBe(403);
    expect((await t.store.findUserById(other.id))!.disabled).toBe(false);
  });

  it('shows a session\'s deliveries per app (pending with the next attempt, dead with the last error, delivered) and retries a dead one', async () => {
    const forum = await createApp(t, { name: 'Forum', backchannel_logout_uri: 'https://forum.example/bc' });
    const shop = await createApp(t, { name: 'Shop', connectors: { webhook: { url: 'https://shop.example/hook' } } });
    const quiet = await createApp(t, { name: 'Quiet' });
    const { user } = await createUser(t);
    const s = await startAppSession(t, forum, user.id);
    for (const app of [shop, quiet]) {
      const joined = await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: app.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=session_token&session_token=${encodeURIComponent(s.token)}` });
      expect(joined.statusCode, joined.body).toBe(200);
    }
    expect((await post(t, c, `/admin/sessions/${s.handle}/end`)).statusCode).toBe(303);
    const deliveries = await t.store.listDeliveriesBySession(s.handle);
    expect(deliveries.map((d) => d.clientId).sort()).toEqual([forum.clientId, shop.clientId].sort());
    // A worker attempt: the forum's notice arrives, the shop's ends dead.
    const now = t.clock.now();
    const claimed = await t.store.claimDeliveries('test-worker', now, now + 60_000, 10);
    for (const d of claimed) {
      await t.store.completeDelivery(d.id, 'test-worker', d.clientId === forum.clientId ? { status: 'delivered', at: now, httpStatus: 200 } : { status: 'dead', at: now, nextAttemptAt: now, error: 'HTTP 503 from the receiver', httpStatus: 503 });
    }
    const page = await get(t, c, `/admin/sessions/${s.handle}`);
    expectPageHeaders(page);
    const dead = deliveries.find((d) => d.clientId === shop.clientId)!;
    const delivered = deliveries.find((d) => d.clientId === forum.clientId)!;
    expect(page.body).toMatch(new RegExp(`data-delivery="${delivered.id}"><span class="pill status-delivered" data-status="delivered">`));
    expect(page.body).toMatch(new RegExp(`data-delivery="${dead.id}"><span class="pill status-dead" data-status="dead">dead</span> last error: HTTP 503 from the receiver<`));
    expect(page.body).toContain('Without a push channel');
    expect(page.body).toContain('Quiet');
    expect(page.body).toContain(`/admin/deliveries/${dead.id}/retry`);
    expect(page.body).not.toContain(`/admin/deliveries/${delivered.id}/retry`);

    expect((await post(t, c, `/admin/deliveries/${dead.id}/retry`, { handle: s.handle }, false)).statusCode).toBe(403);
    expect((await t.store.findDelivery(dead.id))!.status).toBe('dead');
    const retried = await post(t, c, `/admin/deliveries/${dead.id}/retry`, { handle: s.handle });
    expect(retried.statusCode).toBe(303);
    expect(retried.headers.location).toBe(`/admin/sessions/${s.handle}?done=retried`);
    expect((await t.store.findDelivery(dead.id))!.status).toBe('pending');
    const after = await get(t, c, retried.headers.location as string);
    expect(after.body).toMatch(new RegExp(`data-delivery="${dead.id}"><span class="pill status-pending" data-status="pending">pending</span> next attempt <time`));
    // A delivered or unknown delivery cannot be retried: an error page with its code.
    const again = await post(t, c, `/admin/deliveries/${delivered.id}/retry`, { handle: s.handle });
    expect(again.statusCode).toBe(404);
    expect(again.body).toContain('DELIVERY_NOT_FOUND');
    // A redirect never leaves the console, whatever the form says.
    const odd = await post(t, c, `/admin/deliveries/${dead.id}/retry`, { handle: '//evil.example' });
    expect(odd.headers.location).toBe(`/admin/sessions/${s.handle}?done=retried`);
  });

  it('Shared Signals: lists every stream with status and delivery state, shows one stream\'s SETs, changes its status as the admin API does, and sends a dead SET again', async () => {
    const { receiver, push, poll } = await ssfReceiver(t);
    const { user } = await createUser(t, { username: 'signal' });
    const [s1, s2] = [await startAppSession(t, receiver, user.id), await startAppSession(t, receiver, user.id)];
    for (const s of [s1, s2]) expect((await adminRequest(t, 'DELETE', `/sessions/${s.handle}`)).statusCode).toBe(204);
    // A push attempt (the worker's store calls): the first SET ends dead on the receiver's
    // 400, the second (same subject, so only after it) is delivered.
    const now = t.clock.now();
    const [first] = await t.store.claimSsfPushEvents('test-worker', now, now + 60_000, 10);
    expect(await t.store.completeSsfEvent(first!.id, 'test-worker', { status: 'dead', at: now, nextAttemptAt: now, error: 'invalid_audience: not for us', httpStatus: 400 })).toBe(true);
    const [second] = await t.store.claimSsfPushEvents('test-worker', now, now + 60_000, 10);
    expect(await t.store.completeSsfEvent(second!.id, 'test-worker', { status: 'delivered', at: now + 1, httpStatus: 202 })).toBe(true);

    const list = await get(t, c, '/admin/ssf');
    expect(list.statusCode).toBe(200);
    expectPageHeaders(list);
    expect(list.body).toContain('<a href="/admin/ssf" aria-current="page">Shared Signals</a>');
    for (const id of [push, poll]) expect(list.body).toContain(`<a href="/admin/ssf/${id}">${id}</a>`);
    const row = (id: string) => new RegExp(`<tr><td><a href="/admin/ssf/${id}">[\\s\\S]*?</tr>`).exec(list.body)?.[0] ?? '';
    expect(row(push)).toContain('Receiver SIEM');
    expect(row(push)).toContain('<td><span data-method="push">push</span><br><code>https://siem.example/events</code></td>');
    expect(row(push)).toContain('https://siem.example/events');
    expect(row(push)).toContain('data-stream-status="enabled"');
    expect(row(push)).toMatch(/data-count="pending">0<.*data-count="delivered">1<.*data-count="dead">1</);
    expect(row(push)).toContain('invalid_audience: not for us');
    expect(row(poll)).toContain('<span data-method="poll">poll</span>');
    expect(row(poll)).toContain(`/ssf/poll/${poll}`);
    expect(row(poll)).toMatch(/data-count="pending">2<.*data-count="delivered">0<.*data-count="dead">0<.*oldest pending <time/);
    expect(row(poll)).toContain('requested: session-revoked, credential-change; delivered: session-revoked, credential-change');
    expect(list.body).toContain('Security Event Tokens of every stream by status');
    expect(list.body).not.toContain(PUSH_CREDENTIAL);

    const detail = await get(t, c, `/admin/ssf/${push}`);
    expect(detail.statusCode).toBe(200);
    expectPageHeaders(detail);
    expect(detail.body).toContain('set by the receiver (never shown)');
    expect(detail.body).not.toContain('push-credential-of-the-receiver');
    expect(detail.body).toMatch(new RegExp(`data-event="${first!.id}"><span class="pill status-dead" data-status="dead">dead</span>`));
    expect(detail.body).toMatch(new RegExp(`data-event="${second!.id}"><span class="pill status-delivered" data-status="delivered">delivered</span>`));
    expect(detail.body).toContain(`user <a href="/admin/users/${user.id}">${user.id}</a>`);
    expect(detail.body).toContain('invalid_audience: not for us (HTTP 400)');
    const retryUrl = `/admin/ssf/${push}/events/${first!.id}/retry`;
    expect(detail.body).toContain(`action="${retryUrl}"`);
    expect(detail.body).not.toContain(`/events/${second!.id}/retry`);
    // Only the dead ones, when asked.
    const deadOnly = await get(t, c, `/admin/ssf/${push}?show=dead`);
    expect([...deadOnly.body.matchAll(/data-event="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([first!.id]);
    expect((await get(t, c, `/admin/ssf/${push}?show=lost`)).statusCode).toBe(400);

    // Send the dead SET again: not without the CSRF token; then pending, due now.
    expect((await post(t, c, retryUrl, {}, false)).statusCode).toBe(403);
    expect((await t.store.listSsfEvents(push, { status: 'dead', limit: 10 })).map((e) => e.id)).toEqual([first!.id]);
    t.clock.advance(1_000);
    let res = await post(t, c, retryUrl);
    expect(res.statusCode, res.body).toBe(303);
    expect(res.headers.location).toBe(`/admin/ssf/${push}?done=retried`);
    const retried = (await t.store.listSsfEvents(push, { limit: 10 })).find((e) => e.id === first!.id)!;
    expect(retried).toMatchObject({ status: 'pending', nextAttemptAt: t.clock.now(), jti: first!.jti });
    expect((await get(t, c, res.headers.location as string)).body).toContain('The SET is queued again');
    // Not dead any more, delivered, of another stream, unknown: an error page with its code.
    for (const url of [retryUrl, `/admin/ssf/${push}/events/${second!.id}/retry`, `/admin/ssf/${poll}/events/${first!.id}/retry`]) {
      res = await post(t, c, url);
      expect(res.statusCode, url).toBe(404);
      expect(res.body).toContain('SSF_EVENT_NOT_FOUND');
    }
    res = await post(t, c, `/admin/ssf/st_unknown/events/${first!.id}/retry`);
    expect(res.statusCode).toBe(404);
    expect(res.body).toContain('SSF_STREAM_NOT_FOUND');
    res = await post(t, c, `/admin/ssf/${push}/events/x1/retry`);
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('INVALID_REQUEST');

    // The status form: bad values are errors next to their field, nothing changes.
    const statusUrl = `/admin/ssf/${push}/status`;
    res = await post(t, c, statusUrl, { status: 'asleep' });
    expect(res.statusCode).toBe(400);
    expect(fieldError(res.body, 'status')).toBe('Choose enabled, paused or disabled.');
    res = await post(t, c, statusUrl, { status: 'paused', reason: 'x'.repeat(1025) });
    expect(res.statusCode).toBe(400);
    expect(fieldError(res.body, 'reason')).toBe('A reason has at most 1024 characters.');
    expect((await post(t, c, statusUrl, { status: 'paused', reason: 'forged' }, false)).statusCode).toBe(403);
    expect((await t.store.findSsfStream(push))!.status).toBe('enabled');
    res = await post(t, c, '/admin/ssf/st_unknown/status', { status: 'paused' });
    expect(res.statusCode).toBe(404);
    expect(res.body).toContain('SSF_STREAM_NOT_FOUND');

    // The console's pause and the admin API's pause (on the other stream) do the same thing:
    // the status with its reason, and a stream-updated SET telling the receiver.
    res = await post(t, c, statusUrl, { status: 'paused', reason: 'receiver maintenance' });
    expect(res.statusCode, res.body).toBe(303);
    expect(res.headers.location).toBe(`/admin/ssf/${push}?done=status`);
    expect((await adminRequest(t, 'POST', `/ssf/streams/${poll}/status`, { status: 'paused', reason: 'receiver maintenance' })).statusCode).toBe(200);
    const state = async (id: string) => {
      const stream = (await t.store.findSsfStream(id))!;
      const updated = (await t.store.listSsfEvents(id, { limit: 10 })).filter((e) => e.eventType === STREAM_UPDATED).map((e) => (e.claims.events as Record<string, unknown>)[STREAM_UPDATED]);
      return { status: stream.status, reason: stream.statusReason, updated };
    };
    expect(await state(push)).toEqual({ status: 'paused', reason: 'receiver maintenance', updated: [{ status: 'paused', reason: 'receiver maintenance' }] });
    expect(await state(poll)).toEqual(await state(push));
    const audit = (await t.store.listAudit({ limit: 50 })).filter((e) => e.action === 'ssf.stream_status').map((e) => [e.actor, e.details]);
    expect(audit).toEqual(expect.arrayContaining([['admin', { stream: push, status: 'paused', reason: 'receiver maintenance' }], ['admin', { stream: poll, status: 'paused', reason: 'receiver maintenance' }]]));
    const paused = await get(t, c, `/admin/ssf/${push}?done=status`);
    expect(paused.body).toContain('data-stream-status="paused"><span class="pill status-paused" data-status="paused">paused</span> receiver maintenance');
    expect(paused.body).toContain('The stream&#39;s status is changed.');
    // An empty reason is no reason, as when the API's body leaves it out.
    expect((await post(t, c, statusUrl, { status: 'enabled', reason: '  ' })).statusCode).toBe(303);
    expect(await state(push)).toMatchObject({ status: 'enabled', reason: null });

    // Disabled: the pending SETs are dropped; a dead one cannot be sent again (409, no button).
    const [again] = await t.store.claimSsfPushEvents('test-worker', t.clock.now(), t.clock.now() + 60_000, 10);
    expect(again!.id).toBe(first!.id);
    await t.store.completeSsfEvent(again!.id, 'test-worker', { status: 'dead', at: t.clock.now(), nextAttemptAt: t.clock.now(), error: 'invalid_audience: still not', httpStatus: 400 });
    expect((await post(t, c, statusUrl, { status: 'disabled', reason: 'contract ended' })).statusCode).toBe(303);
    expect((await t.store.ssfDeliveryState(push)).pending).toBe(0);
    const disabled = await get(t, c, `/admin/ssf/${push}`);
    expect(disabled.body).not.toContain(`action="${retryUrl}"`);
    expect(disabled.body).toContain('A disabled stream sends nothing');
    res = await post(t, c, retryUrl);
    expect(res.statusCode).toBe(409);
    expect(res.body).toContain('SSF_STREAM_DISABLED');
    expect((await t.store.listSsfEvents(push, { status: 'dead', limit: 10 })).map((e) => e.id)).toEqual([first!.id]);

    const unknown = await get(t, c, '/admin/ssf/st_unknown');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).toContain('SSF_STREAM_NOT_FOUND');
  });

  it('Shared Signals: the operator sets a stream\'s aud (console and admin API); the receiver cannot; new SETs carry it', async () => {
    const { receiver, accessToken, push, poll } = await ssfReceiver(t);
    const c = await signIn(t);
    const audienceUrl = `/admin/ssf/${push}/audience`;
    const page = await get(t, c, `/admin/ssf/${push}`);
    expect(page.body).toContain(`<dd data-stream-aud><code>${receiver.clientId}</code></dd>`);
    expect(page.body).toContain(`action="${audienceUrl}"`);

    // Bad values are errors next to the field; nothing changes.
    for (const [aud, message] of [
      ['', 'Give one to ten values, separated by spaces, each at most 512 characters.'],
      [Array.from({ length: 11 }, (_, i) => `aud-${i}`).join(' '), 'Give one to ten values, separated by spaces, each at most 512 characters.'],
      ['x'.repeat(513), 'Give one to ten values, separated by spaces, each at most 512 characters.'],
      [':no-scheme', 'aud: a value with a colon must be a URI (RFC 7519 StringOrURI).'],
      ['https://ok.example.test bad\u0001value', 'aud: a value is empty or holds white space or control characters.'],
    ] as const) {
      const res = await post(t, c, audienceUrl, { aud });
      expect(res.statusCode, aud).toBe(400);
      expect(fieldError(res.body, 'aud'), aud).toBe(message);
    }
    expect((await post(t, c, audienceUrl, { aud: 'https://forged.example.test' }, false)).statusCode).toBe(403);
    expect((await post(t, c, '/admin/ssf/st_unknown/audience', { aud: 'https://example.okta.test' })).statusCode).toBe(404);
    expect((await t.store.findSsfStream(push))!.audience).toEqual([receiver.clientId]);

    let res = await post(t, c, audienceUrl, { aud: '  https://example.okta.test \n https://example.okta.test ' });
    expect(res.statusCode, res.body).toBe(303);
    expect(res.headers.location).toBe(`/admin/ssf/${push}?done=audience`);
    const done = await get(t, c, `/admin/ssf/${push}?done=audience`);
    expect(done.body).toContain('<dd data-stream-aud><code>https://example.okta.test</code></dd>');
    expect(done.body).toContain('The audience is changed');

    // The admin API: a string or an array; the same rules, as 400 INVALID_REQUEST.
    for (const body of [{ aud: [] }, { aud: '' }, { aud: ':x' }, { aud: ['a b'] }, { aud: 'x', extra: 1 }, {}]) {
      const bad = await adminRequest(t, 'PUT', `/ssf/streams/${poll}/audience`, body);
      expect(bad.statusCode, JSON.stringify(body)).toBe(400);
      expect(bad.json<{ error: string }>().error).toBe('INVALID_REQUEST');
    }
    expect((await adminRequest(t, 'PUT', '/ssf/streams/st_unknown/audience', { aud: 'x' })).statusCode).toBe(404);
    const viaApi = await adminRequest(t, 'PUT', `/ssf/streams/${poll}/audience`, { aud: ['urn:example:receiver', 'siem'] });
    expect(viaApi.statusCode, viaApi.body).toBe(200);
    expect(viaApi.json<{ stream: { aud: string[] } }>().stream.aud).toEqual(['urn:example:receiver', 'siem']);
    const listed = (await adminRequest(t, 'GET', '/ssf/streams')).json<{ streams: Array<{ stream_id: string; aud: string[] }> }>().streams;
    expect(Object.fromEntries(listed.map((s) => [s.stream_id, s.aud]))).toEqual({ [push]: ['https://example.okta.test'], [poll]: ['urn:example:receiver', 'siem'] });

    // The receiver reads the aud in its stream configuration and cannot change it (SSF: transmitter-supplied).
    const bearer = { authorization: `Bearer ${accessToken}` };
    const patched = await t.app.inject({ method: 'PATCH', url: '/ssf/streams', headers: bearer, payload: { stream_id: push, aud: 'https://attacker.example.test' } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json<{ aud: unknown }>().aud).toBe('https://example.okta.test');
    const config = await t.app.inject({ method: 'GET', url: `/ssf/streams?stream_id=${poll}`, headers: bearer });
    expect(config.json<{ aud: unknown }>().aud).toEqual(['urn:example:receiver', 'siem']);

    // The SETs planned from now on carry it.
    const { user } = await createUser(t, { username: 'audience-user' });
    const s = await startAppSession(t, receiver, user.id);
    expect((await adminRequest(t, 'DELETE', `/sessions/${s.handle}`)).statusCode).toBe(204);
    const [pushed] = await t.store.listSsfEvents(push, { limit: 1 });
    const [polled] = await t.store.listSsfEvents(poll, { limit: 1 });
    expect(pushed!.claims.aud).toBe('https://example.okta.test');
    expect(polled!.claims.aud).toEqual(['urn:example:receiver', 'siem']);
    const audit = (await t.store.listAudit({ limit: 50 })).filter((e) => e.action === 'ssf.stream_audience').map((e) => [e.actor, e.clientId, e.details]);
    expect(audit).toEqual(expect.arrayContaining([
      ['admin', receiver.clientId, { stream: push, audience: ['https://example.okta.test'], previous: [receiver.clientId] }],
      ['admin', receiver.clientId, { stream: poll, audience: ['urn:example:receiver', 'siem'], previous: [receiver.clientId] }],
    ]));
  });

  it('registers an app (secret shown once), edits it with errors next to fields, rotates the secret, deletes it', async () => {
    let res = await post(t, c, '/admin/apps', { name: 'Forum', allowed_origins: 'https://forum.example\nhttps://forum.example/path' });
    expect(res.statusCode).toBe(400);
    expect(fieldError(res.body, 'allowed_origins')).toMatch(/origin like https:\/\/forum\.example\.com/);
    // What was typed is shown again.
    expect(res.body).toContain('https://forum.example/path</textarea>');
    res = await post(t, c, '/admin/apps', { name: '' });
    expect(fieldError(res.body, 'name')).toBe('Enter a name.');
    res = await post(t, c, '/admin/apps', { name: 'Forum', redirect_uris: 'https://forum.example/cb#frag' });
    expect(fieldError(res.body, 'redirect_uris')).toBeTruthy();
    res = await post(t, c, '/admin/apps', { name: 'Forum', webhook_url: 'ftp://x' });
    expect(fieldError(res.body, 'webhook_url')).toBeTruthy();
    res = await post(t, c, '/admin/apps', { name: 'Forum', backchannel_logout_uri: 'not a url' });
    expect(fieldError(res.body, 'backchannel_logout_uri')).toBeTruthy();
    expect(await t.store.listApps()).toEqual([]);

    res = await post(t, c, '/admin/apps', { client_id: 'forum', name: 'Forum', trusted: '1', allowed_origins: 'https://forum.example', return_urls: 'https://forum.example/\nhttps://forum.example/bye', backchannel_logout_uri: 'https://forum.example/bc', webhook_url: 'https://forum.example/hook' });
    expect(res.statusCode, res.body).toBe(201);
    expectPageHeaders(res);
    const secret = /<code class="secret" id="client-secret">([^<]+)<\/code>/.exec(res.body)![1]!;
    const webhookSecret = /<code class="secret" id="webhook-secret">([^<]+)<\/code>/.exec(res.body)![1]!;
    expect(await t.authority.apps.authenticateApp('forum', secret)).not.toBeNull();
    const stored = (await t.store.findApp('forum'))!;
    expect(stored).toMatchObject({ trusted: true, allowedOrigins: ['https://forum.example'], returnUrls: ['https://forum.example/', 'https://forum.example/bye'], backchannelLogoutUri: 'https://forum.example/bc' });
    expect((stored.connectors.webhook as { secret: string }).secret).toBe(webhookSecret);
    expect((await post(t, c, '/admin/apps', { client_id: 'forum', name: 'Again' })).statusCode).toBe(409);

    const edit = await get(t, c, '/admin/apps/forum');
    expect(edit.body).not.toContain(secret);
    expect(edit.body).not.toContain(webhookSecret);
    expect(edit.body).toContain('https://forum.example/hook');
    // Saving with the webhook URL unchanged keeps its signing secret; a changed URL keeps it too.
    res = await post(t, c, '/admin/apps/forum', { name: 'The Forum', allowed_origins: 'https://forum.example\nhttps://www.forum.example', return_urls: 'https://forum.example/', backchannel_logout_uri: '', webhook_url: 'https://forum.example/hook2' });
    expect(res.statusCode, res.body).toBe(303);
    expect(res.headers.location).toBe('/admin/apps/forum?done=saved');
    const edited = (await t.store.findApp('forum'))!;
    expect(edited).toMatchObject({ name: 'The Forum', allowedOrigins: ['https://forum.example', 'https://www.forum.example'], returnUrls: ['https://forum.example/'], backchannelLogoutUri: null, trusted: false });
    expect(edited.connectors.webhook).toEqual({ url: 'https://forum.example/hook2', secret: webhookSecret });
    res = await post(t, c, '/admin/apps/forum', { name: 'The Forum', allowed_origins: 'forum.example' });
    expect(res.statusCode).toBe(400);
    expect(fieldError(res.body, 'allowed_origins')).toBeTruthy();
    expect((await t.store.findApp('forum'))!.allowedOrigins).toEqual(['https://forum.example', 'https://www.forum.example']);

    res = await post(t, c, '/admin/apps/forum/secret', {}, false);
    expect(res.statusCode).toBe(403);
    expect(await t.authority.apps.authenticateApp('forum', secret)).not.toBeNull();
    res = await post(t, c, '/admin/apps/forum/secret');
    expect(res.statusCode).toBe(200);
    const rotated = /<code class="secret" id="client-secret">([^<]+)<\/code>/.exec(res.body)![1]!;
    expect(rotated).not.toBe(secret);
    expect(await t.authority.apps.authenticateApp('forum', secret)).toBeNull();
    expect(await t.authority.apps.authenticateApp('forum', rotated)).not.toBeNull();
    expect((await get(t, c, '/admin/apps/forum')).body).not.toContain(rotated);

    res = await post(t, c, '/admin/apps/forum/delete', {});
    expect(fieldError(res.body, 'confirm')).toBeTruthy();
    res = await post(t, c, '/admin/apps/forum/delete', { confirm: '1' });
    expect(res.headers.location).toBe('/admin/apps?done=deleted');
    expect(await t.store.findApp('forum')).toBeNull();
  });

  it('lists the revocation log newest first, filtered by user, reason and app', async () => {
    const forum = await createApp(t, { name: 'Forum' });
    const { user: alice } = await createUser(t, { username: 'alice' });
    const { user: bob } = await createUser(t, { username: 'bob' });
    const a1 = await startAppSession(t, forum, alice.id);
    const b1 = await startAppSession(t, forum, bob.id);
    expect((await adminRequest(t, 'DELETE', `/sessions/${a1.handle}`)).statusCode).toBe(204);
    expect((await adminRequest(t, 'PATCH', `/users/${bob.id}`, { disabled: true })).statusCode).toBe(200);
    const rows = (html: string) => [...html.matchAll(/<tr><td>(\d+)<\/td>/g)].map((m) => Number(m[1]));
    const all = await get(t, c, '/admin/revocations');
    expectPageHeaders(all);
    expect(rows(all.body)).toEqual([2, 1]);
    expect(rows((await get(t, c, '/admin/revocations?user=alice')).body)).toEqual([1]);
    expect(rows((await get(t, c, `/admin/revocations?user=${bob.id}`)).body)).toEqual([2]);
    expect(rows((await get(t, c, '/admin/revocations?reason=user_disabled')).body)).toEqual([2]);
    expect(rows((await get(t, c, `/admin/revocations?app=${forum.clientId}&reason=admin_revoked`)).body)).toEqual([1]);
    expect(rows((await get(t, c, '/admin/revocations?app=app_nobody')).body)).toEqual([]);
    const unknown = await get(t, c, '/admin/revocations?user=nobody');
    expect(fieldError(unknown.body, 'user')).toBe('No user is called "nobody".');
    expect((await get(t, c, '/admin/revocations?reason=bogus')).statusCode).toBe(400);
    expect(b1.handle).toBeTruthy();
  });

  it('the overview counts active sessions, deliveries by status and the last hour\'s revocations by reason, as charts', async () => {
    const forum = await createApp(t, { name: 'Forum', backchannel_logout_uri: 'https://forum.example/bc' });
    const { user } = await createUser(t);
    const sessions = [await startAppSession(t, forum, user.id), await startAppSession(t, forum, user.id), await startAppSession(t, forum, user.id)];
    await adminRequest(t, 'DELETE', `/sessions/${sessions[0]!.handle}`);
    const page = await get(t, c, '/admin');
    expectPageHeaders(page);
    const count = (name: string) => Number(new RegExp(`data-count="${name}">(\\d+)<`).exec(page.body)?.[1]);
    // PostgreSQL reports the planner's estimate (and says so); SQLite counts.
    if (kind === 'sqlite') expect(count('active-sessions')).toBe(2);
    else expect(page.body).toContain('Estimated by PostgreSQL');
    expect(count('pending-deliveries')).toBe(1);
    expect(count('dead-deliveries')).toBe(0);
    expect(count('revocations-hour')).toBe(1);
    expect(page.body).toMatch(/<svg class="chart"[^>]*role="img"/);
    expect(page.body).toContain('admin_revoked: 1');
    // An hour later the revocation is out of the last hour.
    t.clock.advance(3_600_001);
    const later = await get(t, c, '/admin');
    expect(Number(/data-count="revocations-hour">(\d+)</.exec(later.body)?.[1])).toBe(0);
  });
});

describe('the shared stylesheet', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('is served by Tessera as CSS, cacheable for a year under a content-hashed name; other names are 404', async () => {
    const { STYLESHEET, STYLESHEET_PATH } = await import('../src/pages/index.js');
    expect(STYLESHEET_PATH).toMatch(/^\/assets\/tessera-[0-9a-f]{12}\.css$/);
    const res = await t.app.inject({ method: 'GET', url: STYLESHEET_PATH });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.body).toBe(STYLESHEET);
    // Nothing from another origin: no url(), no @import.
    expect(STYLESHEET).not.toMatch(/url\(|@import/);
    expect((await t.app.inject({ method: 'GET', url: '/assets/tessera-000000000000.css' })).statusCode).toBe(404);
    // Every hosted page links it (login here; the others through expectPageHeaders).
    expect((await t.app.inject({ method: 'GET', url: '/login' })).body).toContain(`<link rel="stylesheet" href="${STYLESHEET_PATH}">`);
  });
});

describe('admin console: never shows a token, a secret after its creation, or a password hash', () => {
  let t: TestServer;
  afterEach(async () => t.close());

  it('greps the HTML of every console page for every secret Tessera holds', async () => {
    t = await createTestServer();
    const c = await signIn(t);
    const forum = await createApp(t, { name: 'Forum', backchannel_logout_uri: 'https://forum.example/bc', connectors: { webhook: { url: 'https://forum.example/hook' } } });
    const webhookSecret = ((await t.store.findApp(forum.clientId))!.connectors.webhook as { secret: string }).secret;
    const { user, password } = await createUser(t, { username: 'hopper', email: 'hopper@example.com' });
    const browserToken = await userSession(t, user.username, password, 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36');
    const s1 = await startAppSession(t, forum, user.id);
    const s2 = await startAppSession(t, forum, user.id);
    const tokens = await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: forum.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=session_token&session_token=${encodeURIComponent(s1.token)}` });
    const pair = tokens.json<{ access_token: string; refresh_token: string }>();
    await post(t, c, `/admin/sessions/${s2.handle}/end`);
    const record = (await t.store.findUserById(user.id))!;
    const sessionRecords = await t.store.listSessionsByUser(user.id, { includeEnded: true });
    const appRecord = (await t.store.findApp(forum.clientId))!;
    const secrets: Record<string, string> = {
      'admin token': ADMIN_TOKEN,
      'console token': c.cookie,
      'console token secret': c.cookie.split('.')[1]!,
      'client secret': forum.clientSecret,
      'client secret hash': appRecord.secretHash,
      'webhook secret': webhookSecret,
      'password': password,
      'password hash': record.passwordHash!,
      'access token': pair.access_token,
      'refresh token': pair.refresh_token,
      ...Object.fromEntries([browserToken, s1.token, s2.token].flatMap((token, i) => [[`session token ${i}`, token], [`session token secret ${i}`, token.split('.')[1]!]])),
      ...Object.fromEntries(sessionRecords.flatMap((s, i) => [[`session token id ${i}`, s.tokenId], [`session secret hash ${i}`, s.secretHash]])),
    };
    const deliveries = await t.store.listDeliveriesBySession(s2.handle);
    expect(deliveries.length).toBeGreaterThan(0);
    // A Shared Signals receiver: its push credential, its access token, and the signed SETs.
    const ssf = await ssfReceiver(t);
    secrets['SSF push authorization header'] = PUSH_CREDENTIAL;
    secrets['SSF push credential'] = PUSH_CREDENTIAL.slice('Bearer '.length);
    secrets['SSF access token'] = ssf.accessToken;
    await post(t, c, `/admin/sessions/${s1.handle}/end`);
    const sets = [...await t.store.listSsfEvents(ssf.push, { limit: 10 }), ...await t.store.listSsfEvents(ssf.poll, { limit: 10 })];
    expect(sets.length).toBeGreaterThanOrEqual(2);
    for (const [i, event] of sets.entries()) {
      const signed = await t.authority.ssf.signSet(event, (await t.store.findSsfStream(event.streamId))!);
      secrets[`signed SET ${i}`] = signed;
      secrets[`SET signature ${i}`] = signed.split('.')[2]!;
      secrets[`SET claims ${i}`] = signed.split('.')[1]!;
    }

    const pages = [
      '/admin', '/admin/users', `/admin/users?q=${user.username}`, `/admin/users/${user.id}`, ...sessionRecords.map((s) => `/admin/sessions/${s.handle}`),
      '/admin/apps', `/admin/apps/${forum.clientId}`, '/admin/revocations', `/admin/revocations?user=${user.id}`, `/admin/revocations?app=${forum.clientId}`,
      '/admin/ssf', `/admin/ssf/${ssf.push}`, `/admin/ssf/${ssf.poll}`, `/admin/ssf/${ssf.push}?show=pending`,
    ];
    for (const [name, value] of Object.entries(secrets)) expect(value.length, name).toBeGreaterThanOrEqual(16);
    let checked = 0;
    for (const url of pages) {
      const res = await get(t, c, url);
      expect(res.statusCode, url).toBe(200);
      expectPageHeaders(res);
      for (const [name, value] of Object.entries(secrets)) expect(res.body.includes(value), `${name} on ${url}`).toBe(false);
      checked += 1;
    }
    // The sign-in form too, and the pages that answer a failed form.
    const failed = [await post(t, c, '/admin/users', { username: '' }), await post(t, c, `/admin/apps/${forum.clientId}`, { name: '' }), await post(t, c, `/admin/users/${user.id}/delete`, {}), await post(t, c, `/admin/ssf/${ssf.push}/status`, { status: 'asleep' })];
    for (const res of [...failed, await t.app.inject({ method: 'GET', url: '/admin/login' })]) {
      for (const [name, value] of Object.entries(secrets)) expect(res.body.includes(value), `${name} on a form page`).toBe(false);
      checked += 1;
    }
    expect(checked).toBeGreaterThanOrEqual(pages.length + 5);
  });
});

describe('admin console: CSRF on every form', () => {
  let t: TestServer;
  afterEach(async () => t.close());

  it('every console POST route of the OpenAPI document refuses a request without (or with a wrong) CSRF token, and changes nothing', async () => {
    t = await createTestServer();
    const c = await signIn(t);
    const forum = await createApp(t, { name: 'Forum' });
    const { user } = await createUser(t);
    const s = await startAppSession(t, forum, user.id);
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, unknown>> }>();
    const posts = Object.entries(doc.paths).filter(([path, ops]) => path.startsWith('/admin/') && !path.startsWith('/admin/api/') && 'post' in ops).map(([path]) => path);
    expect(posts.length).toBeGreaterThanOrEqual(14);
    expect(posts).toEqual(expect.arrayContaining(['/admin/ssf/{id}/status', '/admin/ssf/{id}/events/{event}/retry']));
    // A stream with a dead SET (of another session of the user, ended here).
    const ssf = await ssfReceiver(t);
    const ended = await startAppSession(t, forum, user.id);
    await t.authority.sessions.revokeSession(ended.handle, { actor: 'admin', reason: 'admin_revoked' });
    const [set] = await t.store.claimSsfPushEvents('test-worker', t.clock.now(), t.clock.now() + 60_000, 10);
    await t.store.completeSsfEvent(set!.id, 'test-worker', { status: 'dead', at: t.clock.now(), nextAttemptAt: t.clock.now(), error: 'HTTP 503', httpStatus: 503 });
    const fill = (path: string) => path.replace('{id}', path.startsWith('/admin/apps') ? forum.clientId : path.startsWith('/admin/deliveries') ? '1' : path.startsWith('/admin/ssf') ? ssf.push : user.id).replace('{handle}', s.handle).replace('{event}', String(set!.id));
    const fields = { token: ADMIN_TOKEN, username: 'mallory', name: 'Evil', disabled: '1', confirm: '1', scope: 'all', status: 'disabled', reason: 'forged' };
    for (const path of posts) {
      for (const csrf of [undefined, 'W'.repeat(32)]) {
        const res = await t.app.inject({ method: 'POST', url: fill(path), headers: FORM, payload: new URLSearchParams({ ...fields, ...(csrf ? { csrf } : {}) }).toString(), cookies: { tessera_admin: c.cookie, tessera_admin_csrf: c.csrfCookie } });
        expect(res.statusCode, `${path} csrf=${csrf}`).toBe(403);
        expect(res.body).toContain('CSRF_FAILED');
      }
    }
    // Nothing changed: the console sign-in, the user, the session, the app, no new user or app.
    expect((await get(t, c, '/admin')).statusCode).toBe(200);
    expect((await t.store.findUserById(user.id))!.disabled).toBe(false);
    expect((await t.store.findSessionByHandle(s.handle))!.endedAt).toBeNull();
    expect((await t.store.findApp(forum.clientId))!.name).toBe('Forum');
    expect(await t.authority.apps.authenticateApp(forum.clientId, forum.clientSecret)).not.toBeNull();
    expect(await t.store.findUserByLogin('mallory')).toBeNull();
    expect((await t.store.listApps()).length).toBe(2);
    // The stream is still enabled, its dead SET still dead.
    expect((await t.store.findSsfStream(ssf.push))!.status).toBe('enabled');
    expect((await t.store.listSsfEvents(ssf.push, { status: 'dead', limit: 10 })).map((e) => e.id)).toEqual([set!.id]);
  });
});
