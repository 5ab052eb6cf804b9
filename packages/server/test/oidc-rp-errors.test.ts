// Bad input at the OpenID Provider as a real relying party meets it: openid-client 6 (panva's
// certified RP library) against a listening Tessera over real HTTP, the hosted login page
// driven with a cookie jar. Each case gets the error the specs name, never a 5xx, and nothing
// is ever sent to a redirect URI that was not verified first. The node's clock is a manual
// one started at the real time, so a code expires by moving it, not by waiting.
// (oidc-errors.test.ts keeps, in process, what openid-client cannot send: malformed and
// repeated parameters, garbage bodies, client authentication mistakes.)
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formFields, signInThrough, startClockedNode, startOidcNode, type ClockedNode, type Hop, type OidcNode } from './oidc-support.js';

const PASSWORD = 'correct horse battery';
const CB = 'https://rp-conf.example/cb';
const BYE = 'https://rp-conf.example/bye';
const PUB_CB = 'http://127.0.0.1:8765/callback';
const PUB_BYE = 'http://127.0.0.1:8765/bye';
const OTHER_CB = 'https://rp-other.example/cb';
const OTHER_BYE = 'https://rp-other.example/bye';

interface Rp {
  id: { clientId: string; clientSecret: string };
  config: client.Configuration;
  callback: string;
}

/** A Tessera error page: HTML, a 4xx, no Location at all (nothing sent to the client). */
function expectErrorPage(hop: Hop, text: RegExp): void {
  expect(hop.status, hop.body.slice(0, 200)).toBe(400);
  expect(hop.location).toBeNull();
  expect(hop.headers.get('content-type')).toContain('text/html');
  expect(hop.body).toMatch(text);
}

describe('OpenID Provider bad input, met by openid-client over real HTTP', () => {
  let node: ClockedNode;
  let conf: Rp;
  let pub: Rp;
  let other: Rp;
  let userId: string;

  const discover = (id: { clientId: string; clientSecret: string }, auth: client.ClientAuth) =>
    client.discovery(new URL(node.url), id.clientId, undefined, auth, { execute: [client.allowInsecureRequests] });

  // Every response any party (openid-client, the browser, the admin calls) got in this file:
  // none may be a 5xx.
  const serverErrors: string[] = [];
  const realFetch = globalThis.fetch;

  beforeAll(async () => {
    globalThis.fetch = async (input, init) => {
      const response = await realFetch(input, init);
      if (response.status >= 500) serverErrors.push(`${init?.method ?? 'GET'} ${String(input instanceof Request ? input.url : input)} → ${response.status}`);
      return response;
    };
    node = await startClockedNode();
    userId = await node.createUser('alice', PASSWORD, { email: 'alice@example.test', email_verified: true });
    await node.createUser('bob', PASSWORD);
    const confId = await node.createClient({ client_name: 'Conf RP', trusted: true, redirect_uris: [CB], post_logout_redirect_uris: [BYE] });
    const pubId = await node.createClient({ client_name: 'Public RP', trusted: true, redirect_uris: [PUB_CB], post_logout_redirect_uris: [PUB_BYE], token_endpoint_auth_method: 'none' });
    const otherId = await node.createClient({ client_name: 'Other RP', trusted: true, redirect_uris: [OTHER_CB], post_logout_redirect_uris: [OTHER_BYE] });
    conf = { id: confId, config: await discover(confId, client.ClientSecretBasic(confId.clientSecret)), callback: CB };
    pub = { id: pubId, config: await discover(pubId, client.None()), callback: PUB_CB };
    other = { id: otherId, config: await discover(otherId, client.ClientSecretPost(otherId.clientSecret)), callback: OTHER_CB };
  });
  afterAll(async () => {
    globalThis.fetch = realFetch;
    await node?.close();
  });

  /** An authorization request as openid-client builds it (PKCE S256, state, nonce). */
  async function begin(rp: Rp, extra: Record<string, string> = {}) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(rp.config, { redirect_uri: rp.callback, scope: 'openid email', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce, ...extra });
    return { url: url.toString(), verifier, state, nonce };
  }

  /** Signs alice in through the hosted login page; returns the callback URL the browser was sent to. */
  async function callbackOf(rp: Rp, browser: Browser, request: { url: string }, username = 'alice'): Promise<URL> {
    const { hop } = await signInThrough(browser, request.url, node.url, username, PASSWORD);
    expect(hop.status).toBe(303);
    expect(hop.location!.startsWith(`${rp.callback}?`)).toBe(true);
    return new URL(hop.location!);
  }

  /** A fresh browser signed in to `rp`, and the tokens openid-client got for it. */
  async function signedIn(rp: Rp) {
    const browser = new Browser();
    const request = await begin(rp);
    const tokens = await client.authorizationCodeGrant(rp.config, await callbackOf(rp, browser, request), { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
    return { browser, tokens, cookie: browser.cookie(node.url, 'tessera_session')! };
  }

  const whoami = async (cookie: string) => (await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${cookie}` } })).status;

  describe('authorization endpoint', () => {
    it('a wrong redirect_uri gets a Tessera error page, never a redirect: signed in or not, look-alikes, another client\'s URI', async () => {
      const signed = await signedIn(conf);
      for (const browser of [new Browser(), signed.browser]) {
        for (const wrong of ['https://evil.example/cb', `${CB}/`, `${CB}?x=1`, 'https://RP-conf.example/cb', 'https://rp-conf.example.evil.example/cb', 'http://rp-conf.example/cb', OTHER_CB]) {
          const request = await begin({ ...conf, callback: wrong });
          const { hop, url } = await browser.follow(request.url, node.url);
          // The first hop already: no login page in between that could end elsewhere.
          expect(url).toBe(request.url);
          expectErrorPage(hop, /return address \(redirect_uri\)/);
        }
      }
      // An unknown client, and a request without redirect_uri, likewise.
      const unknown = new URL((await begin(conf)).url);
      unknown.searchParams.set('client_id', 'app_nobody');
      expectErrorPage((await new Browser().request('GET', unknown.toString())), /not registered/);
      const missing = new URL((await begin(conf)).url);
      missing.searchParams.delete('redirect_uri');
      expectErrorPage((await new Browser().request('GET', missing.toString())), /redirect_uri/);
    });

    it('prompt=none without a session: login_required to the redirect_uri with iss (RFC 9207), which openid-client checks', async () => {
      for (const rp of [conf, pub]) {
        const request = await begin(rp, { prompt: 'none' });
        const { hop } = await new Browser().follow(request.url, node.url);
        expect(hop.status).toBe(303);
        const back = new URL(hop.location!);
        expect(`${back.origin}${back.pathname}`).toBe(rp.callback);
        expect(back.searchParams.get('iss')).toBe(node.url);
        expect(back.searchParams.get('code')).toBeNull();
        // openid-client validates iss and state before it reports the error the OP sent.
        const failure = await client.authorizationCodeGrant(rp.config, back, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce }).catch((e: unknown) => e);
        expect(failure).toBeInstanceOf(client.AuthorizationResponseError);
        expect(failure).toMatchObject({ error: 'login_required', cause: expect.any(URLSearchParams) });
        // The same response with another iss is refused as a mix-up, before any error is read.
        const mixedUp = new URL(back);
        mixedUp.searchParams.set('iss', 'https://other-issuer.example');
        const refused = await client.authorizationCodeGrant(rp.config, mixedUp, { pkceCodeVerifier: request.verifier, expectedState: request.state }).catch((e: unknown) => e);
        expect(refused).not.toBeInstanceOf(client.AuthorizationResponseError);
        expect(refused).toMatchObject({ code: 'OAUTH_INVALID_RESPONSE', cause: { message: 'unexpected "iss" (issuer) response parameter value' } });
        // And without iss (a response stripped of it) too: the OP advertises that it sends it.
        const stripped = new URL(back);
        stripped.searchParams.delete('iss');
        const missing = await client.authorizationCodeGrant(rp.config, stripped, { pkceCodeVerifier: request.verifier, expectedState: request.state }).catch((e: unknown) => e);
        expect(missing).toMatchObject({ code: 'OAUTH_INVALID_RESPONSE', cause: { message: 'response parameter "iss" (issuer) missing' } });
      }
    });

    it('a public client without PKCE: invalid_request to its verified redirect_uri, as openid-client reports it', async () => {
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(pub.config, { redirect_uri: PUB_CB, scope: 'openid', state });
      const { hop } = await new Browser().follow(url.toString(), node.url);
      const failure = await client.authorizationCodeGrant(pub.config, new URL(hop.location!), { expectedState: state }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(client.AuthorizationResponseError);
      expect(failure).toMatchObject({ error: 'invalid_request' });
    });
  });

  describe('token endpoint', () => {
    it('a wrong or missing PKCE verifier: invalid_grant (confidential and public); the code is not spent, the right verifier still works', async () => {
      for (const rp of [conf, pub]) {
        const browser = new Browser();
        const request = await begin(rp);
        const back = await callbackOf(rp, browser, request);
        for (const verifier of [client.randomPKCECodeVerifier(), undefined]) {
          const failure = await client.authorizationCodeGrant(rp.config, back, { ...(verifier ? { pkceCodeVerifier: verifier } : {}), expectedState: request.state, expectedNonce: request.nonce }).catch((e: unknown) => e);
          expect(failure).toBeInstanceOf(client.ResponseBodyError);
          expect(failure).toMatchObject({ error: 'invalid_grant', status: 400 });
        }
        const tokens = await client.authorizationCodeGrant(rp.config, back, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
        expect(tokens.claims()!.sub).toBe(userId);
      }
    });

    it('code replay: invalid_grant, and what the first use issued is revoked (refresh fails, introspection inactive, userinfo 401); the session goes on', async () => {
      for (const rp of [conf, pub]) {
        const browser = new Browser();
        const request = await begin(rp);
        const back = await callbackOf(rp, browser, request);
        const checks = { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce };
        const first = await client.authorizationCodeGrant(rp.config, back, checks);
        expect(await client.fetchUserInfo(rp.config, first.access_token, userId)).toMatchObject({ sub: userId });
        const replay = await client.authorizationCodeGrant(rp.config, back, checks).catch((e: unknown) => e);
        expect(replay).toBeInstanceOf(client.ResponseBodyError);
        expect(replay).toMatchObject({ error: 'invalid_grant', status: 400 });

        await expect(client.refreshTokenGrant(rp.config, first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
        await expect(client.fetchUserInfo(rp.config, first.access_token, userId)).rejects.toMatchObject({ status: 401 });
        // Introspection is for confidential clients: the confidential one asks about its own
        // token, and about the public one's.
        expect(await client.tokenIntrospection(conf.config, first.access_token)).toMatchObject({ active: false });
        // The browser did nothing wrong: its Tessera session goes on.
        expect(await whoami(browser.cookie(node.url, 'tessera_session')!)).toBe(200);
      }
    });

    it('two concurrent redemptions of one code: exactly one gets tokens, the other invalid_grant, and the winner\'s tokens are revoked', async () => {
      for (let round = 0; round < 3; round++) {
        const browser = new Browser();
        const request = await begin(conf);
        const back = await callbackOf(conf, browser, request);
        const checks = { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce };
        const outcomes = await Promise.allSettled([client.authorizationCodeGrant(conf.config, back, checks), client.authorizationCodeGrant(conf.config, back, checks)]);
        const won = outcomes.filter((o): o is PromiseFulfilledResult<Awaited<ReturnType<typeof client.authorizationCodeGrant>>> => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toMatchObject({ error: 'invalid_grant', status: 400 });
        const winner = won[0]!.value;
        await expect(client.refreshTokenGrant(conf.config, winner.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
        expect(await client.tokenIntrospection(conf.config, winner.access_token)).toMatchObject({ active: false });
        await expect(client.fetchUserInfo(conf.config, winner.access_token, userId)).rejects.toMatchObject({ status: 401 });
      }
    });

    it('a code used by another client: invalid_grant, not spent (the client it was issued to still redeems it)', async () => {
      const browser = new Browser();
      const request = await begin(conf);
      const back = await callbackOf(conf, browser, request);
      // The other client presents the code with the redirect_uri it was issued for.
      const failure = await client.authorizationCodeGrant(other.config, back, { pkceCodeVerifier: request.verifier, expectedState: request.state }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(client.ResponseBodyError);
      expect(failure).toMatchObject({ error: 'invalid_grant', status: 400 });
      // A public client (no secret) trying it fares no better.
      expect(await client.authorizationCodeGrant(pub.config, back, { pkceCodeVerifier: request.verifier, expectedState: request.state }).catch((e: unknown) => e)).toMatchObject({ error: 'invalid_grant' });
      const tokens = await client.authorizationCodeGrant(conf.config, back, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
      expect(tokens.claims()!.aud).toBe(conf.id.clientId);
    });

    it('an expired code: invalid_grant', async () => {
      const browser = new Browser();
      const request = await begin(conf);
      const back = await callbackOf(conf, browser, request);
      const before = node.clock.now();
      // One millisecond short of the code's lifetime it would still work (checked below with a
      // second code); at the lifetime it is expired.
      node.clock.advance(60_000);
      try {
        const failure = await client.authorizationCodeGrant(conf.config, back, { pkceCodeVerifier: request.verifier, expectedState: request.state }).catch((e: unknown) => e);
        expect(failure).toBeInstanceOf(client.ResponseBodyError);
        expect(failure).toMatchObject({ error: 'invalid_grant', status: 400, error_description: expect.stringMatching(/expired/) });
      } finally {
        node.clock.set(before);
      }
      const fresh = await begin(conf);
      const freshBack = await callbackOf(conf, browser, fresh);
      node.clock.advance(59_999);
      try {
        const tokens = await client.authorizationCodeGrant(conf.config, freshBack, { pkceCodeVerifier: fresh.verifier, expectedState: fresh.state, expectedNonce: fresh.nonce });
        expect(tokens.access_token).toEqual(expect.any(String));
      } finally {
        node.clock.set(before);
      }
    });
  });

  describe('end_session endpoint', () => {
    it('an unregistered post_logout_redirect_uri: Tessera error page, no redirect, the session goes on', async () => {
      for (const rp of [conf, pub]) {
        const { browser, tokens, cookie } = await signedIn(rp);
        for (const wrong of ['https://evil.example/bye', `${rp === conf ? BYE : PUB_BYE}/`, OTHER_BYE, `${rp === conf ? BYE : PUB_BYE}?x=1`]) {
          const url = client.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: wrong, state: 'st' });
          expectErrorPage(await browser.request('GET', url.toString()), /post_logout_redirect_uri/);
        }
        expect(await whoami(cookie)).toBe(200);
        expect(await client.fetchUserInfo(rp.config, tokens.access_token, userId)).toMatchObject({ sub: userId });
      }
    });

    it('an id_token_hint from another issuer (another Tessera): Tessera error page, no redirect, the session goes on', async () => {
      const foreign: OidcNode = await startOidcNode();
      try {
        await foreign.createUser('alice', PASSWORD);
        // The same client id would not help: register under the other issuer and sign in there.
        const id = await foreign.createClient({ client_name: 'Conf RP elsewhere', trusted: true, redirect_uris: [CB], post_logout_redirect_uris: [BYE] });
        const config = await client.discovery(new URL(foreign.url), id.clientId, undefined, client.ClientSecretBasic(id.clientSecret), { execute: [client.allowInsecureRequests] });
        const verifier = client.randomPKCECodeVerifier();
        const url = client.buildAuthorizationUrl(config, { redirect_uri: CB, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'x' });
        const { hop } = await signInThrough(new Browser(), url.toString(), foreign.url, 'alice', PASSWORD);
        const elsewhere = await client.authorizationCodeGrant(config, new URL(hop.location!), { pkceCodeVerifier: verifier, expectedState: 'x' });

        const { browser, cookie } = await signedIn(conf);
        const variants: Array<Record<string, string>> = [{ id_token_hint: elsewhere.id_token!, post_logout_redirect_uri: BYE, state: 'st' }, { id_token_hint: elsewhere.id_token!, client_id: conf.id.clientId, post_logout_redirect_uri: BYE }, { id_token_hint: elsewhere.id_token! }];
        for (const params of variants) {
          const logout = client.buildEndSessionUrl(conf.config, params);
          expectErrorPage(await browser.request('GET', logout.toString()), /not issued by this Tessera/);
        }
        expect(await whoami(cookie)).toBe(200);
      } finally {
        await foreign.close();
      }
    });
  });

  describe('login_hint and logout_hint', () => {
    it('login_hint pre-fills the username of the hosted login form, escaped; an invalid one is dropped', async () => {
      const request = await begin(conf, { login_hint: 'alice' });
      const page = (await new Browser().follow(request.url, node.url)).hop;
      expect(page.status).toBe(200);
      expect(page.body).toMatch(/<input id="username" name="username"[^>]* value="alice">/);
      // Markup in a hint is shown as text, never as markup.
      const markup = await begin(conf, { login_hint: '"><script>alert(1)</script>' });
      const escaped = (await new Browser().follow(markup.url, node.url)).hop.body;
      expect(escaped).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
      expect(escaped).not.toContain('<script>alert(1)');
      // A hint no stored name can hold (a bidirectional override) is dropped, not shown.
      const bidi = await begin(conf, { login_hint: 'admin\u202Enimda' });
      const dropped = (await new Browser().follow(bidi.url, node.url)).hop;
      expect(dropped.status).toBe(200);
      expect(dropped.body).toMatch(/<input id="username" name="username"[^>]* value="">/);
      // The hint fills in a field, it proves nothing: signing in as bob gives bob's tokens.
      const browser = new Browser();
      const asBob = await begin(conf, { login_hint: 'alice' });
      const first = await browser.follow(asBob.url, node.url);
      const back = await browser.follow(`${node.url}/login`, node.url, { ...formFields(first.hop.body), username: 'bob', password: PASSWORD });
      const tokens = await client.authorizationCodeGrant(conf.config, new URL(back.hop.location!), { pkceCodeVerifier: asBob.verifier, expectedState: asBob.state, expectedNonce: asBob.nonce });
      expect(tokens.claims()!.sub).not.toBe(userId);
    });

    it('logout_hint naming the id_token_hint\'s user (username, email, sub or sid) ends the session at once', async () => {
      for (const pick of [() => 'alice', () => 'ALICE@example.test', (sub: string) => sub, (_sub: string, sid: string) => sid]) {
        const { browser, tokens, cookie } = await signedIn(pub);
        const claims = tokens.claims()!;
        const url = client.buildEndSessionUrl(pub.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: PUB_BYE, state: 's', logout_hint: pick(claims.sub, claims.sid as string) });
        const out = await browser.request('GET', url.toString());
        expect(out.status).toBe(303);
        expect(out.location).toBe(`${PUB_BYE}?state=s`);
        expect(await whoami(cookie)).toBe(401);
      }
    });

    it('logout_hint naming someone else: the user confirms (a page that says so) instead of a silent end; confirming ends the browser\'s session', async () => {
      const { browser, tokens, cookie } = await signedIn(conf);
      for (const hint of ['bob', 'nobody-at-all', 'x'.repeat(300)]) {
        const url = client.buildEndSessionUrl(conf.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE, state: 's', logout_hint: hint });
        const page = await browser.request('GET', url.toString());
        expect(page.status).toBe(200);
        expect(page.location).toBeNull();
        expect(page.body).toContain('action="/oidc/logout/confirm"');
        expect(page.body).toContain('another account than the one signed in here');
        expect(page.body).not.toContain(hint);
        expect(await whoami(cookie)).toBe(200);
      }
      // Without an id_token_hint, a logout_hint naming another user than the browser's is said too.
      const noHint = client.buildEndSessionUrl(conf.config, { client_id: conf.id.clientId, post_logout_redirect_uri: BYE, logout_hint: 'bob' });
      const page = await browser.request('GET', noHint.toString());
      expect(page.body).toContain('another account than the one signed in here');
      const done = await browser.request('POST', `${node.url}/oidc/logout/confirm`, formFields(page.body));
      expect(done.status).toBe(303);
      expect(done.location).toBe(BYE);
      expect(await whoami(cookie)).toBe(401);
    });
  });

  it('no request of this file was answered with a 5xx', () => {
    expect(serverErrors).toEqual([]);
  });
});
