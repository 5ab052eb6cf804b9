// The seed scenario with the real WordPress: Debian's WordPress 6.1 on PHP's built-in server
// and MariaDB, integrations/wordpress-plugin-tessera activated, a real Tessera node (its
// outbox delivering over real HTTP), the example forum (a stock OpenID Connect client), and
// Chromium. Sign in at WordPress through Tessera; the forum is on the same session; logging
// out of WordPress signs the forum out; ending the session at Tessera signs WordPress out; a
// late, retried user-wide logout ends only the sessions the revocation ended; and the
// back-channel endpoint refuses every bad token with 400 and ends nothing.
import { generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Response as BrowserResponse } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteStore } from '@tessera/store';
import { startForum } from '@tessera/example-forum';
import { findWordPress, PLUGIN_DIR, startWordPress, type RunningWordPress } from '../integrations/support/wordpress.js';
import { appSession, clickAndLand, openApp, signInWithOidc } from './support/app-pages.js';
import { BACKCHANNEL_EVENT, registerApp, startTesseraNode, waitFor, type DeliveryJson, type RegisteredApp, type TesseraNode } from './support/backchannel.js';
import { findChromium, launchChromium, type BrowserSession, type TestBrowser } from './support/chromium.js';
import { createCookieJar } from './support/cookie-jar.js';
import { findFreePort } from './support/free-port.js';

const wordpress = findWordPress();
const chromium = findChromium();
const PASSWORD = 'correct horse battery staple';
const WP_PASSWORD = 'wordpress password of alice';
const ADMIN_PASSWORD = 'wordpress password of the administrator';
const now = () => Math.floor(Date.now() / 1000);

interface Whoami {
  user: string | null;
  user_id: number;
  tessera_sid: string | null;
  sessions: number;
}

let node: TesseraNode;
let wp: RunningWordPress;
let wpApp: RegisteredApp;
let forumApp: RegisteredApp;
let forum: { url: string; close(): Promise<void> };
let aliceId: string;
let browser: TestBrowser;

describe.skipIf(wordpress.skip !== null || chromium.skip !== null)('WordPress with the Tessera plugin, for real', { timeout: 90_000 }, () => {
  const sessions: BrowserSession[] = [];
  const newSession = async (name: string) => {
    const s = await browser.newSession(name, { userAgent: `e2e ${name}` });
    sessions.push(s);
    await skipWordPressImages(s);
    return s;
  };

  beforeAll(async () => {
    node = await startTesseraNode({ outbox: { backoffBaseMs: 50, backoffMaxMs: 200, pollIntervalMs: 20, timeoutMs: 5_000 } });
    const wpPort = await findFreePort();
    const wpUrl = `http://127.0.0.1:${wpPort}`;
    // WordPress registers as Tessera's docs/wordpress.md says: trusted (no consent page), the
    // plugin's three URLs, ID (and logout) tokens in RS256, the default.
    wpApp = await registerApp(node.url, {
      name: 'WordPress',
      trusted: true,
      redirect_uris: [`${wpUrl}/wp-login.php?action=tessera_callback`],
      post_logout_redirect_uris: [`${wpUrl}/wp-login.php?loggedout=true`],
      backchannel_logout_uri: `${wpUrl}/wp-json/tessera/v1/backchannel-logout`,
    });
    // A client with ES256 ID tokens makes Tessera publish ES256 keys too (the bad-input tests
    // sign with each of the three algorithms).
    await registerApp(node.url, { name: 'es256 client', redirect_uris: ['http://127.0.0.1:1/cb'], id_token_signed_response_alg: 'ES256' });
    forumApp = await registerApp(node.url, { name: 'Example forum', trusted: true });
    forum = await startForum({ port: 0, tesseraUrl: node.url, clientId: forumApp.clientId, clientSecret: forumApp.clientSecret, log: () => {} });
    expect((await node.admin('PATCH', `/apps/${forumApp.clientId}`, {
      redirect_uris: [`${forum.url}/callback`], post_logout_redirect_uris: [`${forum.url}/`],
      backchannel_logout_uri: `${forum.url}/backchannel-logout`, backchannel_logout_session_required: true, id_token_signed_response_alg: 'EdDSA',
    })).status).toBe(200);
    // alice's address is verified at Tessera, and WordPress has an account with it: the
    // plugin links the two by email.
    const created = await node.admin<{ user: { id: string } }>('POST', '/users', { username: 'alice', email: 'alice@example.test', email_verified: true, password: PASSWORD });
    expect(created.status).toBe(201);
    aliceId = created.body.user.id;
    wp = await startWordPress({ port: wpPort, issuer: node.url, clientId: wpApp.clientId, clientSecret: wpApp.clientSecret, user: { login: 'alice', email: 'alice@example.test', password: WP_PASSWORD }, adminPassword: ADMIN_PASSWORD });
    browser = await launchChromium(chromium.path!, import.meta.url);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.allSettled([wp?.close(), forum?.close()]);
    await node?.close();
  });

  afterEach(async () => {
    wp?.setBackchannelDown(false);
    for (const s of sessions.splice(0)) await s.close();
  });

  /**
   * WordPress' images and fonts are not fetched (PHP's built-in server serves one file per
   * worker; the tests do not look at them). Styles and scripts load: WordPress' pages must
   * lay out and run as they do for people.
   */
  async function skipWordPressImages(s: BrowserSession): Promise<void> {
    await s.context.route((url) => url.origin === wp.url && /\.(png|jpe?g|gif|svg|webp|woff2?|ttf)$/.test(url.pathname), (route) => route.fulfill({ status: 204 }));
  }

  /** Who WordPress says this browser is (the test-only ?tessera_test_whoami). */
  async function whoami(s: BrowserSession): Promise<Whoami> {
    const response = await s.page.goto(`${wp.url}/?tessera_test_whoami=1`);
    return (await response!.json()) as Whoami;
  }

  /**
   * At WordPress' login page, presses "Sign in with Tessera"; fills Tessera's login form
   * when this browser has no Tessera session; lands back at WordPress, signed in (at the
   * test-only whoami URL, given as redirect_to: no theme page to render on the way).
   */
  async function signInAtWordPress(s: BrowserSession, label: string): Promise<Whoami> {
    const landing = `${wp.url}/?tessera_test_whoami=1`;
    await s.page.goto(`${wp.url}/wp-login.php?redirect_to=${encodeURIComponent(landing)}`);
    const button = s.page.getByRole('link', { name: 'Sign in with Tessera' });
    await s.step(`${label}: WordPress login page`);
    const landedOrLogin = s.page.waitForResponse((r) => r.request().isNavigationRequest() && r.status() === 200 && (r.url() === landing || new URL(r.url()).pathname === '/login'));
    await button.click();
    const stop = await landedOrLogin;
    if (stop.url() !== landing) {
      await s.page.getByLabel('Username or email').fill('alice');
      await s.page.getByLabel('Password').fill(PASSWORD);
      await s.step(`${label}: Tessera login form`);
      await clickAndLand(s.page, s.page.getByRole('button', { name: 'Sign in' }), landing, 20_000);
    }
    await s.page.waitForLoadState('load');
    await s.step(`${label}: back at WordPress`);
    const me = JSON.parse(await s.page.locator('body').innerText()) as Whoami;
    expect(me.user).toBe('alice');
    expect(me.tessera_sid).toMatch(/^ses_/);
    return me;
  }

  /** Signs in with WordPress' own password form (no Tessera session behind it). */
  async function passwordSignIn(s: BrowserSession, login = 'alice', password = WP_PASSWORD): Promise<void> {
    const landing = `${wp.url}/?tessera_test_whoami=1`;
    await s.page.goto(`${wp.url}/wp-login.php?redirect_to=${encodeURIComponent(landing)}`);
    await s.page.locator('#user_login').fill(login);
    await s.page.locator('#user_pass').fill(password);
    await clickAndLand(s.page, s.page.locator('#wp-submit'), landing, 20_000);
    expect(JSON.parse(await s.page.locator('body').innerText())).toMatchObject({ user: login, tessera_sid: null });
  }

  /**
   * Signs in with WordPress' password form over plain HTTP (a cookie jar, no browser: no page
   * to render), as a second device would. Returns a client that sends the jar's cookies.
   */
  async function httpPasswordSession(login = 'alice', password = WP_PASSWORD) {
    const jar = createCookieJar();
    const send = async (path: string, init: RequestInit = {}) => {
      const url = `${wp.url}${path}`;
      const response = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string> | undefined), cookie: jar.headerFor(url) } });
      jar.store(url, response.headers.getSetCookie());
      return response;
    };
    await send('/wp-login.php'); // WordPress' test cookie
    const posted = await send('/wp-login.php', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ log: login, pwd: password, 'wp-submit': 'Log In', testcookie: '1', redirect_to: `${wp.url}/` }).toString(),
    });
    expect(posted.status).toBe(302);
    const whoamiHttp = async () => (await (await send('/?tessera_test_whoami=1')).json()) as Whoami;
    expect(await whoamiHttp()).toMatchObject({ user: login, tessera_sid: null });
    return { send, whoami: whoamiHttp };
  }

  async function deliveriesOf(handle: string): Promise<DeliveryJson[]> {
    const { status, body } = await node.admin<{ deliveries: DeliveryJson[] }>('GET', `/sessions/${handle}/deliveries`);
    expect(status).toBe(200);
    return body.deliveries;
  }

  it('signs in at WordPress through Tessera; the forum is on the same session; logging out of WordPress signs the forum out', async () => {
    const s = await newSession('wordpress sign-in, forum, logout');
    const me = await signInAtWordPress(s, 'sign in at WordPress');
    // Linked by verified email to the account WordPress already had (user 2; 1 is the admin).
    expect(me.user_id).toBe(2);
    const handle = me.tessera_sid!;
    const { body: listed } = await node.admin<{ sessions: Array<{ handle: string; apps: Array<{ client_id: string }> }> }>('GET', `/users/${aliceId}/sessions`);
    expect(listed.sessions.map((x) => x.handle)).toEqual([handle]);
    expect(listed.sessions[0]!.apps.map((a) => a.client_id)).toContain(wpApp.clientId);
    expect(wp.log()).toContain(`[tessera] signin.ok user 2 signed in; Tessera user ${aliceId}, session ${handle}`);

    // The forum signs in on the same Tessera session without a password.
    const atForum = await signInWithOidc(s, `${forum.url}/`, 'alice', undefined, 'forum, same session');
    expect(atForum.stops).toEqual([]);
    expect(atForum.handle).toBe(handle);

    // WordPress' "Log Out" (from its admin bar): WordPress ends its session, sends the
    // browser to Tessera's end-session endpoint, which ends the Tessera session and sends
    // the browser back to WordPress' "logged out" page.
    await s.page.goto(`${wp.url}/`);
    // WordPress' own page says so too: its admin bar, with alice's name and "Log Out".
    await s.step('WordPress home, signed in');
    expect(await s.page.locator('#wpadminbar .display-name').first().innerText()).toBe('alice');
    const logoutUrl = (await s.page.locator('#wp-admin-bar-logout a').getAttribute('href'))!;
    expect(logoutUrl).toContain('action=logout');
    const hops: Array<[string, string, number]> = [];
    const onResponse = (r: BrowserResponse) => {
      if (r.request().isNavigationRequest()) hops.push([r.request().method(), r.url().split('?')[0]!, r.status()]);
    };
    s.page.on('response', onResponse);
    await s.page.goto(logoutUrl);
    s.page.off('response', onResponse);
    await s.step('logged out of WordPress');
    expect(hops).toEqual([
      ['GET', `${wp.url}/wp-login.php`, 302],
      ['GET', `${node.url}/oidc/logout`, 303],
      ['GET', `${wp.url}/wp-login.php`, 200],
    ]);
    expect(new URL(s.page.url()).searchParams.get('loggedout')).toBe('true');
    expect((await whoami(s)).user).toBeNull();

    // The forum's next request is signed out, and Tessera shows its delivery delivered.
    await expect.poll(() => openApp(s, `${forum.url}/`), { timeout: 15_000 }).toBeNull();
    await s.step('forum, signed out');
    const delivered = await waitFor('the forum\'s delivery delivered', async () => {
      const d = (await deliveriesOf(handle)).find((x) => x.client_id === forumApp.clientId);
      return d?.status === 'delivered' ? d : undefined;
    });
    expect(delivered.sid).toBe(handle);
    const { body: ended } = await node.admin<{ sessions: Array<{ handle: string; end_reason: string; ended_by: string }> }>('GET', `/users/${aliceId}/sessions?include_ended=true`);
    expect(ended.sessions.find((x) => x.handle === handle)).toMatchObject({ end_reason: 'logout', ended_by: `app:${wpApp.clientId}` });
    // WordPress' own delivery is delivered too (its session was already gone: nothing to end).
    await waitFor('WordPress\' delivery delivered', async () => ((await deliveriesOf(handle)).find((x) => x.client_id === wpApp.clientId)?.status === 'delivered' ? true : undefined));
    expect(wp.log()).toContain(`[tessera] logout.browser user 2: sending the browser to Tessera to end session ${handle}`);
  });

  it('ends the WordPress session when the session is ended at Tessera (admin API)', async () => {
    const s = await newSession('ended at tessera');
    const me = await signInAtWordPress(s, 'sign in again');
    const handle = me.tessera_sid!;
    expect((await node.admin('DELETE', `/sessions/${handle}`)).status).toBe(204);
    // WordPress' next request is signed out once the logout token has arrived.
    await waitFor('WordPress signed out', async () => ((await whoami(s)).user === null ? true : undefined), { timeoutMs: 15_000 });
    // And WordPress itself agrees: its admin sends the browser to the login page.
    await s.page.goto(`${wp.url}/wp-admin/`);
    expect(new URL(s.page.url()).pathname).toBe('/wp-login.php');
    await s.step('WordPress, signed out by Tessera');
    expect((await deliveriesOf(handle)).find((x) => x.client_id === wpApp.clientId)).toMatchObject({ status: 'delivered', sid: handle });
    expect(wp.log()).toMatch(new RegExp(`\\[tessera\\] backchannel\\.ok Tessera user ${aliceId}, session ${handle}: ended 1 WordPress session\\(s\\)`));
  });

  it('ends the Tessera session from the server when wp_logout() runs outside the browser flow', async () => {
    const s = await newSession('server-to-server logout');
    const me = await signInAtWordPress(s, 'sign in');
    const response = await s.page.goto(`${wp.url}/?tessera_test_logout=1`);
    expect(await response!.json()).toEqual({ logged_out: true });
    expect((await whoami(s)).user).toBeNull();
    const { body } = await node.admin<{ sessions: Array<{ handle: string; active: boolean; ended_by: string }> }>('GET', `/users/${aliceId}/sessions?include_ended=true`);
    expect(body.sessions.find((x) => x.handle === me.tessera_sid)).toMatchObject({ active: false, ended_by: `app:${wpApp.clientId}` });
    expect(wp.log()).toContain(`[tessera] logout.server user 2: Tessera ended session ${me.tessera_sid}`);
  });

  it('ends the Tessera session from the server when the ID token of a long session no longer verifies (its key was retired)', async () => {
    const s = await newSession('logout with a stale id_token_hint');
    const me = await signInAtWordPress(s, 'sign in');
    // As after weeks of "remember me": the ID token kept with the session was signed with a
    // key Tessera no longer publishes.
    const retired = await generateKeyPair('RS256', { modulusLength: 2048 });
    const stale = await new SignJWT({ iss: node.url, aud: wpApp.clientId, sub: aliceId, sid: me.tessera_sid }).setProtectedHeader({ alg: 'RS256', kid: 'tk-1-rs256', typ: 'JWT' }).setIssuedAt(now() - 20 * 86_400).sign(retired.privateKey);
    wp.eval(`$m = get_user_meta(${me.user_id}, 'session_tokens', true); foreach ($m as $k => $v) { if (($v['tessera_sid'] ?? '') === ${JSON.stringify(me.tessera_sid)}) { $m[$k]['tessera_id_token'] = ${JSON.stringify(stale)}; } } update_user_meta(${me.user_id}, 'session_tokens', $m);`);
    await s.page.goto(`${wp.url}/`);
    const hops: string[] = [];
    s.page.on('response', (r) => {
      if (r.request().isNavigationRequest()) hops.push(r.url().split('?')[0]!);
    });
    await s.page.goto((await s.page.locator('#wp-admin-bar-logout a').getAttribute('href'))!);
    // Not through Tessera's page (which would ask to confirm): straight to WordPress' logged-out page.
    expect(hops).toEqual([`${wp.url}/wp-login.php`, `${wp.url}/wp-login.php`]);
    expect(new URL(s.page.url()).searchParams.get('loggedout')).toBe('true');
    const { body } = await node.admin<{ sessions: Array<{ handle: string; active: boolean; ended_by: string }> }>('GET', `/users/${aliceId}/sessions?include_ended=true`);
    expect(body.sessions.find((x) => x.handle === me.tessera_sid)).toMatchObject({ active: false, ended_by: `app:${wpApp.clientId}` });
    expect(wp.log()).toContain(`[tessera] logout.hint_stale user 2: the ID token of session ${me.tessera_sid} no longer verifies`);
    expect(wp.log()).toContain(`[tessera] logout.server user 2: Tessera ended session ${me.tessera_sid}`);
  });

  it('ends the Tessera session from the server when another plugin\'s logout_redirect filter sends the browser elsewhere', async () => {
    const s = await newSession('logout redirected by another plugin');
    const me = await signInAtWordPress(s, 'sign in');
    wp.eval(`update_option('tessera_test_logout_redirect', ${JSON.stringify(`${wp.url}/?tessera_test_whoami=1&after=logout`)}); echo 'ok';`);
    try {
      await s.page.goto(`${wp.url}/`);
      await s.page.goto((await s.page.locator('#wp-admin-bar-logout a').getAttribute('href'))!);
      // The other plugin's page, not Tessera's; WordPress is signed out ...
      expect(new URL(s.page.url()).searchParams.get('after')).toBe('logout');
      expect(JSON.parse(await s.page.locator('body').innerText())).toMatchObject({ user: null });
      // ... and so is Tessera: the plugin made the server call instead.
      const { body } = await node.admin<{ sessions: Array<{ handle: string; active: boolean; ended_by: string }> }>('GET', `/users/${aliceId}/sessions?include_ended=true`);
      expect(body.sessions.find((x) => x.handle === me.tessera_sid)).toMatchObject({ active: false, ended_by: `app:${wpApp.clientId}` });
      expect(wp.log()).toContain(`[tessera] logout.server user 2: Tessera ended session ${me.tessera_sid}`);
      expect(wp.log()).not.toContain(`[tessera] logout.browser user 2: sending the browser to Tessera to end session ${me.tessera_sid}`);
    } finally {
      wp.eval(`delete_option('tessera_test_logout_redirect'); echo 'ok';`);
    }
  });

  it('refuses a sign-in callback that this browser did not start, and a callback used twice', async () => {
    // No state cookie (another browser, or a forged link): refused, nobody signed in.
    const forged = await fetch(`${wp.url}/wp-login.php?action=tessera_callback&state=abc&code=def`, { redirect: 'manual' });
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('This sign-in was not started in this browser');
    expect(forged.headers.getSetCookie().some((c) => c.startsWith('wordpress_logged_in_'))).toBe(false);

    const s = await newSession('callback replay');
    let callback = '';
    s.page.on('request', (r) => {
      if (r.url().includes('action=tessera_callback')) callback = r.url();
    });
    await signInAtWordPress(s, 'sign in');
    expect(new URL(callback).searchParams.get('iss')).toBe(node.url);
    const state = new URL(callback).searchParams.get('state')!;
    // The same callback again in the same browser: its state cookie is spent.
    const again = await s.page.goto(callback);
    expect(again!.status()).toBe(400);
    // Even with the state cookie put back (someone who has the whole URL and the cookie), the
    // server-side state (nonce, PKCE verifier) is spent.
    const replay = await fetch(callback, { redirect: 'manual', headers: { cookie: `tessera_oidc_state=${state}` } });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('This sign-in expired');
    expect(wp.log()).toContain('[tessera] signin.refused state does not match this browser');
    expect(wp.log()).toContain('[tessera] signin.refused unknown or expired state');
    // Signed out everywhere before the next test (which counts alice's sessions).
    expect((await node.admin('DELETE', `/users/${aliceId}/sessions`)).status).toBe(200);
    await waitFor('WordPress signed out', async () => ((await whoami(s)).user === null ? true : undefined), { timeoutMs: 15_000 });
  });

  it('after a Tessera sign-in, goes only to a place on this site: an outside redirect_to lands on the dashboard (no open redirect)', async () => {
    const s = await newSession('redirect_to after sign-in');
    await signInAtWordPress(s, 'sign in (a Tessera session in this browser)');
    // The dashboard itself is not rendered (not what this test looks at).
    await s.context.route((url) => url.origin === wp.url && ['/wp-admin/', '/wp-admin/profile.php'].includes(url.pathname), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'the dashboard' }));
    const targets: Array<[string, string]> = [];
    for (const requested of ['https://evil.example/phish', '//evil.example/phish', `${wp.url}.evil.example/`, '/wp-admin/profile.php']) {
      const landed = s.page.waitForResponse((r) => r.url().includes('action=tessera_callback'));
      await s.page.goto(`${wp.url}/wp-login.php?action=tessera_login&redirect_to=${encodeURIComponent(requested)}`);
      const callback = await landed;
      expect(callback.status()).toBe(302);
      targets.push([requested, callback.headers().location!]);
    }
    expect(targets).toEqual([
      ['https://evil.example/phish', `${wp.url}/wp-admin/`],
      ['//evil.example/phish', `${wp.url}/wp-admin/`],
      [`${wp.url}.evil.example/`, `${wp.url}/wp-admin/`],
      ['/wp-admin/profile.php', '/wp-admin/profile.php'],
    ]);
    expect((await node.admin('DELETE', `/users/${aliceId}/sessions`)).status).toBe(200);
    await waitFor('WordPress signed out', async () => ((await whoami(s)).user === null ? true : undefined), { timeoutMs: 15_000 });
  });

  it('answers forged array parameters without a PHP warning: the callback\'s error[], the settings form; a session without a start time is never ended by time', async () => {
    // A sign-in started over HTTP (its state cookie and state), then a callback whose `error`
    // is an array: refused with 400, and nothing cast an array to a string.
    const start = await fetch(`${wp.url}/wp-login.php?action=tessera_login`, { redirect: 'manual' });
    expect(start.status).toBe(302);
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const cookie = start.headers.getSetCookie().find((c) => c.startsWith('tessera_oidc_state='))!.split(';')[0]!;
    const callback = await fetch(`${wp.url}/wp-login.php?action=tessera_callback&state=${encodeURIComponent(state)}&error[]=access_denied`, { redirect: 'manual', headers: { cookie } });
    expect(callback.status).toBe(400);
    expect(await callback.text()).toContain('Tessera could not sign you in.');
    expect(wp.log()).toContain('[tessera] signin.denied Tessera answered invalid_request');
    expect(wp.log()).not.toContain('Array to string conversion');

    // The settings form's sanitize callback with every field posted as an array (an
    // administrator's forged form): no warning, no "Array" stored, the secret kept. And a
    // session row without WordPress' `login` (another plugin rewrote it): taken as begun at
    // the end of time, so never ended by a `revoked_at` (it was a TypeError, a 500).
    const out = JSON.parse(wp.eval(`
      $warnings = array();
      set_error_handler(function ($no, $message) use (&$warnings) { $warnings[] = $message; return true; });
      $old = get_option('tessera_settings');
      $s = Tessera_Settings::sanitize(array('issuer' => array('x'), 'client_id' => array('y'), 'client_secret' => array('z'), 'button_label' => array('z'), 'match' => array('sub'), 'shared_cookie_name' => array('n'), 'shared_cookie_domain' => array('d'), 'shared_cookie_secret' => array('s')));
      $started = Tessera_Sessions::started_ms(array('expiration' => time() + 60));
      echo wp_json_encode(array('warnings' => $warnings, 'secret_kept' => $s['client_secret'] === $old['client_secret'], 'client_id' => $s['client_id'], 'label' => $s['button_label'], 'match' => $s['match'], 'cookie' => $s['shared_cookie_name'] . $s['shared_cookie_domain'], 'started_is_max' => $started === PHP_INT_MAX));`)) as Record<string, unknown>;
    expect(out).toEqual({ warnings: [], secret_kept: true, client_id: '', label: 'Sign in with Tessera', match: 'email', cookie: '', started_is_max: true });
  });

  it('a retried user-wide logout that arrives after alice signed in again ends only the sessions the revocation ended', async () => {
    // Before: a Tessera sign-in (old) and a WordPress password sign-in (no Tessera sid).
    const old = await newSession('late: old tessera session');
    const oldMe = await signInAtWordPress(old, 'old session');
    const oldPassword = await httpPasswordSession();

    // WordPress' back-channel endpoint is down (503) while an administrator ends all of
    // alice's sessions.
    wp.setBackchannelDown(true);
    const seenBefore = wp.deliveries().length;
    const ended = await node.admin<{ revoked: string[] }>('DELETE', `/users/${aliceId}/sessions`);
    expect(ended.status).toBe(200);
    expect(ended.body.revoked).toEqual([oldMe.tessera_sid]);
    await waitFor('two refused attempts', () => (wp.downAnswers() >= 2 ? true : undefined));

    // alice signs in again meanwhile, both ways.
    const fresh = await newSession('late: new tessera session');
    const freshMe = await signInAtWordPress(fresh, 'new session');
    const freshPassword = await httpPasswordSession();
    // The delivering attempt must be signed in a later second than the new sign-ins (its iat
    // then says "after them"): wait for the clock to pass that second.
    const { body: live } = await node.admin<{ sessions: Array<{ handle: string; created_at: string }> }>('GET', `/users/${aliceId}/sessions`);
    const freshStartedAt = Date.parse(live.sessions.find((x) => x.handle === freshMe.tessera_sid)!.created_at);
    const freshSecond = Math.floor(freshStartedAt / 1000);
    await waitFor('a second after the new sign-ins', () => (now() > freshSecond ? true : undefined));
    // And until an attempt signed in that second or later has been refused: an attempt signed
    // earlier can still be queued in PHP's server (4 workers, busy with the sign-ins) and would
    // otherwise be the one accepted. One delivery's attempts go one after another (one lease),
    // so the next one is signed later still.
    await waitFor('a refused attempt signed after the new sign-ins', () => (wp.deliveries().slice(seenBefore).some((d) => d.down && d.claims?.sub === aliceId && (d.claims.iat as number) >= freshSecond) ? true : undefined));
    const before = wp.deliveries().length;
    wp.setBackchannelDown(false);

    const delivery = await waitFor('the user-wide logout delivered to WordPress', async () => {
      const d = (await deliveriesOf(oldMe.tessera_sid!)).find((x) => x.client_id === wpApp.clientId);
      return d?.status === 'delivered' ? d : undefined;
    });
    expect(delivery.scope).toBe('user');
    expect(delivery.attempts).toBeGreaterThanOrEqual(3);
    // What the attempts carried: a fresh iat and jti each, one revoked_at (the revocation's,
    // before the new sign-in) and the ended sid; the accepted one was signed after the new sign-in.
    const attempts = wp.deliveries().slice(seenBefore).filter((d) => d.claims?.sub === aliceId && Array.isArray(d.claims.sids));
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(new Set(attempts.map((d) => d.claims!.jti)).size).toBe(attempts.length);
    expect(new Set(attempts.map((d) => d.claims!.revoked_at)).size).toBe(1);
    expect(attempts[0]!.claims!.revoked_at as number).toBeLessThan(freshStartedAt);
    expect(attempts[0]!.claims!.sids).toEqual([oldMe.tessera_sid]);
    const accepted = wp.deliveries().slice(before).find((d) => !d.down && d.claims?.sub === aliceId)!;
    // iat is in whole seconds: signed after the new sign-in means in its second or a later one.
    expect(accepted.claims!.iat as number).toBeGreaterThanOrEqual(freshSecond);

    expect((await whoami(old)).user).toBeNull();
    expect((await oldPassword.whoami()).user).toBeNull();
    expect(await whoami(fresh)).toMatchObject({ user: 'alice', tessera_sid: freshMe.tessera_sid });
    expect((await freshPassword.whoami()).user).toBe('alice');
    expect(wp.log()).toMatch(new RegExp(`\\[tessera\\] backchannel\\.ok Tessera user ${aliceId} \\(all sessions ended at \\d+\\): ended 2 WordPress session\\(s\\)`));
  });

  describe('the back-channel endpoint refuses bad logout tokens with 400 and ends nothing', () => {
    let s: BrowserSession;
    let sid: string;
    let keys: Map<string, { kid: string; key: CryptoKey | Uint8Array }>;
    const endpoint = () => `${wp.url}/wp-json/tessera/v1/backchannel-logout`;

    beforeAll(async () => {
      s = await browser.newSession('bad tokens');
      await skipWordPressImages(s);
      sid = (await signInAtWordPress(s, 'sign in')).tessera_sid!;
      // Tessera's own private keys (from its store), to sign tokens that are wrong in one
      // claim only.
      const store = createSqliteStore(join(node.dataDir, 'tessera.db'));
      try {
        keys = new Map();
        for (const record of await store.listSigningKeys(Date.now())) {
          if (record.activatesAt <= Date.now() && !keys.has(record.alg)) keys.set(record.alg, { kid: record.kid, key: await importJWK(record.privateJwk as JWK, record.alg) });
        }
      } finally {
        await store.close();
      }
      expect([...keys.keys()].sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    });
    afterAll(async () => s?.close());

    function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
      return {
        iss: node.url, aud: wpApp.clientId, sub: aliceId, sid, iat: now(), exp: now() + 120,
        jti: `jti-${Math.random().toString(36).slice(2)}`, events: { [BACKCHANNEL_EVENT]: {} }, revoked_at: Date.now(), ...overrides,
      };
    }
    async function sign(payload: Record<string, unknown>, alg = 'RS256', header: Record<string, unknown> = {}): Promise<string> {
      const { kid, key } = keys.get(alg)!;
      const body = Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined));
      return new SignJWT(body).setProtectedHeader({ alg, kid, typ: 'logout+jwt', ...header }).sign(key);
    }
    async function post(body: string, contentType = 'application/x-www-form-urlencoded'): Promise<{ status: number; json: Record<string, unknown> }> {
      const response = await fetch(endpoint(), { method: 'POST', headers: { 'content-type': contentType }, body });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    }
    const form = (token: string) => new URLSearchParams({ logout_token: token }).toString();

    it('refuses each with 400 and a JSON error, and the WordPress session stays', async () => {
      const forged = await generateKeyPair('RS256', { modulusLength: 2048 });
      const cases: Array<[string, Promise<string> | string, string?]> = [
        ['wrong signature (another key, Tessera\'s kid)', new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: keys.get('RS256')!.kid, typ: 'logout+jwt' }).sign(forged.privateKey)],
        ['signature of one claim changed', sign(claims()).then((t) => { const [h, , sig] = t.split('.'); return `${h}.${Buffer.from(JSON.stringify(claims({ sub: 'someone-else' }))).toString('base64url')}.${sig}`; })],
        ['unknown kid', sign(claims(), 'RS256', { kid: 'tk-unknown' })],
        ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'logout+jwt' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`],
        ['HS256 with the public key as secret', new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: keys.get('RS256')!.kid }).sign(new TextEncoder().encode('secret'))],
        ['wrong audience', sign(claims({ aud: 'app_someone_else' }))],
        ['wrong issuer', sign(claims({ iss: 'http://127.0.0.1:1' }))],
        ['nonce present', sign(claims({ nonce: 'n-0S6_WzA2Mj' }))],
        ['expired', sign(claims({ iat: now() - 600, exp: now() - 480 }))],
        ['issued too long ago', sign(claims({ iat: now() - 900, exp: undefined }))],
        ['no exp (required)', sign(claims({ exp: undefined }))],
        ['issued in the future', sign(claims({ iat: now() + 600 }))],
        ['no events claim', sign(claims({ events: undefined }))],
        ['another event', sign(claims({ events: { 'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {} } }))],
        ['neither sid nor sub', sign(claims({ sid: undefined, sub: undefined }))],
        ['no jti', sign(claims({ jti: undefined }))],
        ['revoked_at after iat', sign(claims({ revoked_at: Date.now() + 600_000 }))],
        ['revoked_at not an integer', sign(claims({ revoked_at: '2026-01-01' }))],
        ['sids not a list of strings', sign(claims({ sid: undefined, sids: [1, 2] }))],
        ['an ID token (typ JWT)', sign(claims(), 'RS256', { typ: 'JWT' })],
        ['malformed: not a JWT', 'not-a-jwt'],
        ['malformed: three parts, not JSON', 'a.b.c'],
        ['malformed: empty', ''],
      ];
      for (const [name, tokenPromise] of cases) {
        const { status, json } = await post(form(await tokenPromise));
        expect.soft({ name, status, error: json.error, described: typeof json.error_description }).toEqual({ name, status: 400, error: 'invalid_request', described: 'string' });
      }
      // Not form-encoded, or no logout_token at all.
      expect((await post(JSON.stringify({ logout_token: await sign(claims()) }), 'application/json')).status).toBe(400);
      expect((await post('token=x')).status).toBe(400);

      // A replayed jti: a valid token (naming another sid, so that it ends nothing) is
      // accepted once, then refused.
      const once = await sign(claims({ sid: 'ses_not_this_one' }));
      expect(await post(form(once))).toEqual({ status: 200, json: { ended: 0 } });
      const replayed = await post(form(once));
      expect(replayed.status).toBe(400);
      expect(replayed.json.error_description).toMatch(/^replayed:/);

      // The replay table dropped behind the plugin's back (a partial restore): a valid token is
      // not taken for a replay (it was a 400 "replayed"); the table is created again, and the
      // token's jti is then spent as usual.
      const tableExists = () => wp.eval(`global $wpdb; echo $wpdb->get_var("SHOW TABLES LIKE '{$wpdb->prefix}tessera_jti'") ? 'yes' : 'no';`);
      wp.eval(`Tessera_Replay::drop();`);
      expect(tableExists()).toBe('no');
      const afterDrop = await sign(claims({ sid: 'ses_not_this_one_either' }));
      expect(await post(form(afterDrop))).toEqual({ status: 200, json: { ended: 0 } });
      expect(tableExists()).toBe('yes');
      expect((await post(form(afterDrop))).json.error_description).toMatch(/^replayed:/);

      // After all of that, the session is still there.
      expect(await whoami(s)).toMatchObject({ user: 'alice', tessera_sid: sid });
      expect(wp.log()).toMatch(/\[tessera\] backchannel\.refused bad_signature: /);
      expect(wp.log()).toMatch(/\[tessera\] backchannel\.refused bad_audience: /);
      expect(wp.log()).not.toContain(await once);
    });

    it('validates ID tokens fully: signature, iss, aud, azp, exp, iat, nonce, sid', async () => {
      const id = (overrides: Record<string, unknown> = {}) => Object.fromEntries(Object.entries({ iss: node.url, aud: wpApp.clientId, sub: aliceId, sid, iat: now(), exp: now() + 300, nonce: 'the-nonce', auth_time: now(), ...overrides }).filter(([, v]) => v !== undefined));
      const forged = await generateKeyPair('EdDSA');
      const jwt = { typ: 'JWT' };
      const tokens: Record<string, string> = {
        valid: await sign(id(), 'RS256', jwt),
        validEdDSA: await sign(id(), 'EdDSA', jwt),
        validES256: await sign(id({ aud: [wpApp.clientId, 'other'], azp: wpApp.clientId }), 'ES256', jwt),
        wrongNonce: await sign(id({ nonce: 'another' }), 'RS256', jwt),
        noNonce: await sign(id({ nonce: undefined }), 'RS256', jwt),
        wrongAudience: await sign(id({ aud: 'app_other' }), 'RS256', jwt),
        severalAudiencesNoAzp: await sign(id({ aud: [wpApp.clientId, 'other'] }), 'RS256', jwt),
        wrongAzp: await sign(id({ azp: 'app_other' }), 'RS256', jwt),
        expired: await sign(id({ iat: now() - 3000, exp: now() - 600 }), 'RS256', jwt),
        future: await sign(id({ iat: now() + 600 }), 'RS256', jwt),
        wrongIssuer: await sign(id({ iss: 'http://127.0.0.1:1' }), 'RS256', jwt),
        noSid: await sign(id({ sid: undefined }), 'RS256', jwt),
        wrongSignature: await new SignJWT(id()).setProtectedHeader({ alg: 'EdDSA', kid: keys.get('EdDSA')!.kid }).sign(forged.privateKey),
      };
      const file = join(wp.dir, '..', 'id-tokens.json');
      writeFileSync(file, JSON.stringify(tokens));
      const outcome = JSON.parse(wp.eval(`
        $out = array();
        foreach (json_decode(file_get_contents(${JSON.stringify(file)}), true) as $name => $token) {
          try { Tessera_Sign_In::validate_id_token($token, Tessera_Provider::configured(), 'the-nonce'); $out[$name] = 'ok'; }
          catch (Tessera_Token_Error $e) { $out[$name] = $e->reason_code; }
        }
        echo wp_json_encode($out);`)) as Record<string, string>;
      expect(outcome).toEqual({
        valid: 'ok', validEdDSA: 'ok', validES256: 'ok',
        wrongNonce: 'bad_nonce', noNonce: 'bad_nonce', wrongAudience: 'bad_audience', severalAudiencesNoAzp: 'bad_audience', wrongAzp: 'bad_audience',
        expired: 'expired', future: 'bad_iat', wrongIssuer: 'bad_issuer', noSid: 'malformed', wrongSignature: 'bad_signature',
      });
    });

    it('accepts valid tokens in each of Tessera\'s algorithms (EdDSA, ES256, RS256), and the right one ends the session', async () => {
      for (const alg of ['EdDSA', 'ES256']) {
        expect(await post(form(await sign(claims({ sid: `ses_other_${alg}` }), alg)))).toEqual({ status: 200, json: { ended: 0 } });
      }
      expect((await whoami(s)).user).toBe('alice');
      // Key rotation: the cached key set lacks the signing key (as after Tessera rotated):
      // the plugin fetches the keys again for the unknown kid and accepts the token.
      wp.eval(`set_transient('tessera_jwks', array(), 600); delete_transient('tessera_jwks_refetched');`);
      expect(await post(form(await sign(claims())))).toEqual({ status: 200, json: { ended: 1 } });
      expect(wp.log()).toContain(`[tessera] jwks.refetch unknown kid ${keys.get('RS256')!.kid}: fetching the keys again`);
      expect((await whoami(s)).user).toBeNull();
      // The rows of the replay table expire: none is older than its token's lifetime.
      const rows = JSON.parse(wp.eval(`global $wpdb; echo wp_json_encode($wpdb->get_results("SELECT expires_at FROM {$wpdb->prefix}tessera_jti"));`)) as Array<{ expires_at: string }>;
      expect(rows.length).toBeGreaterThanOrEqual(3);
      for (const row of rows) expect(Number(row.expires_at)).toBeGreaterThan(now());
    });

    it('a token naming only the sid (no sub, as §2.4 allows) ends the WordPress session of that sid, and no other', async () => {
      const t = await newSession('sid-only token');
      const me = await signInAtWordPress(t, 'sign in');
      expect(await post(form(await sign(claims({ sub: undefined, sid: 'ses_not_a_session_here' }))))).toEqual({ status: 200, json: { ended: 0 } });
      expect((await whoami(t)).user).toBe('alice');
      expect(await post(form(await sign(claims({ sub: undefined, sid: me.tessera_sid }))))).toEqual({ status: 200, json: { ended: 1 } });
      expect((await whoami(t)).user).toBeNull();
      expect((await node.admin('DELETE', `/sessions/${me.tessera_sid}`)).status).toBe(204);
    });
  });
  it('sets the optional shared cookie for nodebb-plugin-session-sharing on a Tessera sign-in and clears it on logout', async () => {
    const setShared = (name: string, secret: string) => wp.eval(`$s = get_option('tessera_settings'); $s['shared_cookie_name'] = ${JSON.stringify(name)}; $s['shared_cookie_secret'] = ${JSON.stringify(secret)}; update_option('tessera_settings', $s); echo 'ok';`);
    setShared('wp_shared_session', 'the secret shared with session-sharing');
    try {
      const s = await newSession('shared cookie');
      const me = await signInAtWordPress(s, 'sign in');
      const cookie = (await s.cookies(`${wp.url}/`)).find((c) => c.name === 'wp_shared_session');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
      const { payload, protectedHeader } = await jwtVerify(cookie!.value, new TextEncoder().encode('the secret shared with session-sharing'), { algorithms: ['HS256'] });
      expect(protectedHeader.alg).toBe('HS256');
      expect(payload).toMatchObject({ id: aliceId, username: 'alice', email: 'alice@example.test', sid: me.tessera_sid });

      await s.page.goto(`${wp.url}/`);
      await s.page.goto((await s.page.locator('#wp-admin-bar-logout a').getAttribute('href'))!);
      expect(new URL(s.page.url()).searchParams.get('loggedout')).toBe('true');
      expect((await s.cookies(`${wp.url}/`)).map((c) => c.name)).not.toContain('wp_shared_session');
    } finally {
      setShared('', '');
    }
  });

  it('the settings page: administrators only, shows the URLs to register, never the secret, and a post without its nonce changes nothing', async () => {
    const subscriber = await httpPasswordSession();
    expect((await subscriber.send('/wp-admin/options-general.php?page=tessera')).status).toBe(403);

    const s = await newSession('settings as the administrator');
    await passwordSignIn(s, 'admin', ADMIN_PASSWORD);
    await s.page.goto(`${wp.url}/wp-admin/options-general.php?page=tessera`);
    await s.step('settings page');
    const shown = await s.page.locator('.wrap table.widefat code').allInnerTexts();
    expect(shown).toEqual([`${wp.url}/wp-login.php?action=tessera_callback`, `${wp.url}/wp-login.php?loggedout=true`, `${wp.url}/wp-json/tessera/v1/backchannel-logout`]);
    expect(await s.page.locator('#tessera-issuer').inputValue()).toBe(node.url);
    expect(await s.page.locator('#tessera-client-secret').inputValue()).toBe('');
    expect(await s.page.content()).not.toContain(wpApp.clientSecret);

    // Without the form's nonce, options.php refuses (WordPress' "link expired", 403).
    const forged = await s.context.request.post(`${wp.url}/wp-admin/options.php`, { form: { option_page: 'tessera', action: 'update', 'tessera_settings[button_label]': 'Forged' }, maxRedirects: 0 });
    expect(forged.status()).toBe(403);
    await s.page.goto(`${wp.url}/wp-login.php`);
    expect(await s.page.getByRole('link', { name: 'Sign in with Tessera' }).count()).toBe(1);

    // Through the form: a new label; the secret left empty is kept.
    await s.page.goto(`${wp.url}/wp-admin/options-general.php?page=tessera`);
    await s.page.locator('#tessera-button-label').fill('Sign in with Example ID');
    await clickAndLand(s.page, s.page.locator('#submit'), `${wp.url}/wp-admin/options-general.php?page=tessera&settings-updated=true`, 20_000);
    await s.step('settings saved');
    const saved = JSON.parse(wp.eval(`echo wp_json_encode(get_option('tessera_settings'));`)) as Record<string, unknown>;
    expect(saved).toMatchObject({ button_label: 'Sign in with Example ID', client_secret: wpApp.clientSecret, issuer: node.url });
    const anonymous = await newSession('login page after the change');
    await anonymous.page.goto(`${wp.url}/wp-login.php`);
    expect(await anonymous.page.getByRole('link', { name: 'Sign in with Example ID' }).count()).toBe(1);
  });

  it('matches users by verified email or by Tessera user id, never by an unverified address', async () => {
    // Tessera_Users::resolve with the claims of an ID token, inside this WordPress; each case
    // prints the login it resolved to (or the refusal) and whether the address was kept.
    const outcome = JSON.parse(wp.eval(`
      wp_insert_user(array('user_login' => 'bob', 'user_email' => 'bob@example.test', 'user_pass' => wp_generate_password()));
      wp_insert_user(array('user_login' => 'carol', 'user_email' => 'carol@example.test', 'user_pass' => wp_generate_password()));
      update_user_meta(get_user_by('login', 'carol')->ID, 'tessera_sub', 'usr_carol_elsewhere');
      $set = function ($changes) { $s = get_option('tessera_settings'); update_option('tessera_settings', array_merge($s, $changes)); Tessera_Settings::flush(); };
      $try = function ($claims) { $u = Tessera_Users::resolve($claims); return is_wp_error($u) ? $u->get_error_code() : $u->user_login . ' <' . $u->user_email . '>'; };
      $out = array();
      $out['unverified'] = $try(array('sub' => 'usr_b1', 'preferred_username' => 'bob', 'email' => 'bob@example.test', 'email_verified' => false));
      $out['verified'] = $try(array('sub' => 'usr_b2', 'preferred_username' => 'robert', 'email' => 'bob@example.test', 'email_verified' => true));
      $out['verified again, by id'] = $try(array('sub' => 'usr_b2', 'preferred_username' => 'robert'));
      $out['linked elsewhere'] = $try(array('sub' => 'usr_c1', 'email' => 'carol@example.test', 'email_verified' => true));
      $set(array('match' => 'sub'));
      $out['sub mode, verified email of an account'] = $try(array('sub' => 'usr_c2', 'preferred_username' => 'carol', 'email' => 'carol@example.test', 'email_verified' => true));
      $set(array('create_users' => false));
      $out['sub mode, no account, no creating'] = $try(array('sub' => 'usr_d1', 'preferred_username' => 'dave'));
      $set(array('match' => 'email', 'create_users' => true));
      echo wp_json_encode($out);`)) as Record<string, string>;
    expect(outcome).toEqual({
      // An unverified address never links: a new account without the address.
      unverified: 'bob_2 <>',
      verified: 'bob <bob@example.test>',
      'verified again, by id': 'bob <bob@example.test>',
      'linked elsewhere': 'tessera_linked_elsewhere',
      // By Tessera user id only: no link by address; the new account does not take it.
      'sub mode, verified email of an account': 'carol_2 <>',
      'sub mode, no account, no creating': 'tessera_no_account',
    });
  });

  it('uninstalling removes its options, its table, the Tessera ids in user meta and the Tessera fields of sessions', async () => {
    const state = `global $wpdb; echo wp_json_encode(array(get_option('tessera_settings') !== false, (bool) $wpdb->get_var("SHOW TABLES LIKE '{$wpdb->prefix}tessera_jti'"), count(get_users(array('meta_key' => 'tessera_sub'))), get_option('tessera_db_version'), (int) $wpdb->get_var("SELECT COUNT(*) FROM {$wpdb->options} WHERE option_name LIKE '%transient%tessera%'"), array_sum(array_map(function ($id) { $n = 0; foreach ((array) get_user_meta($id, 'session_tokens', true) as $s) { $n += count(array_intersect_key((array) $s, array_flip(array('tessera_sid', 'tessera_sub', 'tessera_id_token', 'tessera_started_ms')))); } return $n; }, get_users(array('fields' => 'ID'))))));`;
    const sessionRows = `global $wpdb; echo (int) $wpdb->get_var("SELECT COUNT(*) FROM {$wpdb->usermeta} WHERE meta_key = 'session_tokens'");`;
    const [option, table, linked, version, transients, tesseraSessionFields] = JSON.parse(wp.eval(state)) as [boolean, boolean, number, string, number, number];
    expect([option, table, linked > 0, version, transients > 0, tesseraSessionFields > 0]).toEqual([true, true, true, '1', true, true]);
    const rowsBefore = wp.eval(sessionRows);
    wp.eval(`require_once ABSPATH . 'wp-admin/includes/plugin.php'; deactivate_plugins('wordpress-plugin-tessera/tessera.php'); uninstall_plugin('wordpress-plugin-tessera/tessera.php');`);
    // Everything gone, the Tessera fields of sessions (the ID tokens among them) too; the
    // sessions themselves stay (uninstalling signs nobody out).
    expect(JSON.parse(wp.eval(state))).toEqual([false, false, 0, false, 0, 0]);
    expect(wp.eval(sessionRows)).toBe(rowsBefore);
    // Nothing the plugin did in this whole file made PHP complain.
    expect(wp.log().split('\n').filter((line) => /PHP (Fatal|Parse|Warning|Notice|Deprecated)/.test(line))).toEqual([]);
  });
});

// No WordPress needed: the files a plugin directory reviewer reads first.
describe('the plugin\'s readme.txt and header', () => {
  it('follow WordPress\' readme standard: the headers, a short description of at most 150 characters, the same version and requirements as the plugin header', () => {
    const readme = readFileSync(join(PLUGIN_DIR, 'readme.txt'), 'utf8');
    const main = readFileSync(join(PLUGIN_DIR, 'tessera.php'), 'utf8');
    const header = (text: string, name: string) => new RegExp(`^[ *]*${name}:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim();
    const lines = readme.split('\n');
    expect(lines[0]).toBe(`=== ${header(main, 'Plugin Name')} ===`);
    for (const name of ['Contributors', 'Tags', 'Requires at least', 'Tested up to', 'Requires PHP', 'Stable tag', 'License', 'License URI']) expect.soft(header(readme, name), name).toBeTruthy();
    expect(header(readme, 'Stable tag')).toBe(header(main, 'Version'));
    expect(header(readme, 'Requires PHP')).toBe(header(main, 'Requires PHP'));
    expect(header(readme, 'Requires at least')).toBe(header(main, 'Requires at least'));
    expect(header(readme, 'Tags')!.split(',').length).toBeLessThanOrEqual(5);
    // The short description: the first non-empty line after the headers.
    const short = lines.slice(lines.findIndex((l, i) => i > 0 && l.trim() === '') + 1).find((l) => l.trim() !== '')!;
    expect(short.length).toBeLessThanOrEqual(150);
    for (const section of ['== Description ==', '== Installation ==', '== Changelog ==']) expect(readme).toContain(section);
  });
});
