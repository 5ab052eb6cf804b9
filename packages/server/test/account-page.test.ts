// "Your devices" (GET /account, pages/account-routes.ts): behind the session cookie, lists
// only the signed-in user's sessions (the current one marked), and its three CSRF-protected
// forms end exactly what they say — and nothing when the token or the password is wrong.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bearer,
  createApp,
  createUser,
  createTestServer,
  loginWithForm,
  openLoginForm,
  postLogin,
  setCookie,
  startAppSession,
  whoamiStatus,
  type Response,
  type TestServer,
} from './support.js';
import { expectPageHeaders } from './page-headers.js';

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const FIREFOX = 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';

interface AccountPage {
  page: Response;
  csrf: string;
  csrfCookie: string;
}

async function openAccount(t: TestServer, token: string): Promise<AccountPage> {
  const page = await t.app.inject({ method: 'GET', url: '/account', cookies: { [t.config.cookie.name]: token } });
  expect(page.statusCode, page.body).toBe(200);
  const field = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(page.body);
  const cookie = setCookie(page, 'tessera_account_csrf');
  expect(field).not.toBeNull();
  expect(cookie?.path).toBe('/account');
  expect(cookie?.sameSite).toBe('Strict');
  expect(cookie?.httpOnly).toBe(true);
  return { page, csrf: field![1]!, csrfCookie: cookie!.value };
}

function post(t: TestServer, url: string, token: string, fields: Record<string, string>, csrfCookie?: string): Promise<Response> {
  return t.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(fields).toString(),
    cookies: { [t.config.cookie.name]: token, ...(csrfCookie === undefined ? {} : { tessera_account_csrf: csrfCookie }) },
  });
}

async function handleOf(t: TestServer, token: string): Promise<string> {
  const res = await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: bearer(token) });
  expect(res.statusCode).toBe(200);
  return res.json<{ session: { handle: string } }>().session.handle;
}

describe('your devices page', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  /** Alice: a browser session (Chrome) and an app session (Firefox) the app joined; Bob: one session. */
  async function scenario() {
    const app = await createApp(t, { name: 'Forum of Things' });
    const { user: alice, password } = await createUser(t);
    const { token } = await loginWithForm(t, { username: alice.username, password, userAgent: CHROME });
    expect(token).not.toBeNull();
    const other = await startAppSession(t, app, alice.id, FIREFOX);
    const { user: bob } = await createUser(t);
    const bobs = await startAppSession(t, app, bob.id, FIREFOX);
    return { app, alice, password, token: token!, handle: await handleOf(t, token!), other, bobs };
  }

  it('without a session goes to the login page, which accepts /account as return_to and comes back', async () => {
    const own = `${t.config.issuer}/account`;
    for (const res of [
      await t.app.inject({ method: 'GET', url: '/account' }),
      // A bearer token is an app's credential, not a browser: the page still asks for a sign-in.
      await t.app.inject({ method: 'GET', url: '/account', headers: bearer((await scenario()).token) }),
      await t.app.inject({ method: 'GET', url: '/account', cookies: { [t.config.cookie.name]: 'not.a-session' } }),
    ]) {
      expect(res.statusCode).toBe(303);
      const location = new URL(String(res.headers.location), t.config.issuer);
      expect(location.pathname).toBe('/login');
      expect(location.searchParams.get('return_to')).toBe(own);
    }
    const { user, password } = await createUser(t);
    const form = await openLoginForm(t, { return_to: own });
    expect(form.page.body).toContain(`name="return_to" value="${own}"`);
    const { res } = await loginWithForm(t, { username: user.username, password, returnTo: own });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(own);
    // Only that exact URL: anything else on it is still checked against the allow-list.
    for (const near of [`${own}?x=1`, `${own}/../admin`, `${own}#f`, 'https://evil.example/account']) {
      const page = await t.app.inject({ method: 'GET', url: '/login', query: { return_to: near } });
      expect(page.statusCode, near).toBe(400);
    }
  });

  it('lists every session of the user, marks the current one, and never shows another user\'s', async () => {
    const s = await scenario();
    const { page, csrf, csrfCookie } = await openAccount(t, s.token);
    expectPageHeaders(page);
    expect(page.body).not.toContain('<script');
    const items = page.body.match(/<li[^>]*data-session="[^"]+"[\s\S]*?<\/li>/g) ?? [];
    expect(items).toHaveLength(2);
    const current = items.find((li) => li.includes(`data-session="${s.handle}"`))!;
    const other = items.find((li) => li.includes(`data-session="${s.other.handle}"`))!;
    expect(current).toContain('aria-current="true"');
    expect(current).toContain('This device');
    expect(current).toMatch(/Chrome 120 on Windows/);
    expect(other).not.toContain('aria-current');
    expect(other).toMatch(/Firefox 121 on Linux/);
    expect(other).toContain('Forum of Things');
    expect(other).toMatch(/<time datetime="\d{4}-\d\d-\d\dT[^"]+Z" title="[^"]+">[^<]+<\/time>/);
    expect(page.body).not.toContain(s.bobs.handle);
    // A second load (another tab) keeps the same CSRF token, so the first tab's forms still work.
    const again = await t.app.inject({ method: 'GET', url: '/account', cookies: { [t.config.cookie.name]: s.token, tessera_account_csrf: csrfCookie } });
    expect(again.body).toContain(`name="csrf" value="${csrf}"`);
    // The signed-in page at /login links here.
    const signedIn = await t.app.inject({ method: 'GET', url: '/login', cookies: { [t.config.cookie.name]: s.token } });
    expect(signedIn.body).toContain('<a href="/account">See your devices</a>');
    // No token of any session on the page.
    expect(page.body).not.toContain(s.token);
    expect(page.body).not.toContain(s.other.token);
    // Ages are told on the server's clock (here a manual one, years from the real one): the
    // session left alone for 3 hours says so; the one in use says just now.
    expect(other).toContain('>just now</time>');
    t.clock.advance(3 * 3600 * 1000);
    const later = (await openAccount(t, s.token)).page.body.match(/<li[^>]*data-session="[^"]+"[\s\S]*?<\/li>/g) ?? [];
    expect(later.find((li) => li.includes(`data-session="${s.other.handle}"`))).toContain('>3 hours ago</time>');
    expect(later.find((li) => li.includes(`data-session="${s.handle}"`))).toContain('>just now</time>');
  });

  it('signs out one device; a wrong or missing CSRF token ends nothing; another user\'s device is never ended', async () => {
    const s = await scenario();
    const { csrf, csrfCookie } = await openAccount(t, s.token);
    for (const res of [
      await post(t, '/account/sign-out', s.token, { csrf: 'wrong-token-wrong-token-wrong-token', handle: s.other.handle }, csrfCookie),
      await post(t, '/account/sign-out', s.token, { handle: s.other.handle }, csrfCookie),
      await post(t, '/account/sign-out', s.token, { csrf, handle: s.other.handle }),
    ]) {
      expect(res.statusCode).toBe(403);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
    }
    expect(await whoamiStatus(t, s.other.token)).toBe(200);

    const bobs = await post(t, '/account/sign-out', s.token, { csrf, handle: s.bobs.handle }, csrfCookie);
    expect(bobs.statusCode).toBe(303);
    expect(bobs.headers.location).toBe('/account?done=gone');
    expect(await whoamiStatus(t, s.bobs.token)).toBe(200);

    const res = await post(t, '/account/sign-out', s.token, { csrf, handle: s.other.handle }, csrfCookie);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/account?done=device');
    expect(await whoamiStatus(t, s.other.token)).toBe(401);
    expect(await whoamiStatus(t, s.token)).toBe(200);
    const after = await t.app.inject({ method: 'GET', url: '/account?done=device', cookies: { [t.config.cookie.name]: s.token } });
    expect(after.body).toContain('That device is signed out.');
    expect(after.body).not.toContain(`data-session="${s.other.handle}"`);

    // Signing out this device from the list ends it and sends the browser to the login page.
    const self = await post(t, '/account/sign-out', s.token, { csrf, handle: s.handle }, csrfCookie);
    expect(self.statusCode).toBe(303);
    expect(self.headers.location).toBe('/login?signed_out=device');
    expect(setCookie(self, t.config.cookie.name)?.value).toBe('');
    expect(await whoamiStatus(t, s.token)).toBe(401);
  });

  it('signs out all other devices, and only with the CSRF token', async () => {
    const s = await scenario();
    const third = await startAppSession(t, s.app, s.alice.id, CHROME);
    const { csrf, csrfCookie } = await openAccount(t, s.token);
    const refused = await post(t, '/account/sign-out-others', s.token, { csrf: `${csrf}x` }, csrfCookie);
    expect(refused.statusCode).toBe(403);
    expect(await whoamiStatus(t, s.other.token)).toBe(200);
    expect(await whoamiStatus(t, third.token)).toBe(200);

    const res = await post(t, '/account/sign-out-others', s.token, { csrf }, csrfCookie);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/account?done=others');
    expect(await whoamiStatus(t, s.other.token)).toBe(401);
    expect(await whoamiStatus(t, third.token)).toBe(401);
    expect(await whoamiStatus(t, s.token)).toBe(200);
    expect(await whoamiStatus(t, s.bobs.token)).toBe(200);
    const after = await t.app.inject({ method: 'GET', url: res.headers.location as string, cookies: { [t.config.cookie.name]: s.token } });
    expect(after.body).toContain('All your other devices are signed out.');
    expect(after.body.match(/data-session=/g)).toHaveLength(1);
  });

  it('changes the password and ends the other sessions; a wrong current password shows the error and ends nothing', async () => {
    const s = await scenario();
    const { csrf, csrfCookie } = await openAccount(t, s.token);

    const forged = await post(t, '/account/password', s.token, { csrf: 'forged', current_password: s.password, new_password: 'a brand new password' }, csrfCookie);
    expect(forged.statusCode).toBe(403);

    const wrong = await post(t, '/account/password', s.token, { csrf, current_password: 'not my password', new_password: 'a brand new password' }, csrfCookie);
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['content-type']).toMatch(/^text\/html/);
    expect(wrong.body).toMatch(/id="current_password"[^>]*aria-invalid="true"/);
    expect(wrong.body).toContain('That is not your current password.');

    const short = await post(t, '/account/password', s.token, { csrf, current_password: s.password, new_password: 'short' }, csrfCookie);
    expect(short.statusCode).toBe(400);
    expect(short.body).toMatch(/id="new_password"[^>]*aria-invalid="true"/);

    // Nothing ended, the old password still works.
    expect(await whoamiStatus(t, s.other.token)).toBe(200);
    expect((await loginWithForm(t, { username: s.alice.username, password: s.password })).token).not.toBeNull();

    const res = await post(t, '/account/password', s.token, { csrf, current_password: s.password, new_password: 'a brand new password' }, csrfCookie);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/account?done=password');
    expect(await whoamiStatus(t, s.other.token)).toBe(401);
    expect(await whoamiStatus(t, s.token)).toBe(200);
    expect(await whoamiStatus(t, s.bobs.token)).toBe(200);
    expect((await loginWithForm(t, { username: s.alice.username, password: s.password })).token).toBeNull();
    expect((await loginWithForm(t, { username: s.alice.username, password: 'a brand new password' })).token).not.toBeNull();
  });

  it('wrong current passwords count against the sign-in limits: past them even the right one is refused (429) and nothing ends', async () => {
    await t.close();
    t = await createTestServer({ file: { rateLimit: { enabled: true } } });
    const s = await scenario();
    const { csrf, csrfCookie } = await openAccount(t, s.token);
    const max = t.config.rateLimit.loginAccountMax;
    for (let i = 0; i < max; i += 1) {
      const wrong = await post(t, '/account/password', s.token, { csrf, current_password: `guess ${i}`, new_password: 'a brand new password' }, csrfCookie);
      expect(wrong.statusCode).toBe(401);
    }
    const limited = await post(t, '/account/password', s.token, { csrf, current_password: s.password, new_password: 'a brand new password' }, csrfCookie);
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.body).toContain('Too many wrong passwords.');
    expect(await whoamiStatus(t, s.other.token)).toBe(200);
    // The password did not change: after the wait, the old one still signs in.
    t.clock.advance(24 * 3600 * 1000);
    expect((await loginWithForm(t, { username: s.alice.username, password: s.password })).token).not.toBeNull();
  });

  it('lists the apps the user allowed on the consent page, and withdraws one (CSRF-protected, only the user\'s own)', async () => {
    const s = await scenario();
    const other = await createApp(t, { name: 'Shop <b>' });
    await t.store.saveConsent({ userId: s.alice.id, clientId: s.app.clientId, scope: 'openid profile', createdAt: t.clock.now() });
    await t.store.saveConsent({ userId: s.alice.id, clientId: other.clientId, scope: 'openid', createdAt: t.clock.now() });
    const bobConsent = { userId: s.bobs.session.user_id, clientId: s.app.clientId, scope: 'openid', createdAt: t.clock.now() };
    await t.store.saveConsent(bobConsent);
    const { page, csrf, csrfCookie } = await openAccount(t, s.token);
    expect(page.body).toContain(`data-consent="${s.app.clientId}"`);
    expect(page.body).toContain('Forum of Things');
    expect(page.body).toContain('openid profile');
    // App names are escaped.
    expect(page.body).toContain('Shop &lt;b&gt;');
    expect(page.body).not.toContain('Shop <b>');
    // Without the CSRF token (or with a wrong one) nothing is withdrawn.
    expect((await post(t, '/account/consents/withdraw', s.token, { client_id: s.app.clientId }, csrfCookie)).statusCode).toBe(403);
    expect((await post(t, '/account/consents/withdraw', s.token, { csrf: 'x'.repeat(32), client_id: s.app.clientId }, csrfCookie)).statusCode).toBe(403);
    expect(await t.store.findConsent(s.alice.id, s.app.clientId)).not.toBeNull();
    const res = await post(t, '/account/consents/withdraw', s.token, { csrf, client_id: s.app.clientId }, csrfCookie);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/account?done=consent');
    expect(await t.store.findConsent(s.alice.id, s.app.clientId)).toBeNull();
    // Only Alice's own consent went: Bob's for the same app stays, and Alice's other one too.
    expect(await t.store.findConsent(bobConsent.userId, s.app.clientId)).not.toBeNull();
    expect(await t.store.findConsent(s.alice.id, other.clientId)).not.toBeNull();
    const again = await post(t, '/account/consents/withdraw', s.token, { csrf, client_id: s.app.clientId }, csrfCookie);
    expect(again.headers.location).toBe('/account?done=no_consent');
    const after = await t.app.inject({ method: 'GET', url: '/account?done=consent', cookies: { [t.config.cookie.name]: s.token } });
    expect(after.body).toContain('access is withdrawn');
    expect(after.body).not.toContain(`data-consent="${s.app.clientId}"`);
    // Withdrawing signs nobody out.
    expect(await whoamiStatus(t, s.token)).toBe(200);
    // Without a session the form goes to the login page.
    const anon = await post(t, '/account/consents/withdraw', 'not.a-session', { csrf, client_id: other.clientId }, csrfCookie);
    expect(anon.statusCode).toBe(303);
    expect(String(anon.headers.location)).toMatch(/^\/login\?return_to=/);
    expect(await t.store.findConsent(s.alice.id, other.clientId)).not.toBeNull();
  });

  it('the login return_to is never an open redirect: near misses of allowed URLs are refused', async () => {
    const own = `${t.config.issuer}/account`;
    const issuer = new URL(t.config.issuer);
    const near = [
      '//evil.example/account', '/\\evil.example', 'https:evil.example', `${issuer.protocol}//${issuer.host}@evil.example/account`,
      `${issuer.protocol}//${issuer.host}.evil.example/account`, `javascript:alert(1)//${issuer.host}/account`, 'data:text/html,<script>1</script>',
      `${own}%2F..%2F..%2Fevil`, `${own}\t`, ` ${own}`, own.toUpperCase(), `${issuer.protocol}//${issuer.hostname}/account`,
    ];
    for (const value of near) {
      const page = await t.app.inject({ method: 'GET', url: '/login', query: { return_to: value } });
      expect(page.statusCode, value).toBe(400);
      expect(page.headers.location).toBeUndefined();
    }
    // A sign-in posted with such a return_to sends the browser nowhere else.
    const { user, password } = await createUser(t);
    for (const value of ['//evil.example/', 'https://evil.example/account', `${own}@evil.example`]) {
      const form = await openLoginForm(t);
      const res = await postLogin(t, { fields: { username: user.username, password, csrf: form.csrf, return_to: value }, cookies: { tessera_csrf: form.csrfCookie } });
      expect(res.statusCode, value).toBe(400);
      expect(res.headers.location, value).toBeUndefined();
      expect(setCookie(res, t.config.cookie.name)?.value ?? '', value).toBe('');
    }
  });
});
