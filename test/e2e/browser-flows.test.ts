// Tessera's browser flows in a real browser (Chromium), laid out as in production: Tessera at
// auth.tessera.test, the example site at site.tessera.test and a forum at
// forum.tessera.test (an app that reads Tessera's cookie, as NodeBB's session-sharing plugin
// does, built from the example apps' shell; the example forum itself is an OpenID Connect
// client, walked in demo.test.ts and seed-scenario.test.ts) (all on 127.0.0.1 through Chromium's --host-resolver-rules), with the
// session cookie and the shared session-sharing cookie on the parent domain, so that
// `Domain=tessera.test` really applies; and a page of an unregistered site at
// app.elsewhere.test. Walked here:
// - the Kratos-style logout: GET /v1/logout/browser, open the logout URL, land on the
//   allow-listed return_to; the same by XHR with Accept: application/json (204);
// - the XHR logout from a registered origin with credentials (the CORS preflight as Chromium
//   sends it), and refused from an unregistered origin with the session left alive;
// - the shared parent-domain cookie as the browser stores it: set on sign-in, cleared on every
//   logout, set again by the login page after an app-only logout (issue 15, point 2);
// - the signed-in page's two sign-out buttons, and every hosted page at a phone's width.
// Any CSP violation or CORS error in the console fails the test, except the one CORS error
// the refused origin is expected to produce.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { loadConfig } from '@tessera/core';
import { buildServer, type TesseraApp } from '@tessera/server';
import { createSqliteStore } from '@tessera/store';
import { startSite } from '@tessera/example-site';
// The example apps' shell (a plain .mjs module, like scripts/demo-setup.mjs in demo.test.ts).
import { startExampleApp } from '../../examples/shared/example-app.mjs';
import type { Page } from 'playwright-core';
import { appSession, clickAndLand, openApp, signInAt, signOutAt } from './support/app-pages.js';
import { findChromium, launchChromium, waitUntil, type BrowserSession, type TestBrowser } from './support/chromium.js';
import { ADMIN_TOKEN, createUser, registerApp, type RegisteredApp } from './support/backchannel.js';
import { findFreePort } from './support/free-port.js';

const chromium = findChromium();

const PASSWORD = 'correct horse battery staple';
const SHARED_SECRET = 'shared-cookie-secret-for-the-browser-tests-0123456789';
const SESSION_COOKIE = 'tessera_session';
const SHARED_COOKIE = 'token';
const FORUM_CLIENT_ID = 'forum';

/** A request as Tessera's HTTP server received it (recorded before any routing). */
interface Received {
  method: string;
  path: string;
  origin: string | undefined;
  requestHeaders: string | undefined;
}

let dataDir: string;
let app: TesseraApp;
let issuer: string;
let local: string;
let siteHome: string;
let forumHome: string;
let elsewhere: string;
let closeApps: Array<() => Promise<void>> = [];
let forumApp: RegisteredApp;
let aliceId: string;
const received: Received[] = [];

async function admin<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${local}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

async function activeHandles(): Promise<string[]> {
  const { body } = await admin<{ sessions: Array<{ handle: string }> }>('GET', `/users/${aliceId}/sessions`);
  return body.sessions.map((s) => s.handle);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-browser-'));
  const [port, sitePort, forumPort, elsewherePort] = await Promise.all([findFreePort(), findFreePort(), findFreePort(), findFreePort()]);
  issuer = `http://auth.tessera.test:${port}`;
  // This process cannot resolve *.tessera.test (only the browser maps them): the test and the
  // apps' servers reach Tessera at 127.0.0.1.
  local = `http://127.0.0.1:${port}`;
  const loaded = loadConfig({
    env: {
      TESSERA_PORT: String(port),
      TESSERA_ISSUER: local,
      TESSERA_DATA_DIR: dataDir,
      TESSERA_COOKIE_SECURE: 'false',
      TESSERA_SHARED_COOKIE: 'true',
      TESSERA_SHARED_COOKIE_SECRET: SHARED_SECRET,
      TESSERA_SHARED_COOKIE_CLIENT_ID: FORUM_CLIENT_ID,
      TESSERA_ADMIN_TOKEN: ADMIN_TOKEN,
      TESSERA_LOG_LEVEL: 'error',
      TESSERA_RATE_LIMIT: 'false',
    },
  });
  // Plain http on names that only the browser maps to 127.0.0.1: the configuration refuses
  // cookies without Secure for any issuer it cannot see is loopback, so the public names are
  // set after validation (production runs https, where none of this applies).
  const config = { ...loaded, issuer, cookie: { ...loaded.cookie, domain: 'tessera.test' } };
  const store = createSqliteStore(join(dataDir, 'tessera.db'));
  await store.migrate();
  ({ app } = await buildServer({ config, store, startWorker: true }));
  // Every request as it reaches the server, preflights included (the browser's view of
  // those is not observable from the page).
  app.server.on('request', (req) => {
    received.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, origin: req.headers.origin, requestHeaders: req.headers['access-control-request-headers'] as string | undefined });
  });
  await app.listen({ port, host: '127.0.0.1' });
  closeApps.push(async () => {
    await app.close();
    await store.close();
  });

  siteHome = `http://site.tessera.test:${sitePort}/`;
  forumHome = `http://forum.tessera.test:${forumPort}/`;
  elsewhere = `http://app.elsewhere.test:${elsewherePort}/`;
  const site = await registerApp(local, { name: 'Site', trusted: false, allowed_origins: [new URL(siteHome).origin], return_urls: [siteHome] });
  forumApp = await registerApp(local, { client_id: FORUM_CLIENT_ID, name: 'Forum', trusted: false, return_urls: [forumHome] });
  const common = { host: '127.0.0.1', tesseraUrl: issuer, tesseraApiUrl: local, log: () => {} };
  const siteServer = await startSite({ ...common, port: sitePort, publicUrl: siteHome.slice(0, -1), clientId: site.clientId, clientSecret: site.clientSecret });
  const forumServer = await startExampleApp({
    ...common, name: 'forum', port: forumPort, publicUrl: forumHome.slice(0, -1), clientId: forumApp.clientId, clientSecret: forumApp.clientSecret,
    signOutLabel: 'Sign out of all apps (server to server)',
    signedOutLine: 'You signed out. The forum asked Tessera, server to server, to end your session at every app.',
    // Server to server, as NodeBB's logout would: the forum names the session by its token.
    async endSession({ token, home }: { token: string; home: string }) {
      await fetch(`${local}/api/v1/logout`, { method: 'POST', headers: { authorization: forumApp.basic, 'content-type': 'application/json' }, body: JSON.stringify({ token, scope: 'session' }) });
      return home;
    },
  });
  closeApps.push(() => siteServer.close(), () => forumServer.close());
  // A page of a site that is not registered with Tessera.
  const other: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Elsewhere</title><h1>Another site</h1>'));
  await new Promise<void>((resolve) => other.listen(elsewherePort, '127.0.0.1', resolve));
  closeApps.push(() => new Promise((resolve) => other.close(() => resolve())));

  aliceId = await createUser(local, 'alice', PASSWORD);
});

afterAll(async () => {
  for (const close of closeApps.reverse()) await close().catch(() => undefined);
  closeApps = [];
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** The forum's `left_at` in the session's app list (null while it is in). */
async function forumMembership(handle: string): Promise<Array<string | null>> {
  const { body } = await admin<{ session: { apps: Array<{ client_id: string; left_at: string | null }> } }>('GET', `/sessions/${handle}`);
  return body.session.apps.filter((a) => a.client_id === FORUM_CLIENT_ID).map((a) => a.left_at);
}

/** The browser's cookies that a request to `url` carries, by name. */
async function cookiesFor(s: BrowserSession, url: string): Promise<Map<string, { value: string; domain: string; httpOnly: boolean; sameSite: string }>> {
  return new Map((await s.cookies(url)).map((c) => [c.name, c]));
}

/** Asserts that the browser holds neither Tessera cookie for any host of the parent domain. */
async function expectCookiesGone(s: BrowserSession): Promise<void> {
  for (const url of [issuer, siteHome, forumHome]) {
    const names = [...(await cookiesFor(s, url)).keys()];
    expect(names, url).not.toContain(SESSION_COOKIE);
    expect(names, url).not.toContain(SHARED_COOKIE);
  }
}

/** Runs `fetch` in the page (as the page's own script would) and returns status and body. */
function pageFetch(page: Page, url: string, init: { method?: string; headers?: Record<string, string>; mode?: 'cors' | 'no-cors' } = {}): Promise<{ status: number; body: string } | { error: string }> {
  return page.evaluate(async ({ url, init }) => {
    try {
      const res = await fetch(url, { credentials: 'include', ...init });
      return { status: res.status, body: res.type === 'opaque' ? '' : await res.text() };
    } catch (error) {
      return { error: String(error) };
    }
  }, { url, init });
}

// A real browser on a shared 2-core machine: a step can take seconds, so more time per test.
describe.skipIf(chromium.skip !== null)('browser flows in Chromium, on a parent domain', { timeout: 120_000 }, () => {
  let browser: TestBrowser;
  const sessions: BrowserSession[] = [];
  beforeAll(async () => {
    browser = await launchChromium(chromium.path!, import.meta.url);
  });
  afterAll(async () => browser?.close());
  afterEach(async () => {
    for (const s of sessions.splice(0)) await s.close();
    // Each test starts with alice signed out everywhere.
    expect((await admin('DELETE', `/users/${aliceId}/sessions`)).status).toBe(200);
  });
  const newSession = async (name: string, options: Parameters<TestBrowser['newSession']>[1] = {}) => {
    const s = await browser.newSession(name, options);
    sessions.push(s);
    return s;
  };

  it('sign-in sets the session and shared cookies on the parent domain, as the browser stores them; the site\'s sign-out clears both', async () => {
    const s = await newSession('parent-domain cookies');
    const handle = await signInAt(s, siteHome, 'alice', PASSWORD, 'sign in at the site');
    for (const url of [siteHome, forumHome, issuer]) {
      const cookies = await cookiesFor(s, url);
      expect(cookies.get(SESSION_COOKIE), url).toMatchObject({ domain: '.tessera.test', httpOnly: true, sameSite: 'Lax' });
      expect(cookies.get(SHARED_COOKIE), url).toMatchObject({ domain: '.tessera.test', httpOnly: true, sameSite: 'Lax' });
    }
    // The JWT the forum's session-sharing plugin reads names alice and this session.
    const claims = decodeJwt((await cookiesFor(s, forumHome)).get(SHARED_COOKIE)!.value);
    expect(claims).toMatchObject({ id: aliceId, username: 'alice', sid: handle });
    expect(await openApp(s, forumHome, 'the forum, same session')).toBe(handle);

    await s.page.goto(siteHome);
    await signOutAt(s, siteHome, 'Sign out of all apps', 'signed out at the site');
    await expectCookiesGone(s);
    expect(await openApp(s, forumHome, 'the forum, signed out')).toBeNull();
  });

  it('server-to-server variant: the forum\'s sign-out button asks Tessera from its server; the session ends for every app', async () => {
    const s = await newSession('server-to-server sign-out');
    const handle = await signInAt(s, siteHome, 'alice', PASSWORD, 'sign in at the site');
    expect(await openApp(s, forumHome, 'the forum, same session')).toBe(handle);
    // The click posts to the forum's own server, which calls POST /api/v1/logout with its
    // client credentials and the session token (scope session): no Tessera page in between.
    await signOutAt(s, forumHome, 'Sign out of all apps (server to server)', 'signed out at the forum, server to server');
    expect(await activeHandles()).not.toContain(handle);
    // The browser still carries the parent-domain session cookie (Tessera never answered the
    // browser), but it names an ended session: Tessera's own page asks for a new sign-in.
    await s.page.goto(`${issuer}/login`);
    expect(await s.page.getByRole('button', { name: 'Sign in', exact: true }).count()).toBe(1);
    await s.step('Tessera: signed out');
    expect(await openApp(s, forumHome, 'the forum, still signed out')).toBeNull();
  });

  it('Kratos-style: GET /v1/logout/browser, open the logout URL, land on the allow-listed return_to', async () => {
    const s = await newSession('logout URL');
    const handle = await signInAt(s, siteHome, 'alice', PASSWORD);
    // The site's page asks for a logout URL with the browser's credentials (CORS, registered origin).
    const issued = await pageFetch(s.page, `${issuer}/v1/logout/browser?return_to=${encodeURIComponent(siteHome)}`);
    expect(issued).toMatchObject({ status: 200 });
    const { logout_url: logoutUrl } = JSON.parse((issued as { body: string }).body) as { logout_url: string };
    expect(logoutUrl.startsWith(`${issuer}/v1/logout?token=`)).toBe(true);
    await s.page.goto(logoutUrl);
    expect(s.page.url()).toBe(siteHome);
    expect(await appSession(s.page)).toBeNull();
    await s.step('back at the site after the logout URL');
    await expectCookiesGone(s);
    expect(await activeHandles()).not.toContain(handle);
  });

  it('Kratos-style by XHR: the logout URL with Accept: application/json answers 204 and clears the cookies', async () => {
    const s = await newSession('logout URL by XHR');
    const handle = await signInAt(s, siteHome, 'alice', PASSWORD);
    const issued = await pageFetch(s.page, `${issuer}/v1/logout/browser?return_to=${encodeURIComponent(siteHome)}`);
    const { logout_url: logoutUrl } = JSON.parse((issued as { body: string }).body) as { logout_url: string };
    const out = await pageFetch(s.page, logoutUrl, { headers: { accept: 'application/json' } });
    expect(out).toEqual({ status: 204, body: '' });
    await expectCookiesGone(s);
    expect(await activeHandles()).not.toContain(handle);
    expect(await openApp(s, siteHome, 'the site after the XHR logout')).toBeNull();
  });

  it('XHR logout from a registered origin: the preflight passes, 204, the session and both cookies end', async () => {
    const s = await newSession('XHR logout, registered origin');
    const handle = await signInAt(s, siteHome, 'alice', PASSWORD);
    const from = received.length;
    const out = await pageFetch(s.page, `${issuer}/v1/logout`, { method: 'POST', headers: { 'X-Tessera-CSRF': '1' } });
    expect(out).toEqual({ status: 204, body: '' });
    // Chromium sent the preflight (the custom header requires it), then the POST.
    const seen = received.slice(from).filter((r) => r.path === '/v1/logout');
    expect(seen.map((r) => [r.method, r.origin])).toEqual([['OPTIONS', new URL(siteHome).origin], ['POST', new URL(siteHome).origin]]);
    expect(seen[0]!.requestHeaders).toMatch(/x-tessera-csrf/i);
    await expectCookiesGone(s);
    expect(await activeHandles()).not.toContain(handle);
    expect(await openApp(s, forumHome, 'the forum after the XHR logout')).toBeNull();
  });

  it('XHR logout from an unregistered origin is refused by the preflight; the session stays alive', async () => {
    const s = await newSession('XHR logout, unregistered origin');
    const handle = await signInAt(s, siteHome, 'alice', PASSWORD);
    await s.page.goto(elsewhere);
    // The one console error this test provokes: Chromium refusing the preflight.
    s.expectProblem(/CORS policy/);
    const from = received.length;
    const refused = await pageFetch(s.page, `${issuer}/v1/logout`, { method: 'POST', headers: { 'X-Tessera-CSRF': '1' } });
    expect(refused).toEqual({ error: 'TypeError: Failed to fetch' });
    // A simple POST (no preflight, no readable answer) is not sent the SameSite=Lax cookie
    // cross-site, and Tessera refuses its origin anyway.
    const simple = await pageFetch(s.page, `${issuer}/v1/logout`, { method: 'POST', mode: 'no-cors' });
    expect(simple).toEqual({ status: 0, body: '' });
    await s.step('the other site, after its refused attempts');
    const seen = await waitUntil('both requests at Tessera', () => {
      const list = received.slice(from).filter((r) => r.path === '/v1/logout');
      return list.length >= 2 ? list : undefined;
    });
    // The preflight reached Tessera and got no CORS grant, so the POST with the header was
    // never sent; only the simple one was.
    expect(seen.map((r) => [r.method, r.origin])).toEqual([['OPTIONS', new URL(elsewhere).origin], ['POST', new URL(elsewhere).origin]]);
    expect(await activeHandles()).toContain(handle);
    expect(await openApp(s, siteHome, 'the site, still signed in')).toBe(handle);
    expect((await cookiesFor(s, forumHome)).has(SHARED_COOKIE)).toBe(true);
  });

  it('after an app-only logout (the forum dropped its part), signing in at the forum again sets the shared cookie again', async () => {
    const s = await newSession('sign in again after an app-only logout');
    const handle = await signInAt(s, forumHome, 'alice', PASSWORD, 'sign in at the forum');
    const token = (await cookiesFor(s, forumHome)).get(SESSION_COOKIE)!.value;
    // What a NodeBB logout does: the forum leaves the session (server to server, scope
    // "app") and the shared cookie is cleared in the browser; Tessera's session lives on.
    const left = await fetch(`${local}/api/v1/logout`, { method: 'POST', headers: { authorization: forumApp.basic, 'content-type': 'application/json' }, body: JSON.stringify({ token, scope: 'app' }) });
    expect(left.status).toBe(200);
    expect(await forumMembership(handle)).toEqual([expect.any(String)]);
    await s.context.clearCookies({ name: SHARED_COOKIE });
    expect((await cookiesFor(s, forumHome)).has(SHARED_COOKIE)).toBe(false);

    // The forum's "Sign in" goes through the login page, which answers 303 at once for the
    // live session, and now sets the cookie again on the way.
    await s.page.goto(`${issuer}/login?return_to=${encodeURIComponent(forumHome)}&client_id=${FORUM_CLIENT_ID}`);
    expect(s.page.url()).toBe(forumHome);
    await s.step('back at the forum, signed in again');
    const shared = (await cookiesFor(s, forumHome)).get(SHARED_COOKIE);
    expect(shared).toMatchObject({ domain: '.tessera.test', httpOnly: true });
    expect(decodeJwt(shared!.value).sid).toBe(handle);
    // The forum joined the session again, so its next end reaches the forum.
    expect(await forumMembership(handle)).toEqual([null]);
  });

  it('the signed-in page: "Sign out of all apps on this device" ends this browser\'s session only; "Sign out all my devices" ends every one', async () => {
    const laptop = await newSession('signed-in page, laptop', { userAgent: 'e2e laptop' });
    const phone = await newSession('signed-in page, phone', { userAgent: 'e2e phone', viewport: { width: 390, height: 844 } });
    const laptopHandle = await signInAt(laptop, siteHome, 'alice', PASSWORD, 'laptop sign-in');
    const phoneHandle = await signInAt(phone, siteHome, 'alice', PASSWORD, 'phone sign-in');

    await laptop.page.goto(`${issuer}/login`);
    await laptop.step('signed-in page');
    await clickAndLand(laptop.page, laptop.page.getByRole('button', { name: 'Sign out of all apps on this device', exact: true }), `${issuer}/login?signed_out=device`);
    await expect.poll(() => laptop.page.getByRole('status').innerText()).toBe('You are signed out of all apps on this device.');
    await laptop.step('signed out of all apps on this device');
    await expectCookiesGone(laptop);
    expect(await activeHandles()).toEqual([phoneHandle]);
    expect(await openApp(phone, siteHome)).toBe(phoneHandle);
    expect(laptopHandle).not.toBe(phoneHandle);

    await signInAt(laptop, siteHome, 'alice', PASSWORD, 'laptop signs in again');
    await laptop.page.goto(`${issuer}/login`);
    await clickAndLand(laptop.page, laptop.page.getByRole('button', { name: 'Sign out all my devices', exact: true }), `${issuer}/login?signed_out=all`);
    await expect.poll(() => laptop.page.getByRole('status').innerText()).toBe('You are signed out on all your devices.');
    await laptop.step('signed out on all devices');
    await expectCookiesGone(laptop);
    expect(await activeHandles()).toEqual([]);
    expect(await openApp(phone, siteHome, 'the phone, signed out too')).toBeNull();
  });

  it('every hosted page fits a 390 px phone screen (no sideways scrolling)', async () => {
    const s = await newSession('phone width', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const width = async (label: string) => {
      await s.step(label);
      return s.page.evaluate(() => ({ document: document.documentElement.scrollWidth, main: Math.ceil(document.querySelector('main')!.getBoundingClientRect().right) }));
    };
    await s.page.goto(`${issuer}/login?return_to=${encodeURIComponent(siteHome)}`);
    expect(await width('login page')).toEqual({ document: 390, main: expect.any(Number) });
    expect((await width('login page')).main).toBeLessThanOrEqual(390);
    // The login page with an error (a long unbroken username echoed back).
    await s.page.getByLabel('Username or email').fill(`alice${'x'.repeat(80)}@example.test`);
    await s.page.getByLabel('Password').fill('wrong password');
    await s.page.getByRole('button', { name: 'Sign in' }).click();
    await s.page.getByRole('alert').waitFor();
    const withError = await width('login page with an error');
    expect(withError.document).toBe(390);
    expect(withError.main).toBeLessThanOrEqual(390);
    // A message page and the signed-in page.
    await s.page.goto(`${issuer}/login?return_to=${encodeURIComponent('https://not-registered.example/')}`);
    expect((await width('message page')).document).toBe(390);
    await signInAt(s, siteHome, 'alice', PASSWORD, 'phone sign-in');
    await s.page.goto(`${issuer}/login`);
    const signedIn = await width('signed-in page');
    expect(signedIn.document).toBe(390);
    expect(signedIn.main).toBeLessThanOrEqual(390);
  });
});
