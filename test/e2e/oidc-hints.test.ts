// login_hint and logout_hint in a real browser (Chromium), with openid-client as the relying
// party: the hosted login form opens with the hinted username filled in, the user signs in
// and lands at the client's redirect URI with a code; an RP-initiated logout whose
// logout_hint names another account stops at the confirmation page, which says so, and
// confirming ends the session and lands at the registered post-logout URI. Any CSP
// violation in the console fails the test (support/chromium.ts).
import { createServer, type Server } from 'node:http';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOidcNode, type OidcNode } from '../../packages/server/test/oidc-support.js';
import { findChromium, launchChromium, type TestBrowser } from './support/chromium.js';

const chromium = findChromium();
const PASSWORD = 'correct horse battery staple';

describe.skipIf(chromium.skip !== null)('OIDC login_hint and logout_hint in Chromium', () => {
  let node: OidcNode;
  let rp: Server;
  let rpUrl: string;
  let browser: TestBrowser;
  let config: client.Configuration;

  beforeAll(async () => {
    node = await startOidcNode();
    await node.createUser('alice', PASSWORD);
    await node.createUser('bob', PASSWORD);
    // The relying party's pages: a callback and a signed-out page, each a plain page.
    rp = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>rp</title><p>the relying party</p>'));
    await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
    rpUrl = `http://127.0.0.1:${(rp.address() as { port: number }).port}`;
    const id = await node.createClient({ client_name: 'Hinted RP', trusted: true, redirect_uris: [`${rpUrl}/cb`], post_logout_redirect_uris: [`${rpUrl}/bye`] });
    config = await client.discovery(new URL(node.url), id.clientId, undefined, client.ClientSecretBasic(id.clientSecret), { execute: [client.allowInsecureRequests] });
    browser = await launchChromium(chromium.path!, import.meta.url);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (rp ? rp.close(() => resolve()) : resolve()));
    await node?.close();
  });

  it('pre-fills the login form from login_hint; a logout_hint naming someone else asks for confirmation, which ends the session', async () => {
    const s = await browser.newSession('login hint and logout hint');
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: `${rpUrl}/cb`, scope: 'openid profile', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'st', nonce, login_hint: 'alice' });
    await s.page.goto(url.toString());
    expect(new URL(s.page.url()).pathname).toBe('/login');
    expect(await s.page.inputValue('#username')).toBe('alice');
    await s.step('login form, username from login_hint');
    await s.page.fill('#password', PASSWORD);
    await Promise.all([s.page.waitForURL(`${rpUrl}/cb?**`), s.page.click('button[type=submit]')]);
    const tokens = await client.authorizationCodeGrant(config, new URL(s.page.url()), { pkceCodeVerifier: verifier, expectedState: 'st', expectedNonce: nonce });
    expect(tokens.claims()!.preferred_username).toBe('alice');
    const cookie = (await s.cookies(node.url)).find((c) => c.name === 'tessera_session')!.value;
    const whoami = async () => (await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${cookie}` } })).status;
    expect(await whoami()).toBe(200);

    // The app says bob is signing out, but the ID token and the browser are alice's.
    const logout = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${rpUrl}/bye`, state: 'bye', logout_hint: 'bob' });
    await s.page.goto(logout.toString());
    expect(new URL(s.page.url()).pathname).toBe('/oidc/logout');
    expect(await s.page.textContent('body')).toContain('another account than the one signed in here');
    expect(await s.page.textContent('body')).toContain('alice');
    await s.step('logout confirmation, the hint names another account');
    expect(await whoami()).toBe(200);
    await Promise.all([s.page.waitForURL(`${rpUrl}/bye?state=bye`), s.page.click('button[type=submit]')]);
    expect(await whoami()).toBe(401);
    await s.step('back at the relying party, signed out');
    await s.close();
  });
});
