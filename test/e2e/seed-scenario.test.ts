// The seed scenario, end to end over real HTTP: Tessera, an example site (Tessera's own API)
// and an example forum (a stock OpenID Connect client with sessions of its own) run on
// 127.0.0.1 on three ports; a scripted browser (fetch + cookie jar) signs in once, is signed
// in at both apps, and every way of logging out ends it at both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readConfig, startServer, type RunningServer } from '@tessera/server';
import { createSqliteStore } from '@tessera/store';
import { startSite } from '@tessera/example-site';
import { startForum } from '@tessera/example-forum';
import { createBrowser, type Browser, type Page } from './support/browser.js';
import { findFreePort } from './support/free-port.js';

const ADMIN_TOKEN = `e2e-admin-${'x'.repeat(40)}`;
const PASSWORD = 'correct horse battery staple';
const SESSION_COOKIE = 'tessera_session';

interface SessionJson {
  handle: string;
  active: boolean;
  end_reason: string | null;
  ended_by: string | null;
  user_agent: string | null;
  apps: Array<{ client_id: string }>;
}

let dataDir: string;
let tessera: RunningServer;
let site: { url: string; close(): Promise<void> };
let forum: { url: string; close(): Promise<void> };
let siteClientId: string;
let forumClientId: string;
let aliceId: string;

async function admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${tessera.url}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

async function sessionsOf(userId: string, includeEnded = false): Promise<SessionJson[]> {
  const { status, body } = await admin<{ sessions: SessionJson[] }>('GET', `/users/${userId}/sessions${includeEnded ? '?include_ended=true' : ''}`);
  expect(status).toBe(200);
  return body.sessions;
}

/** The session handle an app page shows, or null when the page says "Not signed in". */
function signedInHandle(page: Page): string | null {
  expect(page.status).toBe(200);
  if (page.html.includes('Not signed in.')) return null;
  expect(page.html).toContain('Signed in as <strong>alice</strong>');
  const handle = /data-session="([^"]+)"/.exec(page.html)?.[1];
  expect(handle).toBeTruthy();
  return handle!;
}

/**
 * Signs in at the forum through OpenID Connect: "Sign in" goes to Tessera's authorization
 * endpoint, which shows the login form only without a Tessera session and the consent page
 * only the first time; then back at the forum's home.
 */
async function signInAtForum(browser: Browser): Promise<Page> {
  const start = await browser.open(`${forum.url}/`);
  expect(signedInHandle(start)).toBeNull();
  let page = await browser.open(browser.linkHref(start, 'Sign in'));
  if (page.html.includes('name="password"')) page = await browser.submitForm(page, { action: '/login', fields: { username: 'alice', password: PASSWORD } });
  if (page.html.includes('action="/oidc/consent"')) page = await browser.submitForm(page, { action: '/oidc/consent', fields: { decision: 'allow' } });
  expect(page.url).toBe(`${forum.url}/`);
  return page;
}

/** The forum learns of an end only from its logout token: waits (bounded) until `url` says signed out. */
async function untilSignedOut(browser: Browser, url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (signedInHandle(await browser.open(url)) !== null) {
    if (Date.now() > deadline) throw new Error(`${url} still signed in`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Opens `appUrl`, follows its "Sign in" link to Tessera, submits the login form. */
async function signInThrough(browser: Browser, appUrl: string): Promise<Page> {
  const start = await browser.open(`${appUrl}/`);
  expect(signedInHandle(start)).toBeNull();
  const link = new URL(browser.linkHref(start, 'Sign in'));
  expect(`${link.origin}${link.pathname}`).toBe(`${tessera.url}/login`);
  expect(link.searchParams.get('return_to')).toBe(`${appUrl}/`);
  const login = await browser.open(link.href);
  expect(login.status).toBe(200);
  expect(login.html).toContain('name="csrf"');
  return browser.submitForm(login, { action: '/login', fields: { username: 'alice', password: PASSWORD } });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-e2e-'));
  const port = await findFreePort();
  const config = readConfig({
    TESSERA_PORT: String(port),
    TESSERA_DATA_DIR: dataDir,
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_ADMIN_TOKEN: ADMIN_TOKEN,
    TESSERA_LOG_LEVEL: 'error',
  });
  tessera = await startServer(config, { print: () => {} });

  // Register both apps (untrusted: they only read sessions and log out), start them, then
  // allow-list the site's home as a return URL and give the forum its OpenID Connect client
  // metadata, now that their ports are known.
  const registered: Array<{ client_id: string; client_secret: string }> = [];
  for (const name of ['Example site', 'Example forum']) {
    const { status, body } = await admin<{ app: { client_id: string }; client_secret: string }>('POST', '/apps', { name, trusted: false });
    expect(status).toBe(201);
    registered.push({ client_id: body.app.client_id, client_secret: body.client_secret });
  }
  const [siteApp, forumApp] = registered as [(typeof registered)[0], (typeof registered)[0]];
  siteClientId = siteApp.client_id;
  forumClientId = forumApp.client_id;
  site = await startSite({ port: 0, tesseraUrl: tessera.url, clientId: siteApp.client_id, clientSecret: siteApp.client_secret });
  forum = await startForum({ port: 0, tesseraUrl: tessera.url, clientId: forumApp.client_id, clientSecret: forumApp.client_secret });
  expect((await admin('PATCH', `/apps/${siteClientId}`, { return_urls: [`${site.url}/`] })).status).toBe(200);
  expect((await admin('PATCH', `/apps/${forumClientId}`, {
    redirect_uris: [`${forum.url}/callback`], post_logout_redirect_uris: [`${forum.url}/`],
    backchannel_logout_uri: `${forum.url}/backchannel-logout`, backchannel_logout_session_required: true, id_token_signed_response_alg: 'EdDSA',
  })).status).toBe(200);

  const created = await admin<{ user: { id: string } }>('POST', '/users', { username: 'alice', email: 'alice@example.test', password: PASSWORD });
  expect(created.status).toBe(201);
  aliceId = created.body.user.id;
});

afterAll(async () => {
  await Promise.allSettled([site?.close(), forum?.close()]);
  await tessera?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// Each scenario starts with alice signed out everywhere, whatever the previous one left.
beforeEach(async () => {
  expect((await admin('DELETE', `/users/${aliceId}/sessions`)).status).toBe(200);
});

describe('seed scenario: one login, one session, logout everywhere', () => {
  it('signs in once for both apps and logs out of both from the site (browser flow)', async () => {
    const browser = createBrowser({ userAgent: 'e2e laptop' });
    const back = await signInThrough(browser, site.url);

    // Tessera answered the form with a 303 back to the site's home.
    expect(back.hops.map((h) => [h.method, h.status])).toEqual([['POST', 303], ['GET', 200]]);
    expect(back.url).toBe(`${site.url}/`);
    const siteHandle = signedInHandle(back);
    expect(siteHandle).not.toBeNull();
    const cookie = browser.jar.get(SESSION_COOKIE, site.url)!;
    expect(cookie.httpOnly).toBe(true);
    // The login CSRF cookie is scoped to /login and spent: the apps never see it.
    expect(browser.jar.headerFor(`${site.url}/`)).not.toContain('tessera_csrf');

    // The forum signs in through OpenID Connect on the same session, without a second login.
    const forumPage = await signInAtForum(browser);
    expect(forumPage.hops.some((h) => h.url.startsWith(`${tessera.url}/login`))).toBe(false);
    expect(signedInHandle(forumPage)).toBe(siteHandle);
    const active = await sessionsOf(aliceId);
    expect(active.map((s) => s.handle)).toEqual([siteHandle]);
    // Both apps joined the one session: the site at sign-in, the forum when it redeemed its code.
    expect(active[0]!.apps.map((a) => a.client_id).sort()).toEqual([siteClientId, forumClientId].sort());
    expect(active[0]!.user_agent).toBe('e2e laptop');

    // The site's sign-out form is protected by its own CSRF check: a post without the
    // form's token, or from another origin (the forum's), is refused and ends nothing.
    const home = await browser.open(`${site.url}/`);
    const forged = await browser.submitForm(home, { action: '/logout', fields: { csrf: 'forged' } });
    expect(forged.status).toBe(403);
    const crossOrigin = await fetch(`${site.url}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: browser.jar.headerFor(`${site.url}/logout`), origin: forum.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: /name="csrf" value="([^"]+)"/.exec(home.html)![1]! }).toString(),
    });
    expect(crossOrigin.status).toBe(403);
    expect((await sessionsOf(aliceId)).map((s) => s.handle)).toEqual([siteHandle]);

    // Sign out at the site: 303 to Tessera's logout URL, 303 back to the site's home.
    const out = await browser.submitForm(home, { action: '/logout' });
    expect(out.hops.map((h) => [h.method, new URL(h.url).origin + new URL(h.url).pathname, h.status])).toEqual([
      ['POST', `${site.url}/logout`, 303],
      ['GET', `${tessera.url}/v1/logout`, 303],
      ['GET', `${site.url}/`, 200],
    ]);
    expect(signedInHandle(out)).toBeNull();
    // Tessera cleared its cookie in the browser.
    expect(browser.jar.get(SESSION_COOKIE, site.url)).toBeUndefined();

    // The forum: its logout token ends its own session of that Tessera session.
    await untilSignedOut(browser, `${forum.url}/`);
    const whoami = await fetch(`${tessera.url}/v1/whoami`, { headers: { 'x-session-token': cookie.value } });
    expect(whoami.status).toBe(401);
    expect(((await whoami.json()) as { error: string }).error).toBe('UNAUTHENTICATED');

    // The session is marked ended by the user's logout, and the revocation log says so.
    expect(await sessionsOf(aliceId)).toEqual([]);
    const ended = (await sessionsOf(aliceId, true)).find((s) => s.handle === siteHandle)!;
    expect(ended).toMatchObject({ active: false, end_reason: 'logout', ended_by: 'user' });
    const store = createSqliteStore(join(dataDir, 'tessera.db'));
    try {
      const log = (await store.listRevocations(0, 1000)).filter((e) => e.sid === siteHandle);
      expect(log.map((e) => [e.reason, e.sub, e.app])).toEqual([['logout', aliceId, null]]);
    } finally {
      await store.close();
    }
  });

  it('ends alice\'s sessions on three devices with one admin call, at both apps', async () => {
    const devices = ['phone', 'laptop', 'tablet'].map((name) => createBrowser({ userAgent: `e2e ${name}` }));
    const handles: string[] = [];
    for (const device of devices) {
      const back = await signInThrough(device, site.url);
      const handle = signedInHandle(back)!;
      expect(handle).not.toBeNull();
      expect(signedInHandle(await signInAtForum(device))).toBe(handle);
      handles.push(handle);
    }
    expect(new Set(handles).size).toBe(3);
    expect((await sessionsOf(aliceId)).map((s) => s.user_agent).sort()).toEqual(['e2e laptop', 'e2e phone', 'e2e tablet']);

    const { status, body } = await admin<{ revoked: string[] }>('DELETE', `/users/${aliceId}/sessions`);
    expect(status).toBe(200);
    expect([...body.revoked].sort()).toEqual([...handles].sort());

    for (const device of devices) {
      // The cookie is still in each jar (nobody told the browsers), yet both apps say no.
      expect(device.jar.get(SESSION_COOKIE, site.url)).toBeDefined();
      expect(signedInHandle(await device.open(`${site.url}/`))).toBeNull();
      // A user-wide end: the forum asked for sid, so it gets one logout token per session.
      await untilSignedOut(device, `${forum.url}/`);
    }
    const ended = await sessionsOf(aliceId, true);
    for (const handle of handles) expect(ended.find((s) => s.handle === handle)).toMatchObject({ active: false, end_reason: 'admin_revoked', ended_by: 'admin' });
  });

  it('signs in at the forum through OpenID Connect and ends the session from there (RP-initiated logout); the site sees it', async () => {
    const browser = createBrowser({ userAgent: 'e2e desktop' });
    const back = await signInAtForum(browser);
    // No Tessera session yet: the authorization endpoint sent the browser to the login page.
    expect(back.hops.some((h) => h.url.startsWith(`${tessera.url}/login`))).toBe(true);
    const handle = signedInHandle(back)!;
    expect(signedInHandle(await browser.open(`${site.url}/`))).toBe(handle);
    const [session] = await sessionsOf(aliceId);
    expect(session!.apps.map((a) => a.client_id)).toContain(forumClientId);

    // A forged post (no CSRF token) is refused and ends nothing.
    const forumHome = await browser.open(`${forum.url}/`);
    expect((await browser.submitForm(forumHome, { action: '/logout', fields: { csrf: '' } })).status).toBe(403);
    expect(signedInHandle(await browser.open(`${site.url}/`))).toBe(handle);

    const out = await browser.submitForm(forumHome, { action: '/logout' });
    // Through Tessera's end-session endpoint (id_token_hint, registered post-logout URI).
    expect(out.hops.map((h) => [h.method, new URL(h.url).origin + new URL(h.url).pathname, h.status])).toEqual([
      ['POST', `${forum.url}/logout`, 303],
      ['GET', `${tessera.url}/oidc/logout`, 303],
      ['GET', `${forum.url}/`, 200],
    ]);
    expect(signedInHandle(out)).toBeNull();
    // Tessera ended the session and cleared its cookie: the site is signed out too.
    expect(browser.jar.get(SESSION_COOKIE, site.url)).toBeUndefined();
    expect(signedInHandle(await browser.open(`${site.url}/`))).toBeNull();

    const ended = (await sessionsOf(aliceId, true)).find((s) => s.handle === handle);
    expect(ended).toMatchObject({ active: false, end_reason: 'logout', ended_by: `app:${forumClientId}` });
    // Logging out again with the stale page is harmless (the forum has no session left).
    const again = await browser.submitForm(forumHome, { action: '/logout' });
    expect(again.hops.map((h) => h.status)).toEqual([303, 200]);
    expect(signedInHandle(again)).toBeNull();
  });
});
