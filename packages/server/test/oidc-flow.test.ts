// The OpenID Provider driven by openid-client (panva's certified relying-party library) over
// real HTTP, as a confidential and as a public client: discovery, authorization code with
// PKCE through the hosted login page, ID token validation, userinfo, refresh, introspection
// and RP-initiated logout. The OIDC session is the Tessera session, checked from both sides.
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formFields, signInThrough, startOidcNode, startReceiver, waitFor, type OidcNode, type Receiver } from './oidc-support.js';

const CONF_CB = 'https://rp-conf.example/cb';
const PUB_CB = 'http://127.0.0.1:8765/callback';
const PUB_BYE = 'http://127.0.0.1:8765/signed-out';
const CONF_BYE = 'https://rp-conf.example/bye';

describe('OpenID Provider with openid-client', () => {
  let node: OidcNode;
  let receiver: Receiver;
  let conf: { clientId: string; clientSecret: string };
  let pub: { clientId: string; clientSecret: string };
  let userId: string;

  beforeAll(async () => {
    node = await startOidcNode();
    receiver = await startReceiver(node.url, () => conf.clientId, ['RS256']);
    userId = await node.createUser('alice', 'correct horse battery', { first_name: 'Alice', last_name: 'Liddell', email: 'alice@example.test' });
    // A trusted confidential client (no consent page) and an untrusted public one.
    conf = await node.createClient({ name: 'Conf RP', trusted: true, redirect_uris: [CONF_CB], post_logout_redirect_uris: [CONF_BYE], backchannel_logout_uri: receiver.uri, backchannel_logout_session_required: true });
    pub = await node.createClient({ name: 'Public RP', redirect_uris: [PUB_CB], post_logout_redirect_uris: [PUB_BYE], token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'EdDSA' });
  });
  afterAll(async () => {
    await receiver?.close();
    await node?.close();
  });

  async function discover(id: string, auth: client.ClientAuth, metadata?: Partial<client.ClientMetadata>): Promise<client.Configuration> {
    return client.discovery(new URL(node.url), id, metadata, auth, { execute: [client.allowInsecureRequests] });
  }

  async function authorize(config: client.Configuration, redirectUri: string, extra: Record<string, string> = {}) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid profile email', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce, ...extra });
    return { url: url.toString(), verifier, state, nonce };
  }

  it('publishes discovery metadata that openid-client accepts, with the logout capabilities', async () => {
    const config = await discover(conf.clientId, client.ClientSecretBasic(conf.clientSecret));
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(node.url);
    expect(meta).toMatchObject({
      code_challenge_methods_supported: ['S256'],
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      end_session_endpoint: `${node.url}/oidc/logout`,
      authorization_response_iss_parameter_supported: true,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    });
    expect(meta.id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'EdDSA', 'ES256']));
    // Every advertised algorithm has a published key.
    const jwks = (await (await fetch(meta.jwks_uri!)).json()) as { keys: Array<{ alg: string }> };
    expect(new Set(jwks.keys.map((k) => k.alg))).toEqual(new Set(['EdDSA', 'RS256', 'ES256']));
  });

  it('runs the whole flow as a confidential client: login page, code + PKCE, ID token, userinfo, refresh, introspection, RP-initiated logout', async () => {
    const config = await discover(conf.clientId, client.ClientSecretBasic(conf.clientSecret));
    const browser = new Browser();
    const request = await authorize(config, CONF_CB);
    const { hop } = await signInThrough(browser, request.url, node.url, 'alice', 'correct horse battery');
    expect(hop.status).toBe(303);
    expect(hop.location!.startsWith(`${CONF_CB}?`)).toBe(true);
    // RFC 9207: iss in the response; openid-client checks it against the discovered issuer.
    expect(new URL(hop.location!).searchParams.get('iss')).toBe(node.url);

    const tokens = await client.authorizationCodeGrant(config, new URL(hop.location!), { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true });
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(userId);
    expect(claims.aud).toBe(conf.clientId);
    expect(claims.nonce).toBe(request.nonce);
    expect(typeof claims.auth_time).toBe('number');
    expect(claims.sid).toMatch(/^ses_/);
    expect(claims.at_hash).toEqual(expect.any(String));
    expect(claims).toMatchObject({ preferred_username: 'alice', name: 'Alice Liddell', given_name: 'Alice', family_name: 'Liddell' });
    // alice's email was never verified: neither the address nor email_verified is released
    // (core's verifiedEmailOf), although the client asked for the email scope.
    expect(claims.email).toBeUndefined();
    expect(claims.email_verified).toBeUndefined();
    expect(JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()).alg).toBe('RS256');

    // The OIDC session is the Tessera session: whoami with the browser's cookie names the
    // same session, and the client is recorded as having joined it.
    const cookie = browser.cookie(node.url, 'tessera_session')!;
    const whoami = (await (await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${cookie}` } })).json()) as { session: { id?: string; handle?: string; apps: Array<{ client_id: string }> } };
    expect(whoami.session.handle ?? whoami.session.id).toBe(claims.sid);
    expect(whoami.session.apps.map((a) => a.client_id)).toContain(conf.clientId);
    const listed = await node.admin<{ sessions: Array<{ handle?: string; id?: string }> }>('GET', `/users/${userId}/sessions`);
    expect(listed.body.sessions.map((s) => s.handle ?? s.id)).toContain(claims.sid);

    const info = await client.fetchUserInfo(config, tokens.access_token, userId);
    expect(info).toMatchObject({ sub: userId, preferred_username: 'alice' });
    expect(info.email).toBeUndefined();
    // Once an admin says the address is verified, userinfo releases it, marked verified.
    expect((await node.admin('PATCH', `/users/${userId}`, { email_verified: true })).status).toBe(200);
    expect(await client.fetchUserInfo(config, tokens.access_token, userId)).toMatchObject({ email: 'alice@example.test', email_verified: true });
    expect((await node.admin('PATCH', `/users/${userId}`, { email_verified: false })).status).toBe(200);

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.claims()!.sid).toBe(claims.sid);
    const active = await client.tokenIntrospection(config, refreshed.access_token);
    expect(active).toMatchObject({ active: true, sub: userId, sid: claims.sid });

    // RP-initiated logout with id_token_hint and a registered post_logout_redirect_uri.
    const logoutUrl = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: CONF_BYE, state: 'bye-state' });
    const out = await browser.request('GET', logoutUrl.toString());
    expect(out.status).toBe(303);
    expect(out.location).toBe(`${CONF_BYE}?state=bye-state`);
    expect(browser.cookie(node.url, 'tessera_session')).toBeUndefined();

    // Every grant ended with the session: refresh, userinfo, introspection, whoami.
    await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(client.fetchUserInfo(config, refreshed.access_token, userId)).rejects.toMatchObject({ status: 401 });
    expect(await client.tokenIntrospection(config, refreshed.access_token)).toMatchObject({ active: false });
    expect((await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${cookie}` } })).status).toBe(401);
    // The client that joined hears of it back-channel, with the session's sid.
    await waitFor(() => receiver.received.some((r) => r.claims.sid === claims.sid), 'the back-channel logout of the ended session');
    expect(receiver.rejected).toEqual([]);
  });

  it('runs the flow as a public client (PKCE, no secret) through the consent page, with EdDSA ID tokens; the consent is remembered', async () => {
    const config = await discover(pub.clientId, client.None(), { id_token_signed_response_alg: 'EdDSA' });
    const browser = new Browser();
    const request = await authorize(config, PUB_CB);
    const consent = await signInThrough(browser, request.url, node.url, 'alice', 'correct horse battery');
    // Not trusted: Tessera asks the user; the form may post to Tessera and then redirect to
    // the verified redirect_uri, which the page's CSP allows (form-action).
    expect(consent.hop.status).toBe(200);
    expect(consent.hop.body).toContain('Public RP');
    expect(consent.hop.headers.get('content-security-policy')).toContain(`form-action 'self' http://127.0.0.1:8765`);
    const allowed = await browser.follow(`${node.url}/oidc/consent`, node.url, { ...formFields(consent.hop.body), decision: 'allow' });
    expect(allowed.hop.location!.startsWith(`${PUB_CB}?`)).toBe(true);
    const tokens = await client.authorizationCodeGrant(config, new URL(allowed.hop.location!), { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true });
    expect(JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()).alg).toBe('EdDSA');
    expect(tokens.claims()!.sub).toBe(userId);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(await client.fetchUserInfo(config, refreshed.access_token, userId)).toMatchObject({ sub: userId });

    // Second authorization in the same browser: no login, no consent — straight to the client.
    const again = await authorize(config, PUB_CB);
    const second = await browser.follow(again.url, node.url);
    expect(second.hop.status).toBe(303);
    expect(second.hop.location!.startsWith(`${PUB_CB}?`)).toBe(true);
    const next = await client.authorizationCodeGrant(config, new URL(second.hop.location!), { pkceCodeVerifier: again.verifier, expectedState: again.state, expectedNonce: again.nonce });
    expect(next.claims()!.sid).toBe(tokens.claims()!.sid);

    // prompt=consent shows the page again even though consent was given.
    const forced = await authorize(config, PUB_CB, { prompt: 'consent' });
    expect((await browser.follow(forced.url, node.url)).hop.body).toContain('Allow');
  });

  it('RP-initiated logout by the public client (openid-client buildEndSessionUrl: id_token_hint, post_logout_redirect_uri, state) ends the Tessera session everywhere', async () => {
    const pubConfig = await discover(pub.clientId, client.None(), { id_token_signed_response_alg: 'EdDSA' });
    const confConfig = await discover(conf.clientId, client.ClientSecretBasic(conf.clientSecret));
    const browser = new Browser();
    // The public client signs the user in (consent was given in an earlier test; prompt=none
    // is not used: the login page is walked), then the confidential one joins the same session.
    const request = await authorize(pubConfig, PUB_CB);
    let landed = await signInThrough(browser, request.url, node.url, 'alice', 'correct horse battery');
    if (landed.hop.status === 200) landed = await browser.follow(`${node.url}/oidc/consent`, node.url, { ...formFields(landed.hop.body), decision: 'allow' });
    const pubTokens = await client.authorizationCodeGrant(pubConfig, new URL(landed.hop.location!), { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true });
    const sid = pubTokens.claims()!.sid as string;
    const confRequest = await authorize(confConfig, CONF_CB);
    const confBack = await browser.follow(confRequest.url, node.url);
    const confTokens = await client.authorizationCodeGrant(confConfig, new URL(confBack.hop.location!), { pkceCodeVerifier: confRequest.verifier, expectedState: confRequest.state, expectedNonce: confRequest.nonce });
    expect(confTokens.claims()!.sid).toBe(sid);
    const cookie = browser.cookie(node.url, 'tessera_session')!;
    // A second device of alice's: a session of its own, which this logout must leave alone.
    const otherDevice = new Browser();
    const form = await otherDevice.request('GET', `${node.url}/login`);
    await otherDevice.request('POST', `${node.url}/login`, { ...formFields(form.body), username: 'alice', password: 'correct horse battery' });
    const otherCookie = otherDevice.cookie(node.url, 'tessera_session')!;

    const logoutUrl = client.buildEndSessionUrl(pubConfig, { id_token_hint: pubTokens.id_token!, post_logout_redirect_uri: PUB_BYE, state: 'pub-bye' });
    expect(logoutUrl.searchParams.get('client_id')).toBe(pub.clientId);
    const out = await browser.request('GET', logoutUrl.toString());
    expect(out.status).toBe(303);
    expect(out.location).toBe(`${PUB_BYE}?state=pub-bye`);
    expect(browser.cookie(node.url, 'tessera_session')).toBeUndefined();

    // Ended everywhere: Tessera's own API (whoami with the session token, the admin's list of
    // alice's sessions), the public client's grants, the confidential client's grants (refresh,
    // userinfo, introspection), and the confidential client hears of it back-channel.
    expect((await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${cookie}` } })).status).toBe(401);
    const listed = await node.admin<{ sessions: Array<{ handle?: string; id?: string }> }>('GET', `/users/${userId}/sessions`);
    expect(listed.body.sessions.map((s) => s.handle ?? s.id)).not.toContain(sid);
    await expect(client.refreshTokenGrant(pubConfig, pubTokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(client.fetchUserInfo(pubConfig, pubTokens.access_token, userId)).rejects.toMatchObject({ status: 401 });
    await expect(client.refreshTokenGrant(confConfig, confTokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(client.fetchUserInfo(confConfig, confTokens.access_token, userId)).rejects.toMatchObject({ status: 401 });
    expect(await client.tokenIntrospection(confConfig, confTokens.access_token)).toMatchObject({ active: false });
    expect(await client.tokenIntrospection(confConfig, pubTokens.access_token)).toMatchObject({ active: false });
    await waitFor(() => receiver.received.some((r) => r.claims.sid === sid), 'the back-channel logout of the session the public client ended', 30_000);
    expect(receiver.rejected).toEqual([]);
    // The same browser is asked to sign in again by either client (no session, prompt=none).
    const again = await authorize(pubConfig, PUB_CB, { prompt: 'none' });
    const refused = await browser.follow(again.url, node.url);
    expect(new URL(refused.hop.location!).searchParams.get('error')).toBe('login_required');
    // "Everywhere" is this session in every app, not the user's other devices.
    expect((await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${otherCookie}` } })).status).toBe(200);
  });

  it('prompt=none with a session answers with a code and no page; prompt=login shows the login form again and issues a fresh auth_time', async () => {
    const config = await discover(conf.clientId, client.ClientSecretPost(conf.clientSecret));
    const browser = new Browser();
    const first = await authorize(config, CONF_CB);
    const signedIn = await signInThrough(browser, first.url, node.url, 'alice', 'correct horse battery');
    const t1 = await client.authorizationCodeGrant(config, new URL(signedIn.hop.location!), { pkceCodeVerifier: first.verifier, expectedState: first.state, expectedNonce: first.nonce });

    const silent = await authorize(config, CONF_CB, { prompt: 'none' });
    const quiet = await browser.follow(silent.url, node.url);
    expect(quiet.hop.location!.startsWith(`${CONF_CB}?code=`)).toBe(true);
    await client.authorizationCodeGrant(config, new URL(quiet.hop.location!), { pkceCodeVerifier: silent.verifier, expectedState: silent.state, expectedNonce: silent.nonce });

    // auth_time has one-second resolution: wait until the clock is past the first one.
    await waitFor(() => Math.floor(Date.now() / 1000) > t1.claims()!.auth_time!, 'the next second');
    const again = await authorize(config, CONF_CB, { prompt: 'login' });
    const loginPage = await browser.follow(again.url, node.url);
    expect(loginPage.url.startsWith(`${node.url}/login`)).toBe(true);
    expect(loginPage.hop.body).toContain('name="password"');
    const back = await browser.follow(`${node.url}/login`, node.url, { ...formFields(loginPage.hop.body), username: 'alice', password: 'correct horse battery' });
    const t2 = await client.authorizationCodeGrant(config, new URL(back.hop.location!), { pkceCodeVerifier: again.verifier, expectedState: again.state, expectedNonce: again.nonce });
    expect(t2.claims()!.auth_time!).toBeGreaterThan(t1.claims()!.auth_time!);

    // max_age is honoured by openid-client's auth_time check; Tessera asks for a new login
    // when the session is older (here: max_age=0 after a second).
    await waitFor(() => Math.floor(Date.now() / 1000) > t2.claims()!.auth_time!, 'the next second');
    const aged = await authorize(config, CONF_CB, { max_age: '0', prompt: 'none' });
    const refused = await browser.follow(aged.url, node.url);
    expect(new URL(refused.hop.location!).searchParams.get('error')).toBe('login_required');
  });

  it('end_session without a hint asks for confirmation (CSRF-protected), then ends the session and redirects to the registered URI', async () => {
    const config = await discover(conf.clientId, client.ClientSecretBasic(conf.clientSecret));
    const browser = new Browser();
    const request = await authorize(config, CONF_CB);
    const signedIn = await signInThrough(browser, request.url, node.url, 'alice', 'correct horse battery');
    const tokens = await client.authorizationCodeGrant(config, new URL(signedIn.hop.location!), { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });

    const url = client.buildEndSessionUrl(config, { client_id: conf.clientId, post_logout_redirect_uri: CONF_BYE, state: 's1' });
    const page = await browser.request('GET', url.toString());
    expect(page.status).toBe(200);
    expect(page.body).toContain('Sign out');
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self' https://rp-conf.example");
    // The session is still there until the user confirms.
    expect((await client.fetchUserInfo(config, tokens.access_token, userId)).sub).toBe(userId);
    // A forged confirmation (no CSRF cookie: another site's form) changes nothing.
    const forged = await fetch(`${node.url}/oidc/logout/confirm`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tessera_session=${browser.cookie(node.url, 'tessera_session')}` }, body: new URLSearchParams({ ...formFields(page.body), csrf: 'x'.repeat(32) }).toString() });
    expect(forged.status).toBe(403);
    expect((await client.fetchUserInfo(config, tokens.access_token, userId)).sub).toBe(userId);

    const done = await browser.request('POST', `${node.url}/oidc/logout/confirm`, formFields(page.body));
    expect(done.status).toBe(303);
    expect(done.location).toBe(`${CONF_BYE}?state=s1`);
    await expect(client.fetchUserInfo(config, tokens.access_token, userId)).rejects.toMatchObject({ status: 401 });
  });
});

describe('a fresh Tessera publishes every advertised ID token algorithm', () => {
  let node: OidcNode;
  beforeAll(async () => {
    node = await startOidcNode();
  });
  afterAll(async () => node?.close());

  it('before any client registered, the JWKS has EdDSA, ES256 and RS256 keys; an ES256 client validates its ID token with openid-client', async () => {
    const meta = (await (await fetch(`${node.url}/.well-known/openid-configuration`)).json()) as { id_token_signing_alg_values_supported: string[]; jwks_uri: string };
    const jwks = (await (await fetch(meta.jwks_uri)).json()) as { keys: Array<{ alg: string; kid: string; kty: string; crv?: string }> };
    expect(new Set(jwks.keys.map((k) => k.alg))).toEqual(new Set(meta.id_token_signing_alg_values_supported));
    expect(new Set(meta.id_token_signing_alg_values_supported)).toEqual(new Set(['EdDSA', 'ES256', 'RS256']));
    expect(jwks.keys.find((k) => k.alg === 'ES256')).toMatchObject({ kty: 'EC', crv: 'P-256' });

    const userId = await node.createUser('carol', 'correct horse battery');
    const es = await node.createClient({ client_name: 'ES256 RP', trusted: true, redirect_uris: ['https://rp-es.example/cb'], id_token_signed_response_alg: 'ES256' });
    // The client insists on ES256: openid-client refuses an ID token signed otherwise.
    const config = await client.discovery(new URL(node.url), es.clientId, { id_token_signed_response_alg: 'ES256' }, client.ClientSecretBasic(es.clientSecret), { execute: [client.allowInsecureRequests] });
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: 'https://rp-es.example/cb', scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'es', nonce });
    const { hop } = await signInThrough(new Browser(), url.toString(), node.url, 'carol', 'correct horse battery');
    const tokens = await client.authorizationCodeGrant(config, new URL(hop.location!), { pkceCodeVerifier: verifier, expectedState: 'es', expectedNonce: nonce, idTokenExpected: true });
    const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()) as { alg: string; kid: string };
    expect(header.alg).toBe('ES256');
    // Signed with a key that was in the JWKS fetched before the client existed.
    expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
    expect(tokens.claims()).toMatchObject({ sub: userId, aud: es.clientId, nonce });
    // A client that expects RS256 refuses this ES256 token: the check above is real.
    const strictRs = await client.discovery(new URL(node.url), es.clientId, { id_token_signed_response_alg: 'RS256' }, client.ClientSecretBasic(es.clientSecret), { execute: [client.allowInsecureRequests] });
    const again = client.buildAuthorizationUrl(strictRs, { redirect_uri: 'https://rp-es.example/cb', scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'rs' });
    const second = await signInThrough(new Browser(), again.toString(), node.url, 'carol', 'correct horse battery');
    await expect(client.authorizationCodeGrant(strictRs, new URL(second.hop.location!), { pkceCodeVerifier: verifier, expectedState: 'rs' })).rejects.toMatchObject({ code: 'OAUTH_INVALID_RESPONSE', cause: { message: 'unexpected JWT "alg" header parameter' } });
  });
});
