import { ConfigError, loadConfig } from '@tessera/core';
import { SignJWT, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SITE_RETURN,
  START,
  bearer,
  createApp,
  createTestServer,
  createUser,
  expectError,
  loginWithForm,
  openLoginForm,
  pathOf,
  postLogin,
  rawSetCookie,
  requestLogoutUrl,
  setCookie,
  type Response,
  type TestServer,
} from './support.js';

/**
 * The shared parent-domain cookie for nodebb-plugin-session-sharing: set at the login page,
 * verifiable as the plugin verifies it (HS256 with the shared secret), and cleared by every
 * browser logout flow.
 */

const SECRET = 'shared-cookie-secret-0123456789-abcdefghij';
const LIFETIME_SECONDS = 30 * 86_400;

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function server(shared: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<TestServer> {
  t = await createTestServer({ env, file: { cookie: { domain: '.example.test' }, sharedCookie: { enabled: true, secret: SECRET, ...shared } } });
  return t;
}

/** Verifies the JWT as the plugin would (a shared HS256 secret), at the test clock's time. */
async function verify(token: string, secret = SECRET) {
  const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'], currentDate: new Date(START) });
  return payload;
}

function sharedToken(res: Response, name = 'token'): string {
  const cookie = setCookie(res, name);
  expect(cookie, `${name} cookie set`).toBeDefined();
  expect(cookie!.value).not.toBe('');
  return cookie!.value;
}

/** Asserts that `res` clears the shared cookie with the attributes it was set with. */
function expectCleared(res: Response, domain = '.example.test', name = 'token'): void {
  const line = rawSetCookie(res, name);
  expect(line, `${name} cleared`).toBeDefined();
  const parts = line!.split(/;\s*/);
  expect(parts[0]).toBe(`${name}=`);
  expect(parts).toContain('Max-Age=0');
  expect(parts).toContain(`Domain=${domain}`);
  expect(parts).toContain('Path=/');
}

async function signIn(s: TestServer, fields: Record<string, unknown> = {}, cookies: Record<string, string> = {}) {
  const { user, password } = await createUser(s, fields);
  const { res, token } = await loginWithForm(s, { username: user.username, password, cookies });
  expect(res.statusCode, res.body).toBe(303);
  expect(token).not.toBeNull();
  return { user, res, sessionToken: token! };
}

describe('shared cookie at login', () => {
  it('is set with HttpOnly, SameSite=Lax, Path=/, the parent Domain and the session lifetime', async () => {
    const s = await server();
    const { res } = await signIn(s, { email: 'alice@example.test', email_verified: true });
    const line = rawSetCookie(res, 'token')!;
    const attributes = line.split(/;\s*/).slice(1);
    expect(attributes).toEqual(expect.arrayContaining(['Domain=.example.test', 'Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${LIFETIME_SECONDS}`]));
    // cookie.secure is false in this test server (local http): no Secure flag either.
    expect(attributes).not.toContain('Secure');
  });

  it('carries Secure when cookie.secure is true', async () => {
    const s = await server({}, { TESSERA_COOKIE_SECURE: 'true' });
    const { res } = await signIn(s);
    expect(rawSetCookie(res, 'token')!.split(/;\s*/)).toContain('Secure');
  });

  it('holds an HS256 JWT with the user claims (unset ones left out), iat and exp = the session\'s absolute end', async () => {
    const s = await server();
    const { user, res } = await signIn(s, { email: 'alice@example.test', email_verified: true, first_name: 'Alice' });
    const token = sharedToken(res);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const payload = await verify(token);
    const startSeconds = Math.floor(START / 1000);
    const [session] = await s.authority.sessions.listUserSessions(user.id);
    expect(payload).toEqual({ id: user.id, username: user.username, email: 'alice@example.test', firstName: 'Alice', sid: session!.handle, iat: startSeconds, exp: startSeconds + LIFETIME_SECONDS });
    // A forum holding another secret rejects it: the signature really depends on the secret.
    await expect(verify(token, 'another-secret-0123456789-abcdefghijklmnop')).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    // Its exp is the session's end: the session record agrees.
    expect(payload.exp).toBe(Math.floor(session!.expiresAt / 1000));
  });

  it('uses the configured claim names, nests them under parentKey, and honours name and domain', async () => {
    const s = await server({
      name: 'forum_session',
      domain: '.forum-parent.test',
      parentKey: 'd',
      claims: { id: 'uid', username: 'name', email: 'mail', firstName: 'given', lastName: 'family', picture: 'avatar' },
    });
    const { user, res } = await signIn(s, { email: 'bob@example.test', email_verified: true, first_name: 'Bob', last_name: 'Builder', picture: 'https://cdn.example.test/bob.png' });
    expect(setCookie(res, 'token')).toBeUndefined();
    expect(rawSetCookie(res, 'forum_session')!.split(/;\s*/)).toContain('Domain=.forum-parent.test');
    const payload = await verify(sharedToken(res, 'forum_session'));
    expect(payload.d).toEqual({ uid: user.id, name: user.username, mail: 'bob@example.test', given: 'Bob', family: 'Builder', avatar: 'https://cdn.example.test/bob.png' });
    expect(Object.keys(payload).sort()).toEqual(['d', 'exp', 'iat', 'sid']);
  });

  it('takes the session cookie\'s domain when sharedCookie.domain is not set, and none when neither is', async () => {
    const s = await server();
    const { res } = await signIn(s);
    expect(rawSetCookie(res, 'token')).toContain('Domain=.example.test');
    await s.close();
    t = await createTestServer({ file: { sharedCookie: { enabled: true, secret: SECRET } } });
    const { res: hostOnly } = await signIn(t);
    expect(rawSetCookie(hostOnly, 'token')).toBeDefined();
    expect(rawSetCookie(hostOnly, 'token')).not.toMatch(/Domain=/i);
  });

  it('is replaced with the new user\'s token when the login page replaces a previous session', async () => {
    const s = await server();
    const alice = await signIn(s);
    const bob = await createUser(s);
    // The form is opened signed out (a signed-in browser gets the "signed in" page), then
    // posted while the browser still holds alice's cookies.
    const form = await openLoginForm(s);
    const res = await postLogin(s, { fields: { username: bob.user.username, password: bob.password, csrf: form.csrf }, cookies: { tessera_session: alice.sessionToken, token: 'alice-shared', tessera_csrf: form.csrfCookie } });
    expect(res.statusCode, res.body).toBe(303);
    expect((await verify(sharedToken(res))).id).toBe(bob.user.id);
    expect(rawSetCookie(res, 'token')!.split(/;\s*/)).toEqual(expect.arrayContaining(['Domain=.example.test', 'Path=/']));
    expect(await s.authority.sessions.listUserSessions(alice.user.id)).toEqual([]);
  });

  it('is cleared when the login page is opened with a cookie of a session that has ended, and set again for a live one', async () => {
    const s = await server();
    const { user, res, sessionToken } = await signIn(s);
    const sid = (await verify(sharedToken(res))).sid;
    const live = await s.app.inject({ method: 'GET', url: '/login', cookies: { tessera_session: sessionToken } });
    expect(live.statusCode).toBe(200);
    expect((await verify(sharedToken(live))).sid).toBe(sid);
    await s.authority.sessions.revokeUserSessions(user.id, {}, { actor: 'admin', reason: 'admin_revoked' });
    const ended = await openLoginForm(s, {}, { tessera_session: sessionToken });
    expectCleared(ended.page);
  });

  it('is set again (and its reader app joins again) when the login page sends a live session back to the app after an app-only logout', async () => {
    // NodeBB's own logout clears the shared cookie and (through nodebb-plugin-tessera) leaves
    // the session with scope "app"; the Tessera session lives on. Signing in at the forum
    // again goes through GET /login?return_to=…, which answers 303 at once for a live
    // session: without a new cookie the forum would stay a guest for good.
    t = await createTestServer({ file: { cookie: { domain: '.example.test' }, sharedCookie: { enabled: true, secret: SECRET, clientId: 'forum' } } });
    const forum = await createApp(t, { client_id: 'forum', backchannel_logout_uri: 'https://forum.example/backchannel-logout' });
    const { res, sessionToken } = await signIn(t);
    const sid = (await verify(sharedToken(res))).sid as string;
    const left = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: forum.basic, 'content-type': 'application/json' }, payload: { token: sessionToken, scope: 'app' } });
    expect(left.statusCode, left.body).toBe(200);
    expect((await t.store.findSessionByHandle(sid))!.apps.find((a) => a.clientId === 'forum')!.leftAt).not.toBeNull();

    const again = await t.app.inject({ method: 'GET', url: '/login', query: { return_to: SITE_RETURN }, cookies: { tessera_session: sessionToken } });
    expect(again.statusCode).toBe(303);
    expect(again.headers.location).toBe(SITE_RETURN);
    const claims = await verify(sharedToken(again));
    expect(claims.sid).toBe(sid);
    expect(rawSetCookie(again, 'token')!.split(/;\s*/)).toEqual(expect.arrayContaining(['Domain=.example.test', 'Path=/', 'HttpOnly']));
    // Joined again, so the session's next end reaches the forum by back-channel logout.
    const session = (await t.store.findSessionByHandle(sid))!;
    expect(session.apps.filter((a) => a.clientId === 'forum' && a.leftAt === null)).toHaveLength(1);
    await t.authority.sessions.revokeSession(sid, { actor: 'admin', reason: 'admin_revoked' });
    expect((await t.store.listDeliveriesBySession(sid)).map((d) => d.clientId)).toContain('forum');
  });

  it('records the cookie\'s reader app (sharedCookie.clientId) as joined, so the session\'s logout reaches it', async () => {
    t = await createTestServer({ file: { sharedCookie: { enabled: true, secret: SECRET, clientId: 'forum' } } });
    await createApp(t, { client_id: 'forum', backchannel_logout_uri: 'https://forum.example/backchannel-logout' });
    const { user, res } = await signIn(t);
    const sid = (await verify(sharedToken(res))).sid as string;
    const session = await t.store.findSessionByHandle(sid);
    expect(session!.userId).toBe(user.id);
    expect(session!.apps.map((a) => a.clientId)).toEqual(['forum']);
    await t.authority.sessions.revokeSession(sid, { actor: 'admin', reason: 'admin_revoked' });
    expect((await t.store.listDeliveriesBySession(sid)).map((d) => [d.clientId, d.channel])).toEqual([['forum', 'backchannel']]);
  });

  it('still signs in (and sets the cookie) when sharedCookie.clientId names no registered app', async () => {
    t = await createTestServer({ file: { sharedCookie: { enabled: true, secret: SECRET, clientId: 'no-such-app' } } });
    const { res } = await signIn(t);
    const session = await t.store.findSessionByHandle((await verify(sharedToken(res))).sid as string);
    expect(session!.apps).toEqual([]);
  });

  it('is neither set nor cleared when sharedCookie.enabled is false (the default)', async () => {
    t = await createTestServer({ file: { cookie: { domain: '.example.test' }, sharedCookie: { secret: SECRET } } });
    const { res, sessionToken } = await signIn(t);
    expect(setCookie(res, 'token')).toBeUndefined();
    const { logoutUrl } = await requestLogoutUrl(t, sessionToken);
    const out = await t.app.inject({ method: 'GET', url: pathOf(logoutUrl), cookies: { tessera_session: sessionToken } });
    expect(out.statusCode).toBe(303);
    expect(setCookie(out, 'tessera_session')).toBeDefined();
    expect(setCookie(out, 'token')).toBeUndefined();
  });
});

describe('shared cookie at logout', () => {
  it('is cleared by the browser flow (GET /v1/logout, 303 and 204)', async () => {
    const s = await server();
    for (const accept of ['text/html', 'application/json']) {
      const { sessionToken } = await signIn(s);
      const { logoutUrl } = await requestLogoutUrl(s, sessionToken);
      const res = await s.app.inject({ method: 'GET', url: pathOf(logoutUrl), headers: { accept }, cookies: { tessera_session: sessionToken, token: 'old' } });
      expect(res.statusCode).toBe(accept === 'application/json' ? 204 : 303);
      expectCleared(res);
    }
  });

  it('is cleared by the XHR flow (POST /v1/logout with the CSRF header, or with a logout token)', async () => {
    const s = await server();
    const app = await createApp(s, { allowed_origins: ['https://site.example'] });
    expect(app.clientId).toBeTruthy();
    const first = await signIn(s);
    const byHeader = await s.app.inject({ method: 'POST', url: '/v1/logout', headers: { origin: 'https://site.example', 'x-tessera-csrf': '1' }, cookies: { tessera_session: first.sessionToken } });
    expect(byHeader.statusCode).toBe(204);
    expectCleared(byHeader);

    const second = await signIn(s);
    const { logoutToken } = await requestLogoutUrl(s, second.sessionToken);
    const byToken = await s.app.inject({ method: 'POST', url: '/v1/logout', headers: { origin: 'https://site.example' }, payload: { logout_token: logoutToken }, cookies: { tessera_session: second.sessionToken } });
    expect(byToken.statusCode).toBe(204);
    expectCleared(byToken);
  });

  it('is kept when a logout URL for another session is opened in a browser with a live session (logout CSRF)', async () => {
    const s = await server();
    const victim = await signIn(s);
    const attacker = await signIn(s);
    const { logoutUrl } = await requestLogoutUrl(s, attacker.sessionToken);
    const res = await s.app.inject({ method: 'GET', url: pathOf(logoutUrl), cookies: { tessera_session: victim.sessionToken } });
    expect(res.statusCode).toBe(303);
    expect(setCookie(res, 'tessera_session')).toBeUndefined();
    expect(setCookie(res, 'token')).toBeUndefined();
  });

  it('is not cleared by a refused logout', async () => {
    const s = await server();
    const { sessionToken } = await signIn(s);
    const wrongToken = await s.app.inject({ method: 'GET', url: '/v1/logout?token=nope', cookies: { tessera_session: sessionToken } });
    expect(wrongToken.statusCode).toBe(403);
    expect(setCookie(wrongToken, 'token')).toBeUndefined();
    const noCsrf = await s.app.inject({ method: 'POST', url: '/v1/logout', headers: { origin: s.config.issuer }, cookies: { tessera_session: sessionToken } });
    expect(noCsrf.statusCode).toBe(403);
    expect(setCookie(noCsrf, 'token')).toBeUndefined();
    expect((await s.app.inject({ method: 'GET', url: '/v1/whoami', headers: bearer(sessionToken) })).statusCode).toBe(200);
  });
});

describe('shared cookie configuration', () => {
  const base = { TESSERA_ADMIN_TOKEN: 'a'.repeat(40), TESSERA_COOKIE_SECURE: 'false' };
  const load = (file: Record<string, unknown>, env: Record<string, string> = {}) => () => loadConfig({ env: { ...base, ...env }, file: { sharedCookie: file } });
  const keyOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).key;
    }
    throw new Error('expected a ConfigError');
  };

  it('defaults: off, named token, the six claim names, no parent key', () => {
    const config = loadConfig({ env: base });
    expect(config.sharedCookie).toEqual({
      enabled: false,
      name: 'token',
      domain: null,
      secret: null,
      claims: { id: 'id', username: 'username', email: 'email', firstName: 'firstName', lastName: 'lastName', picture: 'picture' },
      parentKey: null,
      clientId: null,
    });
  });

  it('reads enabled, name, domain and secret from the environment', () => {
    const config = loadConfig({ env: { ...base, TESSERA_SHARED_COOKIE: 'true', TESSERA_SHARED_COOKIE_NAME: 'nbb', TESSERA_SHARED_COOKIE_DOMAIN: '.example.com', TESSERA_SHARED_COOKIE_SECRET: SECRET, TESSERA_SHARED_COOKIE_CLIENT_ID: 'forum' } });
    expect(config.sharedCookie).toMatchObject({ enabled: true, name: 'nbb', domain: '.example.com', secret: SECRET, clientId: 'forum' });
  });

  it('refuses enabled without a secret, naming the key and its variable', () => {
    expect(keyOf(load({ enabled: true }))).toBe('sharedCookie.secret (TESSERA_SHARED_COOKIE_SECRET)');
    expect(load({ enabled: true })).toThrow(/required when sharedCookie\.enabled is true/);
    expect(keyOf(load({}, { TESSERA_SHARED_COOKIE: 'true' }))).toBe('sharedCookie.secret (TESSERA_SHARED_COOKIE_SECRET)');
  });

  it('refuses a secret shorter than 32 characters, without echoing it', () => {
    const short = 'short-secret-1234';
    expect(keyOf(load({ enabled: true, secret: short }))).toBe('sharedCookie.secret (TESSERA_SHARED_COOKIE_SECRET)');
    expect(load({ enabled: true, secret: short })).toThrow(expect.objectContaining({ message: expect.not.stringContaining(short) }));
  });

  it('refuses the session cookie\'s name, clashing claim names, reserved claims without a parent key, and bad names', () => {
    expect(keyOf(load({ enabled: true, secret: SECRET, name: 'tessera_session' }))).toBe('sharedCookie.name (TESSERA_SHARED_COOKIE_NAME)');
    expect(keyOf(load({ enabled: true, secret: SECRET, claims: { email: 'id' } }))).toBe('sharedCookie.claims.email');
    expect(keyOf(load({ enabled: true, secret: SECRET, claims: { id: 'exp' } }))).toBe('sharedCookie.claims.id');
    expect(load({ enabled: true, secret: SECRET, claims: { id: 'exp' }, parentKey: 'd' })).not.toThrow();
    expect(keyOf(load({ enabled: true, secret: SECRET, claims: { username: 'sid' } }))).toBe('sharedCookie.claims.username');
    expect(keyOf(load({ enabled: true, secret: SECRET, parentKey: 'iat' }))).toBe('sharedCookie.parentKey');
    expect(keyOf(load({ claims: { id: 'has space' } }))).toBe('sharedCookie.claims.id');
    expect(keyOf(load({ domain: 'exa mple.com' }))).toBe('sharedCookie.domain (TESSERA_SHARED_COOKIE_DOMAIN)');
    expect(keyOf(load({ enabled: true, secret: SECRET, unknown: 1 }))).toBe('sharedCookie');
  });
});

describe('the cookie\'s reader app (sharedCookie.clientId) with only the shared cookie', () => {
  async function forumServer(trusted = false) {
    t = await createTestServer({ file: { cookie: { domain: '.example.test' }, sharedCookie: { enabled: true, secret: SECRET, clientId: 'forum' } } });
    const forum = await createApp(t, { client_id: 'forum', trusted, backchannel_logout_uri: 'https://forum.example/backchannel-logout' });
    const other = await createApp(t, { name: 'shop', trusted: true });
    return { s: t, forum, other };
  }
  const logout = (s: TestServer, basic: string, payload: unknown) => s.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: basic }, payload: payload as object });

  it('ends the session everywhere (scope session), with reason logout by the forum, and the back-channel notice is planned', async () => {
    const { s, forum } = await forumServer();
    const { res, sessionToken } = await signIn(s);
    const cookie = sharedToken(res);
    const sid = (await verify(cookie)).sid as string;
    const out = await logout(s, forum.basic, { token: cookie });
    expect(out.statusCode, out.body).toBe(200);
    const ended = await s.store.findSessionByHandle(sid);
    expect(ended).toMatchObject({ endReason: 'logout', endedBy: 'app:forum' });
    expect((await s.app.inject({ method: 'GET', url: '/v1/whoami', headers: { 'x-session-token': sessionToken } })).statusCode).toBe(401);
    // The forum is told too (harmless for it: the plugin ends what is already gone).
    expect((await s.store.listDeliveriesBySession(sid)).map((d) => d.clientId)).toEqual(['forum']);
    // Idempotent, like the session-token form.
    expect((await logout(s, forum.basic, { token: cookie, scope: 'session' })).statusCode).toBe(200);
  });

  it('ends only the forum\'s part with scope app', async () => {
    const { s, forum } = await forumServer();
    const { res, sessionToken } = await signIn(s);
    const cookie = sharedToken(res);
    const sid = (await verify(cookie)).sid as string;
    expect((await logout(s, forum.basic, { token: cookie, scope: 'app' })).statusCode).toBe(200);
    const session = await s.store.findSessionByHandle(sid);
    expect(session!.endedAt).toBeNull();
    expect(session!.apps.find((a) => a.clientId === 'forum')!.leftAt).not.toBeNull();
    expect((await s.app.inject({ method: 'GET', url: '/v1/whoami', headers: { 'x-session-token': sessionToken } })).statusCode).toBe(200);
  });

  it('refuses the cookie from any other app, a forged or expired cookie', async () => {
    const { s, forum, other } = await forumServer();
    const { res } = await signIn(s);
    const cookie = sharedToken(res);
    const sid = (await verify(cookie)).sid as string;
    await expectError(await logout(s, other.basic, { token: cookie }), 403, 'TOKEN_INVALID');
    const forged = await new SignJWT({ sid }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-0123456789-abcdefghijkl'));
    await expectError(await logout(s, forum.basic, { token: forged }), 403, 'TOKEN_INVALID');
    expect((await s.store.findSessionByHandle(sid))!.endedAt).toBeNull();
    s.clock.advance(LIFETIME_SECONDS * 1000 + 1);
    await expectError(await logout(s, forum.basic, { token: cookie }), 403, 'TOKEN_INVALID');
  });

  it('scope user from an untrusted reader: the same decision as for a token (its own session ends, 403 APP_NOT_TRUSTED, the others live)', async () => {
    const { s, forum } = await forumServer();
    const { res, user } = await signIn(s);
    const cookie = sharedToken(res);
    const sid = (await verify(cookie)).sid as string;
    const second = await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: (await createApp(s, { name: 'desk', trusted: true })).basic }, payload: { user_id: user.id } });
    const otherSid = second.json<{ session: { handle: string } }>().session.handle;
    await expectError(await logout(s, forum.basic, { token: cookie, scope: 'user' }), 403, 'APP_NOT_TRUSTED');
    expect(await s.store.findSessionByHandle(sid)).toMatchObject({ endReason: 'logout', endedBy: 'app:forum' });
    expect((await s.store.findSessionByHandle(otherSid))!.endedAt).toBeNull();
  });

  it('scope user from a trusted reader ends every session of the user', async () => {
    const { s, forum } = await forumServer(true);
    const { res, user } = await signIn(s);
    const cookie = sharedToken(res);
    const sid = (await verify(cookie)).sid as string;
    const second = await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: (await createApp(s, { name: 'desk', trusted: true })).basic }, payload: { user_id: user.id } });
    const otherSid = second.json<{ session: { handle: string } }>().session.handle;
    expect((await logout(s, forum.basic, { token: cookie, scope: 'user' })).statusCode).toBe(200);
    expect((await s.store.findSessionByHandle(sid))!.endedAt).not.toBeNull();
    expect((await s.store.findSessionByHandle(otherSid))!.endedAt).not.toBeNull();
  });

  it('a valid cookie of a dead session is a no-op for every scope (like a dead token)', async () => {
    const { s, forum } = await forumServer();
    const { res, user } = await signIn(s);
    const cookie = sharedToken(res);
    const sid = (await verify(cookie)).sid as string;
    const desk = await createApp(s, { name: 'desk', trusted: true });
    const started = await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: desk.basic }, payload: { user_id: user.id } });
    const otherSid = started.json<{ session: { handle: string } }>().session.handle;
    // Ended by someone else (an admin): the cookie is still valid, its session is dead.
    expect((await s.app.inject({ method: 'DELETE', url: `/api/v1/sessions/${sid}`, headers: { authorization: desk.basic } })).statusCode).toBe(204);
    for (const scope of ['app', 'session', 'user'] as const) {
      expect((await logout(s, forum.basic, { token: cookie, scope })).statusCode, scope).toBe(200);
    }
    // Scope user did nothing: the user's other session goes on, and the dead one keeps its reason.
    expect((await s.store.findSessionByHandle(otherSid))!.endedAt).toBeNull();
    expect(await s.store.findSessionByHandle(sid)).toMatchObject({ endReason: 'admin_revoked' });
  });

  it('refuses the cookie once the reader has left the session (a former member is not a member)', async () => {
    const { s, forum } = await forumServer();
    const { res } = await signIn(s);
    const cookie = sharedToken(res);
    const sid = (await verify(cookie)).sid as string;
    expect((await logout(s, forum.basic, { token: cookie, scope: 'app' })).statusCode).toBe(200);
    await expectError(await logout(s, forum.basic, { token: cookie, scope: 'session' }), 403, 'TOKEN_INVALID');
    expect((await s.store.findSessionByHandle(sid))!.endedAt).toBeNull();
  });

  it('refuses a valid cookie of a session the forum never joined', async () => {
    const { s, forum, other } = await forumServer();
    const { user } = await createUser(s);
    const started = await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: other.basic }, payload: { user_id: user.id } });
    const handle = started.json<{ session: { handle: string } }>().session.handle;
    const cookie = await new SignJWT({ id: user.id, sid: handle }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(Math.floor(START / 1000)).sign(new TextEncoder().encode(SECRET));
    await expectError(await logout(s, forum.basic, { token: cookie }), 403, 'TOKEN_INVALID');
    expect((await s.store.findSessionByHandle(handle))!.endedAt).toBeNull();
  });
});

describe('POST /api/v1/sessions/:handle/activity (a member app reports use)', () => {
  it('moves the idle deadline, at most once per touch interval; 404 for strangers, ended or unknown sessions', async () => {
    t = await createTestServer({ env: { TESSERA_SESSION_IDLE_TIMEOUT: '3600' }, file: { sharedCookie: { enabled: true, secret: SECRET, clientId: 'forum' } } });
    const forum = await createApp(t, { client_id: 'forum', trusted: false });
    const other = await createApp(t, { name: 'shop', trusted: false });
    const { res } = await signIn(t);
    const sid = (await verify(sharedToken(res))).sid as string;
    const touch = (basic: string, handle = sid) => t!.app.inject({ method: 'POST', url: `/api/v1/sessions/${handle}/activity`, headers: { authorization: basic } });
    const before = (await t.store.findSessionByHandle(sid))!.idleExpiresAt;
    expect(before).toBe(START + 3_600_000);
    t.clock.advance(50 * 60_000);
    expect((await touch(forum.basic)).statusCode).toBe(204);
    expect((await t.store.findSessionByHandle(sid))!.idleExpiresAt).toBe(START + 50 * 60_000 + 3_600_000);
    // Within the touch interval (60 s) nothing is written.
    t.clock.advance(30_000);
    expect((await touch(forum.basic)).statusCode).toBe(204);
    expect((await t.store.findSessionByHandle(sid))!.idleExpiresAt).toBe(START + 50 * 60_000 + 3_600_000);
    // Only members; only sessions that exist and are active.
    await expectError(await touch(other.basic), 404, 'SESSION_NOT_FOUND');
    // Not even a trusted app keeps alive a session it is not part of (requireAppMay 'report_activity').
    const trustedStranger = await createApp(t, { name: 'desk', trusted: true });
    await expectError(await touch(trustedStranger.basic), 404, 'SESSION_NOT_FOUND');
    await expectError(await touch(forum.basic, 'ses_nope'), 404, 'SESSION_NOT_FOUND');
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/sessions/${sid}/activity` })).statusCode).toBe(401);
    // Past the idle deadline it is not revived: it ends (expired) instead.
    t.clock.advance(2 * 3_600_000);
    await expectError(await touch(forum.basic), 404, 'SESSION_NOT_FOUND');
    expect((await t.store.findSessionByHandle(sid))!.endReason).toBe('expired');
  });
});
