// The hosted pages in a real browser (Chromium through playwright-core), end to end on a
// real Tessera node (HTTP, SQLite, the delivery worker):
// - one user signs in on two browser contexts; the devices page of the first lists both;
//   "Sign out all other devices" ends the second (its next page load goes to the login page)
//   and the back-channel receiver of the app that had joined the second session got the
//   logout (a signed logout token naming that session);
// - an operator signs in to the admin console with the admin token, finds the user, ends a
//   session, watches its deliveries turn `delivered` (one app) and `dead` (an app whose
//   receiver fails, with a horizon shorter than the first retry), and retries the dead one
//   once the receiver is back, until it is delivered;
// - the operator opens the Shared Signals streams, sees a push stream's SET dead (its
//   receiver refused it with a 400), sends it again from the stream's page once the receiver
//   is fixed, watches it turn delivered, pauses the stream with a reason, and sets the aud of
//   its SETs (a bad value first: the error next to the field);
// - every page (login, consent, sign-out confirmation, an error page, /account, every
//   console page) passes axe-core at a desktop width and at 375 px, and is no wider than a
//   375 px screen. The pages' CSP is never weakened: any violation on the console fails the
//   test (support/chromium.ts), and axe runs through the DevTools protocol (support/axe.ts).
// Screenshots of each page go to test-results/screenshots/, or, with
// TESSERA_UPDATE_SCREENSHOTS=1, to docs/screenshots/ (the ones the docs and README show).
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { submitLoginForm } from './support/app-pages.js';
import { describeViolations, runAxe } from './support/axe.js';
import { ADMIN_TOKEN, callAdmin, createReceiver, createUser, fetchJwks, joinSession, logoutTokenOf, registerApp, startSession, startTesseraNode, verifyLogoutToken, waitFor, type Receiver, type RegisteredApp, type TesseraNode } from './support/backchannel.js';
import { call, clientCredentialsToken } from './support/ssf-receiver.js';
import { findChromium, launchChromium, type BrowserSession, type TestBrowser } from './support/chromium.js';

const chromium = findChromium();
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = process.env.TESSERA_UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'screenshots') : join(ROOT, 'test-results', 'screenshots');
const PASSWORD = 'correct horse battery staple';
const DESKTOP = { width: 1000, height: 720 };
const PHONE = { width: 375, height: 740 };
const DESKTOP_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const PHONE_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1';

let node: TesseraNode;
let forumRp: Receiver;
let shopRp: Receiver;
let callback: Receiver;
let forum: RegisteredApp;
let shop: RegisteredApp;
let portal: RegisteredApp;
const checked: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The horizon (60 s, the least allowed) is shorter than the first retry delay (at least
  // 65 s), so one failed attempt already ends a delivery `dead`: no waiting for the horizon.
  node = await startTesseraNode({ outbox: { horizonSeconds: 60, backoffBaseMs: 130_000, backoffMaxMs: 600_000, pollIntervalMs: 20, timeoutMs: 2_000 } });
  forumRp = await createReceiver();
  // The shop's receiver is up but fails every notice (until the test lets it succeed).
  shopRp = await createReceiver({ answer: () => ({ status: 503 }) });
  callback = await createReceiver();
  forum = await registerApp(node.url, { name: 'Forum', trusted: true, backchannel_logout_uri: forumRp.url });
  shop = await registerApp(node.url, { name: 'Shop', trusted: true, backchannel_logout_uri: shopRp.url });
  // An OpenID Connect client that is not trusted: its sign-in asks for consent.
  const cb = `http://127.0.0.1:${callback.port}/cb`;
  portal = await registerApp(node.url, { name: 'Partner portal', trusted: false, redirect_uris: [cb], post_logout_redirect_uris: [`http://127.0.0.1:${callback.port}/bye`] });
  await createUser(node.url, 'dora', PASSWORD);
});

let siem: Receiver;

afterAll(async () => {
  await node?.close();
  for (const r of [forumRp, shopRp, callback, siem]) await r?.close();
});

/**
 * Checks the page the session is on: axe-core finds nothing at the desktop width nor at
 * 375 px, and nothing is wider than the phone's screen. Saves a screenshot as `name`.
 */
async function checkPage(page: Page, name: string, options: { screenshot?: boolean } = {}): Promise<void> {
  // Every hosted page links the one stylesheet and loads nothing else (checked before axe
  // runs: axe's own work leaves style attributes behind).
  expect(await page.evaluate(() => [...document.querySelectorAll('link[rel=stylesheet]')].map((l) => new URL((l as HTMLLinkElement).href)).map((u) => `${u.origin === location.origin ? 'same-origin' : u.origin} ${u.pathname}`))).toEqual([expect.stringMatching(/^same-origin \/assets\/tessera-[0-9a-f]{12}\.css$/)]);
  // Every resource the page loaded came from Tessera's own origin.
  expect(await page.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).origin).filter((o) => o !== location.origin))).toEqual([]);
  expect(await page.evaluate(() => document.querySelectorAll('script, img, iframe, [style]').length), `${name} has scripts, images, frames or inline styles`).toBe(0);
  await page.setViewportSize(DESKTOP);
  const desktop = await runAxe(page);
  expect(desktop, describeViolations(`${name} at ${DESKTOP.width} px`, desktop)).toEqual([]);
  if (options.screenshot !== false) await page.screenshot({ path: join(SHOTS, `${name}.png`) });
  await page.setViewportSize(PHONE);
  const phone = await runAxe(page);
  expect(phone, describeViolations(`${name} at ${PHONE.width} px`, phone)).toEqual([]);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width, `${name} is wider than a 375 px screen`).toBeLessThanOrEqual(PHONE.width);
  await page.setViewportSize(DESKTOP);
  checked.push(name);
}

/** The browser's session token (the test reads the HttpOnly cookie through the browser's API). */
async function sessionToken(s: BrowserSession): Promise<string> {
  const cookie = (await s.cookies(node.url)).find((c) => c.name === 'tessera_session');
  expect(cookie).toBeDefined();
  return cookie!.value;
}

async function whoami(token: string): Promise<{ session: { handle: string } }> {
  const res = await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { session: { handle: string } };
}

describe.skipIf(chromium.skip !== null)('hosted pages and the admin console in Chromium', { timeout: 240_000 }, () => {
  let browser: TestBrowser;
  beforeAll(async () => {
    browser = await launchChromium(chromium.path!, import.meta.url);
  });
  afterAll(async () => browser?.close());

  it('two devices; "sign out all other devices" ends the other one everywhere; consent, sign-out confirmation and error pages', async () => {
    const desktop = await browser.newSession('desktop', { userAgent: DESKTOP_UA, viewport: DESKTOP });
    const phone = await browser.newSession('phone', { userAgent: PHONE_UA, viewport: DESKTOP });

    // The login page, signed out (reached from /account, which sends the browser there).
    await desktop.page.goto(`${node.url}/account`);
    await desktop.page.waitForURL((url) => url.pathname === '/login');
    await checkPage(desktop.page, 'login');
    // A wrong password: the page says so (and is checked too).
    await desktop.page.getByLabel('Username or email').fill('dora');
    await desktop.page.getByLabel('Password').fill('not the password');
    await desktop.page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => desktop.page.getByRole('alert').count()).toBe(1);
    await checkPage(desktop.page, 'login-error', { screenshot: false });
    await submitLoginForm(desktop, 'dora', PASSWORD, 'desktop');
    await desktop.page.waitForURL(`${node.url}/account`);

    await phone.page.goto(`${node.url}/account`);
    await phone.page.waitForURL((url) => url.pathname === '/login');
    await submitLoginForm(phone, 'dora', PASSWORD, 'phone');
    await phone.page.waitForURL(`${node.url}/account`);
    // The forum joins the phone's session, as it does when the user opens the forum there.
    const phoneToken = await sessionToken(phone);
    const phoneHandle = (await whoami(phoneToken)).session.handle;
    await joinSession(node.url, forum, phoneToken);

    // The consent page of an app that is not trusted (on the desktop), then Allow.
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const authorize = new URL(`${node.url}/oidc/authorize`);
    for (const [k, v] of Object.entries({ client_id: portal.clientId, redirect_uri: `http://127.0.0.1:${callback.port}/cb`, response_type: 'code', scope: 'openid profile', state: 'st', code_challenge: challenge, code_challenge_method: 'S256' })) authorize.searchParams.set(k, v);
    await desktop.page.goto(authorize.toString());
    await expect.poll(() => desktop.page.getByRole('button', { name: 'Allow' }).count()).toBe(1);
    await checkPage(desktop.page, 'consent');
    const landed = desktop.page.waitForRequest((r) => r.url().startsWith(`http://127.0.0.1:${callback.port}/cb?`));
    await desktop.page.getByRole('button', { name: 'Allow' }).click();
    expect(new URL((await landed).url()).searchParams.get('state')).toBe('st');

    // The devices page of the desktop lists both devices and the consent.
    await desktop.page.goto(`${node.url}/account`);
    const devices = desktop.page.locator('ul.devices > li[data-session]');
    await expect.poll(() => devices.count()).toBe(2);
    expect(await desktop.page.locator('li[aria-current="true"]').innerText()).toMatch(/Chrome 120 on Linux[\s\S]*This device/);
    expect(await desktop.page.locator(`li[data-session="${phoneHandle}"]`).innerText()).toMatch(/Safari 17 on iOS[\s\S]*Forum/);
    expect(await desktop.page.locator(`li[data-consent="${portal.clientId}"]`).innerText()).toMatch(/Partner portal[\s\S]*openid profile/);
    await checkPage(desktop.page, 'account');
    // The CSP is in force as served: a script the page did not bring is refused (which is
    // why axe is evaluated over the DevTools protocol instead of added as a <script>).
    desktop.expectProblem(/Content Security Policy/);
    await desktop.page.addScriptTag({ content: 'window.__injected = true;' }).catch(() => undefined);
    expect(await desktop.page.evaluate('window.__injected === true')).toBe(false);

    await desktop.page.getByRole('button', { name: 'Sign out all other devices' }).click();
    await desktop.page.waitForURL(`${node.url}/account?done=others`);
    await expect.poll(() => devices.count()).toBe(1);
    expect(await desktop.page.getByRole('status').innerText()).toBe('All your other devices are signed out.');
    await checkPage(desktop.page, 'account-signed-out-others', { screenshot: false });

    // The phone's next page load goes to the login page.
    await phone.page.goto(`${node.url}/account`);
    await phone.page.waitForURL((url) => url.pathname === '/login');
    await expect.poll(() => phone.page.getByRole('button', { name: 'Sign in' }).count()).toBe(1);
    // The forum's back-channel receiver got a signed logout token for the phone's session.
    const received = await waitFor('the forum\'s back-channel logout', () => forumRp.received.find((r) => r.method === 'POST') ?? undefined);
    const token = await verifyLogoutToken(logoutTokenOf(received), await fetchJwks(node.url), { issuer: node.url, audience: forum.clientId });
    expect(token.claims.sid).toBe(phoneHandle);
    expect(shopRp.received).toHaveLength(0);

    // Withdraw the consent from the devices page.
    await desktop.page.getByRole('button', { name: 'Withdraw access of Partner portal' }).click();
    await desktop.page.waitForURL(`${node.url}/account?done=consent`);
    expect(await desktop.page.locator(`li[data-consent="${portal.clientId}"]`).count()).toBe(0);

    // The sign-out confirmation (RP-initiated logout without an id_token_hint), not submitted.
    await desktop.page.goto(`${node.url}/oidc/logout?client_id=${encodeURIComponent(portal.clientId)}`);
    await expect.poll(() => desktop.page.getByRole('button', { name: 'Sign out' }).count()).toBe(1);
    await checkPage(desktop.page, 'logout-confirm');
    // An error page: an authorization request of an unknown client.
    const error = await desktop.page.goto(`${node.url}/oidc/authorize?client_id=nobody&response_type=code`);
    expect(error?.status()).toBe(400);
    await checkPage(desktop.page, 'error');

    await desktop.close();
    await phone.close();
  });

  it('an operator signs in to the console, finds the user, ends a session, sees its deliveries delivered and dead, and retries the dead one', async () => {
    // This test's own pages (the first test's are counted there), so one test's failure does not fail the other.
    const first = checked.length;
    // The user's session that the admin will end: two apps joined it (the shop's receiver fails).
    const user = await browser.newSession('user', { userAgent: DESKTOP_UA, viewport: DESKTOP });
    await user.page.goto(`${node.url}/account`);
    await user.page.waitForURL((url) => url.pathname === '/login');
    await submitLoginForm(user, 'dora', PASSWORD, 'user');
    await user.page.waitForURL(`${node.url}/account`);
    const userToken = await sessionToken(user);
    const handle = (await whoami(userToken)).session.handle;
    await joinSession(node.url, forum, userToken);
    await joinSession(node.url, shop, userToken);
    const forumBefore = forumRp.received.length;

    const admin = await browser.newSession('admin', { viewport: DESKTOP });
    const { page } = admin;
    await page.goto(`${node.url}/admin`);
    await page.waitForURL(`${node.url}/admin/login`);
    await checkPage(page, 'admin-login');
    await page.getByLabel('Admin token').fill(`${ADMIN_TOKEN}-wrong`);
    await page.getByRole('button', { name: 'Sign in to the console' }).click();
    await expect.poll(() => page.locator('#f-token-error').count()).toBe(1);
    expect(await page.getByLabel('Admin token').getAttribute('aria-describedby')).toContain('f-token-error');
    await checkPage(page, 'admin-login-error', { screenshot: false });
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in to the console' }).click();
    await page.waitForURL(`${node.url}/admin`);
    // The console cookie as the browser stores it: scoped to /admin, HttpOnly, SameSite=Strict.
    const consoleCookie = (await admin.cookies(`${node.url}/admin`)).find((c) => c.name === 'tessera_admin');
    expect(consoleCookie).toMatchObject({ path: '/admin', httpOnly: true, sameSite: 'Strict' });
    expect((await admin.cookies(`${node.url}/account`)).some((c) => c.name === 'tessera_admin')).toBe(false);
    await checkPage(page, 'admin-overview');
    // Keyboard: Tab reaches the navigation, and the focused link shows a visible outline.
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { tag: el.tagName, text: el.textContent, outline: style.outlineStyle, width: style.outlineWidth };
    });
    expect(focused).toMatchObject({ tag: 'A', text: 'Overview', outline: 'solid', width: '3px' });

    // Find the user.
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Search by username or email').fill('DOR');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL((url) => url.pathname === '/admin/users' && url.searchParams.get('q') === 'DOR');
    await checkPage(page, 'admin-users');
    await page.getByRole('link', { name: 'dora', exact: true }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/admin/users/usr_'));
    await checkPage(page, 'admin-user');

    // End the session the two apps joined.
    await page.locator(`form[action="/admin/sessions/${handle}/end"] button`).click();
    await page.waitForURL(`${node.url}/admin/sessions/${handle}?done=ended`);
    const statusOf = (clientId: string) => page.locator('tr', { has: page.getByRole('cell', { name: clientId === forum.clientId ? 'Forum' : 'Shop', exact: true }) }).locator('[data-status]').getAttribute('data-status');
    await waitFor('the forum\'s delivery delivered and the shop\'s dead', async () => {
      await page.reload();
      return (await statusOf(forum.clientId)) === 'delivered' && (await statusOf(shop.clientId)) === 'dead' ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    expect(await page.locator('tr', { has: page.getByRole('cell', { name: 'Shop', exact: true }) }).innerText()).toMatch(/dead\s+last error: .*503/);
    expect(forumRp.received.length).toBe(forumBefore + 1);
    await checkPage(page, 'admin-session');
    // The user's browser is signed out.
    await user.page.goto(`${node.url}/account`);
    await user.page.waitForURL((url) => url.pathname === '/login');

    // The shop is back: retry its dead delivery from the console until it is delivered.
    shopRp.answer = () => ({ status: 204 });
    await page.getByRole('button', { name: 'Retry now: the delivery to Shop' }).click();
    await page.waitForURL(`${node.url}/admin/sessions/${handle}?done=retried`);
    await waitFor('the shop\'s delivery delivered after the retry', async () => {
      await page.reload();
      return (await statusOf(shop.clientId)) === 'delivered' ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    expect(shopRp.received.filter((r) => r.method === 'POST').length).toBe(2);
    expect(await page.getByRole('button', { name: /Retry/ }).count()).toBe(0);
    await checkPage(page, 'admin-session-delivered', { screenshot: false });

    // The apps, one app, the revocation log (filtered), the overview again.
    await page.getByRole('link', { name: 'Apps' }).click();
    await page.waitForURL(`${node.url}/admin/apps`);
    await checkPage(page, 'admin-apps');
    await page.getByRole('link', { name: 'Shop', exact: true }).click();
    await checkPage(page, 'admin-app');
    // A bad origin: the error is next to the field, tied to it.
    await page.getByLabel('Allowed origins (one per line)').fill('shop.example');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.locator('#f-allowed_origins-error').count()).toBe(1);
    expect(await page.getByLabel('Allowed origins (one per line)').getAttribute('aria-describedby')).toContain('f-allowed_origins-error');
    await checkPage(page, 'admin-app-error', { screenshot: false });
    await page.getByRole('link', { name: 'Revocation log' }).click();
    await page.getByLabel('Reason').selectOption('admin_revoked');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((url) => url.pathname === '/admin/revocations' && url.searchParams.get('reason') === 'admin_revoked');
    expect(await page.getByRole('link', { name: handle }).count()).toBe(1);
    await checkPage(page, 'admin-revocations');
    await page.getByRole('link', { name: 'Overview' }).click();
    expect(Number(await page.locator('[data-count="revocations-hour"]').innerText())).toBeGreaterThanOrEqual(2);
    await checkPage(page, 'admin-overview-after', { screenshot: false });

    // Sign out of the console: its pages ask for the token again.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${node.url}/admin/login?signed_out=1`);
    await page.goto(`${node.url}/admin/users`);
    await page.waitForURL(`${node.url}/admin/login`);

    await admin.close();
    await user.close();
    expect(checked.slice(first)).toHaveLength(12);
  });

  it('an operator sees the Shared Signals streams, sends a dead SET again from the stream\'s page, pauses the stream and sets its audience', async () => {
    // A receiver client with a push stream; its endpoint refuses SETs (400 without an `err`
    // code: not retried, dead at once) until the test fixes it.
    const pushCredential = `Bearer siem-push-credential-${randomBytes(16).toString('hex')}`;
    siem = await createReceiver({ answer: () => ({ status: 400 }) });
    const receiverApp = await registerApp(node.url, { name: 'SIEM', grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
    const issued = await clientCredentialsToken(`${node.url}/oidc/token`, receiverApp.clientId, receiverApp.clientSecret, 'ssf.manage');
    expect(issued.status).toBe(200);
    const created = await call(String(issued.body.access_token), 'POST', `${node.url}/ssf/streams`, { events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'], delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: siem.url, authorization_header: pushCredential } });
    expect(created.status).toBe(201);
    const streamId = String(created.body.stream_id);
    const userId = await createUser(node.url, 'signal-user');
    const session = await startSession(node.url, forum, userId);
    expect((await callAdmin(node.url, 'DELETE', `/sessions/${session.handle}`)).status).toBe(204);
    await waitFor('the SET refused by the receiver', () => siem.received.find((r) => r.method === 'POST'));

    const admin = await browser.newSession('admin-ssf', { viewport: DESKTOP });
    const { page } = admin;
    await page.goto(`${node.url}/admin/login`);
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in to the console' }).click();
    await page.waitForURL(`${node.url}/admin`);
    await page.getByRole('link', { name: 'Shared Signals' }).click();
    await page.waitForURL(`${node.url}/admin/ssf`);
    const dead = page.locator(`[data-stream="${streamId}"] [data-count="dead"]`);
    await waitFor('the stream listed with one dead SET', async () => {
      await page.reload();
      return (await dead.innerText()) === '1' ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    expect(await page.locator('tr', { has: page.getByRole('link', { name: streamId }) }).innerText()).toMatch(/SIEM[\s\S]*push[\s\S]*enabled[\s\S]*HTTP 400/);
    await checkPage(page, 'admin-ssf');

    await page.getByRole('link', { name: streamId }).click();
    await page.waitForURL(`${node.url}/admin/ssf/${streamId}`);
    expect(await page.locator('[data-event] [data-status]').first().getAttribute('data-status')).toBe('dead');
    await checkPage(page, 'admin-ssf-stream');
    // The receiver is fixed: send the SET again; the push worker delivers it.
    siem.answer = () => ({ status: 202 });
    await page.getByRole('button', { name: /^Send again: the session-revoked/ }).click();
    await page.waitForURL(`${node.url}/admin/ssf/${streamId}?done=retried`);
    await waitFor('the SET delivered after the retry', async () => {
      await page.reload();
      return (await page.locator('[data-event] [data-status]').first().getAttribute('data-status')) === 'delivered' ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 }).catch(async (e) => { throw new Error(`${e} ${JSON.stringify((await callAdmin(node.url, 'GET', `/ssf/streams/${streamId}/events`)).body)} ${(await page.content()).slice(-3000)}`); });
    const pushes = siem.received.filter((r) => r.method === 'POST');
    expect(pushes).toHaveLength(2);
    // The same SET both times (the same jti), with the receiver's credential on each push.
    expect(pushes[1]!.body).toBe(pushes[0]!.body);
    expect(pushes.map((r) => r.headers.authorization)).toEqual([pushCredential, pushCredential]);
    expect(await page.getByRole('button', { name: /^Send again/ }).count()).toBe(0);

    // Pause the stream with a reason.
    await page.getByLabel('Status', { exact: true }).selectOption('paused');
    await page.getByLabel('Reason (optional, sent to the receiver)').fill('receiver maintenance');
    await page.getByRole('button', { name: 'Set the status' }).click();
    await page.waitForURL(`${node.url}/admin/ssf/${streamId}?done=status`);
    expect(await page.locator('dd[data-stream-status]').innerText()).toBe('paused receiver maintenance');
    await checkPage(page, 'admin-ssf-stream-paused', { screenshot: false });
    // Set the audience the receiver checks (as Okta expects its org URL); a bad value first.
    const audience = page.getByLabel('Audience (values separated by spaces)');
    expect(await audience.inputValue()).toBe(receiverApp.clientId);
    await audience.fill(':no-scheme');
    await page.getByRole('button', { name: 'Set the audience' }).click();
    await page.waitForURL(`${node.url}/admin/ssf/${streamId}/audience`);
    expect(await page.locator('#f-aud-error').innerText()).toContain('must be a URI');
    await page.getByLabel('Audience (values separated by spaces)').fill('https://siem.example.test');
    await page.getByRole('button', { name: 'Set the audience' }).click();
    await page.waitForURL(`${node.url}/admin/ssf/${streamId}?done=audience`);
    expect(await page.locator('dd[data-stream-aud]').innerText()).toBe('https://siem.example.test');
    expect((await callAdmin(node.url, 'GET', '/ssf/streams')).body.streams.find((s: { stream_id: string }) => s.stream_id === streamId).aud).toEqual(['https://siem.example.test']);
    // Neither the receiver's credential nor a signed SET is on any of these pages.
    for (const url of [`${node.url}/admin/ssf`, `${node.url}/admin/ssf/${streamId}`]) {
      await page.goto(url);
      const html = await page.content();
      expect(html).not.toContain(pushCredential.slice('Bearer '.length));
      expect(html).not.toContain(pushes[0]!.body.split('.')[2]!);
    }
    await admin.close();
  });
});
