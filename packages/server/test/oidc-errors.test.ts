// Bad input at the OpenID Provider's endpoints that a relying-party library would not send
// (in process, manual clock): repeated and malformed parameters, garbage bodies, client
// authentication mistakes, a PKCE downgrade, a changed redirect_uri at the token endpoint.
// Each gets the error the specs name, never a 5xx, and nothing is ever sent to a redirect
// URI that was not verified first. The cases a real client meets (wrong redirect_uri, PKCE,
// code replay, another client's code, expired code, prompt=none, end_session) are run with
// openid-client over real HTTP in oidc-rp-errors.test.ts; the happy paths in oidc-flow.test.ts.
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, adminRequest, basicAuth, createTestServer, signIn, type Response, type TestServer } from './support.js';
import { expectPageHeaders } from './page-headers.js';

const CB = 'https://rp.example/cb';
const BYE = 'https://rp.example/bye';

const verifierPair = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

interface Client {
  clientId: string;
  clientSecret: string;
}

describe('OpenID Provider: bad input', () => {
  let t: TestServer;
  let conf: Client;
  let pub: Client;
  let other: Client;
  let cookie: string;

  async function register(body: Record<string, unknown>): Promise<Client> {
    const res = await adminRequest(t, 'POST', '/apps', body);
    expect(res.statusCode, res.body).toBe(201);
    const json = res.json<{ app: { client_id: string }; client_secret: string }>();
    return { clientId: json.app.client_id, clientSecret: json.client_secret };
  }

  beforeEach(async () => {
    t = await createTestServer();
    conf = await register({ name: 'Conf', trusted: true, redirect_uris: [CB], post_logout_redirect_uris: [BYE] });
    pub = await register({ name: 'Pub', trusted: true, redirect_uris: [CB], token_endpoint_auth_method: 'none' });
    other = await register({ name: 'Other', trusted: true, redirect_uris: ['https://other.example/cb'] });
    cookie = await signIn(t);
  });
  afterEach(async () => t.close());

  function authorize(query: Record<string, string>, withSession = true): Promise<Response> {
    return t.app.inject({ method: 'GET', url: '/oidc/authorize', query, ...(withSession ? { cookies: { [t.config.cookie.name]: cookie } } : {}) });
  }

  /** Asserts an error page of Tessera: 400, HTML, no Location (no redirect at all). */
  function expectPage(res: Response, status = 400): void {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers.location).toBeUndefined();
    expect(String(res.headers['content-type'])).toContain('text/html');
  }

  /** Asserts an error sent to the verified redirect URI, with state and iss. */
  function expectRedirectError(res: Response, error: string, state = 'st'): void {
    expect(res.statusCode, res.body).toBe(303);
    const location = new URL(String(res.headers.location));
    expect(`${location.origin}${location.pathname}`).toBe(CB);
    expect(location.searchParams.get('error')).toBe(error);
    expect(location.searchParams.get('state')).toBe(state);
    expect(location.searchParams.get('iss')).toBe(ISSUER);
    expect(location.searchParams.get('code')).toBeNull();
  }

  async function code(client: Client, extra: Record<string, string> = {}): Promise<string> {
    const res = await authorize({ client_id: client.clientId, redirect_uri: CB, response_type: 'code', scope: 'openid', state: 'st', ...extra });
    expect(res.statusCode, res.body).toBe(303);
    const found = new URL(String(res.headers.location)).searchParams.get('code');
    expect(found).not.toBeNull();
    return found!;
  }

  function token(form: Record<string, string>, client?: Client): Promise<Response> {
    return t.app.inject({
      method: 'POST',
      url: '/oidc/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(client ? { authorization: basicAuth(client.clientId, client.clientSecret) } : {}) },
      payload: new URLSearchParams(form).toString(),
    });
  }

  function expectOAuth(res: Response, status: number, error: string): void {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.json<{ error: string }>().error).toBe(error);
    expect(res.headers['cache-control']).toBe('no-store');
  }

  describe('authorization endpoint', () => {
    it('shows an error page, never a redirect, for a request without client_id or with client_id or redirect_uri repeated', async () => {
      const base = { response_type: 'code', scope: 'openid', state: 'st' };
      expectPage(await authorize({ ...base, redirect_uri: CB }));
      // A repeated client_id or redirect_uri cannot be resolved to either value.
      const repeated = await t.app.inject({ method: 'GET', url: `/oidc/authorize?client_id=${conf.clientId}&redirect_uri=${encodeURIComponent(CB)}&redirect_uri=${encodeURIComponent('https://evil.example/cb')}&response_type=code&scope=openid` });
      expectPage(repeated);
      const twoClients = await t.app.inject({ method: 'GET', url: `/oidc/authorize?client_id=${conf.clientId}&client_id=${other.clientId}&redirect_uri=${encodeURIComponent(CB)}&response_type=code&scope=openid` });
      expectPage(twoClients);
    });

    it('returns the errors the specs name to a verified redirect_uri', async () => {
      const base = { client_id: conf.clientId, redirect_uri: CB, state: 'st' };
      expectRedirectError(await authorize({ ...base, scope: 'openid' }), 'invalid_request');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'token' }), 'unsupported_response_type');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code id_token' }), 'unsupported_response_type');
      expectRedirectError(await authorize({ ...base, scope: 'profile', response_type: 'code' }), 'invalid_scope');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', code_challenge: verifierPair().challenge, code_challenge_method: 'plain' }), 'invalid_request');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', code_challenge: verifierPair().challenge }), 'invalid_request');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', code_challenge: 'short', code_challenge_method: 'S256' }), 'invalid_request');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', prompt: 'none login' }), 'invalid_request');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', prompt: 'select_account' }), 'invalid_request');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', max_age: 'soon' }), 'invalid_request');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', response_mode: 'fragment' }), 'invalid_request');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', request: 'eyJ.x.y' }), 'request_not_supported');
      expectRedirectError(await authorize({ ...base, scope: 'openid', response_type: 'code', request_uri: 'https://x' }), 'request_uri_not_supported');
      // A public client must use PKCE.
      expectRedirectError(await authorize({ ...base, client_id: pub.clientId, scope: 'openid', response_type: 'code' }), 'invalid_request');
    });

    it('prompt=none with a login_hint for another account than the signed-in one sends login_required', async () => {
      const query = { client_id: conf.clientId, redirect_uri: CB, response_type: 'code', scope: 'openid', state: 'st', prompt: 'none' };
      expectRedirectError(await authorize({ ...query, login_hint: 'somebody-else' }), 'login_required');
    });

    it('prompt=none for an app the user has not allowed sends consent_required', async () => {
      const untrusted = await register({ name: 'Untrusted', redirect_uris: [CB] });
      expectRedirectError(await authorize({ client_id: untrusted.clientId, redirect_uri: CB, response_type: 'code', scope: 'openid', state: 'st', prompt: 'none' }), 'consent_required');
    });

    it('sends a browser without a session to the hosted login page, which accepts the authorize URL as return_to', async () => {
      const res = await authorize({ client_id: conf.clientId, redirect_uri: CB, response_type: 'code', scope: 'openid', state: 'st' }, false);
      expect(res.statusCode).toBe(303);
      const login = new URL(String(res.headers.location));
      expect(login.pathname).toBe('/login');
      const returnTo = login.searchParams.get('return_to')!;
      expect(returnTo.startsWith(`${ISSUER}/oidc/authorize?`)).toBe(true);
      const page = await t.app.inject({ method: 'GET', url: `/login?return_to=${encodeURIComponent(returnTo)}` });
      expect(page.statusCode).toBe(200);
      // The login POST ends, through two 303s, at the client: its verified origin is allowed
      // in form-action (Chromium checks the redirects of a form submission too).
      expectPageHeaders(page, "'self' https://rp.example");
      // An authorize URL naming an unregistered redirect_uri adds nothing.
      const forged = returnTo.replace(encodeURIComponent(CB), encodeURIComponent('https://evil.example/cb'));
      const plain = await t.app.inject({ method: 'GET', url: `/login?return_to=${encodeURIComponent(forged)}` });
      expectPageHeaders(plain);
      // Only the issuer's own authorize endpoint: a look-alike path or host is refused.
      for (const bad of [`${ISSUER}/oidc/authorizex?a=1`, `${ISSUER}/oidc/authorize#x`, 'https://evil.example/oidc/authorize?a=1', `${ISSUER}.evil.example/oidc/authorize?a=1`]) {
        expect((await t.app.inject({ method: 'GET', url: `/login?return_to=${encodeURIComponent(bad)}` })).statusCode, bad).toBe(400);
      }
    });
  });

  it('max_age=0 sends a signed-in browser to the login form once, then issues the code (no loop)', async () => {
    const { createUser: makeUser, loginWithForm, openLoginForm, postLogin, setCookie, pathOf } = await import('./support.js');
    const { user, password } = await makeUser(t);
    const first = (await loginWithForm(t, { username: user.username, password })).token!;
    const query = { client_id: conf.clientId, redirect_uri: CB, response_type: 'code', scope: 'openid', state: 'st', max_age: '0' };
    t.clock.advance(1000);
    const toLogin = await t.app.inject({ method: 'GET', url: '/oidc/authorize', query, cookies: { [t.config.cookie.name]: first } });
    const login = new URL(String(toLogin.headers.location));
    expect(login.pathname).toBe('/login');
    expect(login.searchParams.get('prompt')).toBe('login');
    const returnTo = login.searchParams.get('return_to')!;
    // The signed-in browser gets the form (prompt=login), signs in again, and is sent back.
    const form = await openLoginForm(t, { return_to: returnTo, prompt: 'login' }, { [t.config.cookie.name]: first });
    const again = await postLogin(t, { fields: { username: user.username, password, csrf: form.csrf, return_to: returnTo }, cookies: { [t.config.cookie.name]: first, tessera_csrf: form.csrfCookie } });
    expect(again.headers.location).toBe(returnTo);
    const second = setCookie(again, t.config.cookie.name)!.value;
    t.clock.advance(1000);
    const done = await t.app.inject({ method: 'GET', url: pathOf(returnTo), cookies: { [t.config.cookie.name]: second } });
    expect(done.statusCode).toBe(303);
    expect(new URL(String(done.headers.location)).searchParams.get('code')).not.toBeNull();
    // The same URL with the old session (started before the forced login) goes back to login.
    const stale = await t.app.inject({ method: 'GET', url: pathOf(returnTo), cookies: { [t.config.cookie.name]: first } });
    expect(new URL(String(stale.headers.location)).pathname).toBe('/login');
  });

  it('signs ID tokens with the algorithm each client registered (RS256, ES256, EdDSA), verifiable with the JWKS, with the at_hash of that algorithm', async () => {
    const { createLocalJWKSet, jwtVerify } = await import('jose');
    for (const [alg, hash] of [['RS256', 'sha256'], ['ES256', 'sha256'], ['EdDSA', 'sha512']] as const) {
      const client = await register({ name: `alg ${alg}`, trusted: true, redirect_uris: [CB], id_token_signed_response_alg: alg });
      const issued = (await token({ grant_type: 'authorization_code', code: await code(client, { nonce: 'n-1' }), redirect_uri: CB }, client)).json<{ id_token: string; access_token: string }>();
      const jwks = (await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<{ keys: object[] }>();
      const { payload, protectedHeader } = await jwtVerify(issued.id_token, createLocalJWKSet(jwks as never), { issuer: ISSUER, audience: client.clientId, currentDate: new Date(t.clock.now()) });
      expect(protectedHeader.alg).toBe(alg);
      const digest = createHash(hash).update(issued.access_token).digest();
      expect(payload.at_hash).toBe(digest.subarray(0, digest.length / 2).toString('base64url'));
      expect(payload).toMatchObject({ nonce: 'n-1', sid: expect.stringMatching(/^ses_/), auth_time: expect.any(Number) });
    }
  });

  describe('token endpoint', () => {
    it('refuses a code_verifier for a code requested without a challenge (PKCE downgrade)', async () => {
      const c = await code(conf);
      expectOAuth(await token({ grant_type: 'authorization_code', code: c, redirect_uri: CB, code_verifier: verifierPair().verifier }, conf), 400, 'invalid_grant');
    });

    it('refuses a redirect_uri that differs from the authorization request', async () => {
      const c = await code(conf);
      expectOAuth(await token({ grant_type: 'authorization_code', code: c, redirect_uri: 'https://rp.example/other' }, conf), 400, 'invalid_grant');
      expectOAuth(await token({ grant_type: 'authorization_code', code: c }, conf), 400, 'invalid_grant');
    });

    it('refuses unknown and malformed codes, and codes of an ended session', async () => {
      for (const bad of ['nope', 'ac123.456', 'a.b.c', 'x'.repeat(400)]) expectOAuth(await token({ grant_type: 'authorization_code', code: bad, redirect_uri: CB }, conf), 400, 'invalid_grant');
      const c = await code(conf);
      expect((await t.app.inject({ method: 'DELETE', url: '/v1/sessions', headers: { authorization: `Bearer ${cookie}` } })).statusCode).toBeLessThan(500);
      const sessions = await t.store.listSessionsByUser((await t.authority.sessions.authenticate(cookie))!.user.id);
      await t.authority.sessions.revokeSessions(sessions.map((s) => s.handle), { actor: 'admin', reason: 'admin_revoked' });
      expectOAuth(await token({ grant_type: 'authorization_code', code: c, redirect_uri: CB }, conf), 400, 'invalid_grant');
    });

    it('authenticates clients: wrong secret, unknown client, public client with a secret, confidential without, two methods → invalid_client / invalid_request', async () => {
      const c = await code(conf);
      const form = { grant_type: 'authorization_code', code: c, redirect_uri: CB };
      const wrong = await token(form, { clientId: conf.clientId, clientSecret: 'wrong' });
      expectOAuth(wrong, 401, 'invalid_client');
      expect(wrong.headers['www-authenticate']).toContain('Basic');
      expectOAuth(await token(form, { clientId: 'app_nobody', clientSecret: 'x' }), 401, 'invalid_client');
      expectOAuth(await token({ ...form, client_id: conf.clientId }), 401, 'invalid_client');
      expectOAuth(await token(form), 401, 'invalid_client');
      expectOAuth(await token({ ...form, client_id: pub.clientId, client_secret: pub.clientSecret }), 401, 'invalid_client');
      expectOAuth(await token({ ...form, client_secret: conf.clientSecret }, conf), 400, 'invalid_request');
      expectOAuth(await token({ ...form, client_id: other.clientId }, conf), 400, 'invalid_request');
      // client_secret_post works for a confidential client.
      expect((await token({ ...form, client_id: conf.clientId, client_secret: conf.clientSecret })).statusCode).toBe(200);
    });

    it('counts wrong client secrets under the failure limits (Basic and post alike): past the limit 429 with Retry-After; the right secret is never refused', async () => {
      await t.close();
      t = await createTestServer({ file: { rateLimit: { enabled: true, clientMax: 3, credentialMax: 100 } } });
      conf = await register({ name: 'Conf', trusted: true, redirect_uris: [CB] });
      cookie = await signIn(t);
      const form = { grant_type: 'authorization_code', code: await code(conf), redirect_uri: CB };
      for (let i = 0; i < 3; i += 1) expectOAuth(await token(form, { clientId: conf.clientId, clientSecret: `wrong-${i}` }), 401, 'invalid_client');
      const limited = await token({ ...form, client_id: conf.clientId, client_secret: 'wrong-again' });
      expect(limited.statusCode).toBe(429);
      expect(limited.json<{ error: string }>().error).toBe('RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      // A public client naming itself (no secret) is not a guess: not counted, not refused.
      expectOAuth(await token({ ...form, client_id: conf.clientId }), 401, 'invalid_client');
      // The right secret still redeems the code.
      expect((await token(form, conf)).statusCode).toBe(200);
    });

    it('names unsupported and missing grant types, and missing parameters', async () => {
      expectOAuth(await token({ grant_type: 'password', username: 'a', password: 'b' }, conf), 400, 'unsupported_grant_type');
      // client_credentials exists (Shared Signals receivers) but only for clients registered with it.
      expectOAuth(await token({ grant_type: 'client_credentials' }, conf), 400, 'unauthorized_client');
      expectOAuth(await token({}, conf), 400, 'invalid_request');
      expectOAuth(await token({ grant_type: 'authorization_code' }, conf), 400, 'invalid_request');
      expectOAuth(await token({ grant_type: 'refresh_token' }, conf), 400, 'invalid_request');
      const codeOnly = await register({ name: 'No refresh', trusted: true, redirect_uris: [CB], grant_types: ['authorization_code'] });
      expectOAuth(await token({ grant_type: 'refresh_token', refresh_token: 'rt1.x' }, codeOnly), 400, 'unauthorized_client');
      const repeated = await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(conf.clientId, conf.clientSecret) }, payload: 'grant_type=authorization_code&code=a&code=b' });
      expectOAuth(repeated, 400, 'invalid_request');
    });

    it('does not refresh an API pair (grant_type=session_token) and does not spend it trying', async () => {
      const pair = (await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: basicAuth(conf.clientId, conf.clientSecret), 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=session_token&session_token=${cookie}` })).json<{ refresh_token: string }>();
      expectOAuth(await token({ grant_type: 'refresh_token', refresh_token: pair.refresh_token }, conf), 400, 'invalid_grant');
      expect((await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: basicAuth(conf.clientId, conf.clientSecret), 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=refresh_token&refresh_token=${pair.refresh_token}` })).statusCode).toBe(200);
    });
  });

  describe('userinfo and end_session', () => {
    it('userinfo: 401 invalid_token without a token, with garbage, with an API access token (no openid scope)', async () => {
      const none = await t.app.inject({ method: 'GET', url: '/oidc/userinfo' });
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer');
      for (const bad of ['garbage', 'a.b.c', 'x'.repeat(9000)]) {
        const res = await t.app.inject({ method: 'GET', url: '/oidc/userinfo', headers: { authorization: `Bearer ${bad}` } });
        expect(res.statusCode).toBe(401);
        expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
      }
      const pair = (await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: basicAuth(conf.clientId, conf.clientSecret), 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=session_token&session_token=${cookie}` })).json<{ access_token: string }>();
      expect((await t.app.inject({ method: 'GET', url: '/oidc/userinfo', headers: { authorization: `Bearer ${pair.access_token}` } })).statusCode).toBe(401);
    });

    it('end_session: a hint for another client, a forged or garbage id_token_hint, no client for the URI → error page, no redirect, session kept', async () => {
      const c = await code(conf);
      const idToken = (await token({ grant_type: 'authorization_code', code: c, redirect_uri: CB }, conf)).json<{ id_token: string }>().id_token;
      const logout = (query: Record<string, string>) => t.app.inject({ method: 'GET', url: '/oidc/logout', query, cookies: { [t.config.cookie.name]: cookie } });
      expectPage(await logout({ id_token_hint: idToken, post_logout_redirect_uri: 'https://evil.example/bye' }));
      expectPage(await logout({ client_id: conf.clientId, post_logout_redirect_uri: `${BYE}/` }));
      expectPage(await logout({ post_logout_redirect_uri: BYE }));
      expectPage(await logout({ client_id: 'app_nobody' }));
      expectPage(await logout({ id_token_hint: idToken, client_id: other.clientId }));
      // An ID token of another issuer (its own key), and one of ours with the signature broken.
      const { privateKey } = await generateKeyPair('RS256');
      const foreign = await new SignJWT({ sid: 'ses_x' }).setProtectedHeader({ alg: 'RS256', kid: 'tk-1' }).setIssuer('https://other-issuer.example').setSubject('u').setAudience(conf.clientId).setIssuedAt().setExpirationTime('5m').sign(privateKey);
      expectPage(await logout({ id_token_hint: foreign, post_logout_redirect_uri: BYE }));
      const [h, p] = idToken.split('.');
      expectPage(await logout({ id_token_hint: `${h}.${p}.${'A'.repeat(40)}`, post_logout_redirect_uri: BYE }));
      expectPage(await logout({ id_token_hint: 'not-a-jwt' }));
      expect((await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${cookie}` } })).statusCode).toBe(200);
    });

    it('end_session: the id_token_hint of an app that has left the session no longer ends it (the user confirms); a member\'s hint does', async () => {
      // Two apps join alice's session through the code flow, then are no longer trusted
      // (so membership alone decides, as requireAppMay's end_session_by_handle).
      const left = await register({ name: 'Left', trusted: true, redirect_uris: [CB], post_logout_redirect_uris: [BYE] });
      const member = await register({ name: 'Member', trusted: true, redirect_uris: [CB], post_logout_redirect_uris: [BYE] });
      const idTokenOf = async (client: Client) => (await token({ grant_type: 'authorization_code', code: await code(client), redirect_uri: CB }, client)).json<{ id_token: string }>().id_token;
      const leftHint = await idTokenOf(left);
      const memberHint = await idTokenOf(member);
      for (const client of [left, member]) expect((await adminRequest(t, 'PATCH', `/apps/${client.clientId}`, { trusted: false })).statusCode).toBe(200);
      // `left` leaves the session (an app-only logout, with the session's token).
      const leave = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: basicAuth(left.clientId, left.clientSecret), 'content-type': 'application/json' }, payload: { token: cookie, scope: 'app' } });
      expect(leave.statusCode, leave.body).toBe(200);
      const logout = (hint: string) => t.app.inject({ method: 'GET', url: '/oidc/logout', query: { id_token_hint: hint, post_logout_redirect_uri: BYE }, cookies: { [t.config.cookie.name]: cookie } });
      const confirm = await logout(leftHint);
      expectPage(confirm, 200);
      expect(confirm.body).toContain('action="/oidc/logout/confirm"');
      expect((await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${cookie}` } })).statusCode).toBe(200);
      const ended = await logout(memberHint);
      expect(ended.statusCode).toBe(303);
      expect(String(ended.headers.location)).toBe(BYE);
      expect((await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${cookie}` } })).statusCode).toBe(401);
    });

    it('answers garbage at every endpoint with a 4xx, never a 5xx', async () => {
      const bodies = ['', '%', 'a=%zz', '&&&', 'client_id[]=x', `code=${'x'.repeat(5000)}`, '{"json":true}'];
      for (const url of ['/oidc/token', '/oidc/authorize', '/oidc/logout', '/oidc/logout/confirm', '/oidc/consent', '/oidc/userinfo']) {
        for (const payload of bodies) {
          for (const type of ['application/x-www-form-urlencoded', 'application/json', 'text/plain']) {
            const res = await t.app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload });
            expect(res.statusCode, `${url} ${type} ${payload.slice(0, 20)}`).toBeLessThan(500);
            expect(res.statusCode).toBeGreaterThanOrEqual(200);
          }
        }
      }
      for (const query of ['?client_id=%', '?client_id[]=a&redirect_uri=b', `?state=${'s'.repeat(9000)}`, '?id_token_hint=a.b.c']) {
        for (const url of ['/oidc/authorize', '/oidc/logout']) expect((await t.app.inject({ method: 'GET', url: url + query })).statusCode, url + query).toBeLessThan(500);
      }
    });
  });

  it('ID tokens and discovery name this issuer; the user lists and withdraws a consent (the app asks again next time)', async () => {
    const disco = (await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json<{ issuer: string; token_endpoint: string }>();
    expect(disco.issuer).toBe(ISSUER);
    expect(disco.token_endpoint).toBe(`${ISSUER}/oidc/token`);
    const untrusted = await register({ name: 'Untrusted', redirect_uris: [CB] });
    const userId = (await t.authority.sessions.authenticate(cookie))!.user.id;
    await t.authority.oidc.grantConsent((await t.store.findApp(untrusted.clientId))!, userId, 'openid');
    expect((await authorize({ client_id: untrusted.clientId, redirect_uri: CB, response_type: 'code', scope: 'openid', state: 'st', prompt: 'none' })).headers.location).toContain('code=');
    const listed = await t.app.inject({ method: 'GET', url: '/v1/consents', headers: { authorization: `Bearer ${cookie}` } });
    expect(listed.json()).toEqual({ consents: [{ client_id: untrusted.clientId, client_name: 'Untrusted', scope: 'openid', granted_at: expect.any(String) }] });
    // A cookie alone cannot withdraw it (CSRF); the bearer token or the custom header can.
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/consents/${untrusted.clientId}`, cookies: { [t.config.cookie.name]: cookie } })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/consents/${untrusted.clientId}`, headers: { authorization: `Bearer ${cookie}` } })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/consents/${untrusted.clientId}`, headers: { authorization: `Bearer ${cookie}` } })).statusCode).toBe(404);
    expectRedirectError(await authorize({ client_id: untrusted.clientId, redirect_uri: CB, response_type: 'code', scope: 'openid', state: 'st', prompt: 'none' }), 'consent_required');
  });
});
