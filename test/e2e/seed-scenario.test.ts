// The seed scenario, end to end in a real browser (Chromium): Tessera, an example site
// (Tessera's own API) and an example forum (a stock OpenID Connect client with sessions of
// its own) run on 127.0.0.1 on three ports; the browser signs in once, is signed in at both
// apps, and every way of logging out ends it at both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readConfig, startServer, type RunningServer } from '@tessera/server';
import { createSqliteStore } from '@tessera/store';
import { startSite } from '@tessera/example-site';
import { startForum } from '@tessera/example-forum';
import type { Response as BrowserResponse } from 'playwright-core';
import { appSession, clickAndLand, openApp, signInWithOidc, submitLoginForm } from './support/app-pages.js';
import { findChromium, launchChromium, type BrowserSession, type TestBrowser } from './support/chromium.js';
import { findFreePort } from './support/free-port.js';

const chromium = findChromium();

const ADMIN_TOKEN = `e2e-admin-${'x'.repeat(40)}`;
const PASSWORD = 'correct horse battery staple';
const SESSION_COOKIE = 'tessera_session';
// The forum's own session cookie (an OpenID Connect client keeps sessions of its own).
const FORUM_COOKIE = 'forum_session';

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

/**
 * Opens `appUrl`, follows its "Sign in" link to Tessera, submits the login form, and lands
 * back at the app. Returns the handle the app shows and the responses of the way back.
 */
async function signInThrough(session: BrowserSession, appUrl: string): Promise<{ handle: string; hops: Array<[string, string, number]> }> {
  const { page } = session;
  expect(await openApp(session, `${appUrl}/`, 'app, signed out')).toBeNull();
  const link = new URL((await page.getByRole('link', { name: 'Sign in' }).getAttribute('href'))!);
  expect(`${link.origin}${link.pathname}`).toBe(`${tessera.url}/login`);
  expect(link.searchParams.get('return_to')).toBe(`${appUrl}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/login');
  expect(await page.locator('input[name="csrf"]').count()).toBe(1);
  const hops: Array<[string, string, number]> = [];
  const onResponse = (r: BrowserResponse) => {
    if (r.request().isNavigationRequest()) hops.push([r.request().method(), r.url(), r.status()]);
  };
  page.on('response', onResponse);
  await submitLoginForm(session, 'alice', PASSWORD, 'sign in', `${appUrl}/`);
  page.off('response', onResponse);
  const handle = await appSession(page);
  await session.step('back at the app, signed in');
  expect(handle).toMatch(/^ses_/);
  return { handle: handle!, hops };
}

/**
 * The forum learns of an end only from its logout token (it never asks Tessera on page
 * views): waits (bounded) until its page in this browser says signed out.
 */
async function untilForumSignedOut(session: BrowserSession): Promise<void> {
  await expect.poll(() => openApp(session, `${forum.url}/`), { timeout: 10_000 }).toBeNull();
  await session.step('forum, signed out');
}

/** Navigation responses while `action` runs (method, URL without query, status). */
async function navigations(session: BrowserSession, action: () => Promise<void>): Promise<Array<[string, string, number]>> {
  const hops: Array<[string, string, number]> = [];
  const onResponse = (r: BrowserResponse) => {
    if (r.request().isNavigationRequest()) hops.push([r.request().method(), r.url().split('?')[0]!, r.status()]);
  };
  session.page.on('response', onResponse);
  try {
    await action();
  } finally {
    session.page.off('response', onResponse);
  }
  return hops;
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

// A real browser on a shared 2-core machine: a step can take seconds, so more time per test.
describe.skipIf(chromium.skip !== null)('seed scenario in Chromium: one login, one session, logout everywhere', { timeout: 120_000 }, () => {
  let browser: TestBrowser;
  const sessions: BrowserSession[] = [];
  beforeAll(async () => {
    browser = await launchChromium(chromium.path!, import.meta.url);
  });
  afterAll(async () => browser?.close());
  // Each context is checked as it closes: any CSP violation or CORS error fails the test.
  afterEach(async () => {
    for (const s of sessions.splice(0)) await s.close();
  });
  const newSession = async (name: string, userAgent: string) => {
    const s = await browser.newSession(name, { userAgent });
    sessions.push(s);
    return s;
  };

  it('signs in once for both apps and logs out of both from the site (browser flow)', async () => {
    const s = await newSession('site: sign in, sign out', 'e2e laptop');
    const back = await signInThrough(s, site.url);

    // Tessera answered the form with a 303 back to the site's home.
    expect(back.hops).toEqual([['POST', `${tessera.url}/login`, 303], ['GET', `${site.url}/`, 200]]);
    expect(s.page.url()).toBe(`${site.url}/`);
    const siteHandle = back.handle;
    const cookie = (await s.cookies(site.url)).find((c) => c.name === SESSION_COOKIE)!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', domain: '127.0.0.1' });
    // The login CSRF cookie is scoped to /login and spent: the apps never see it.
    expect((await s.cookies(`${site.url}/`)).map((c) => c.name)).not.toContain('tessera_csrf');

    // The forum signs in through OpenID Connect on the same session, without a second login
    // (Tessera asks once whether the forum, which is not trusted, may sign alice in).
    const forumSignIn = await signInWithOidc(s, `${forum.url}/`, 'alice', undefined, 'forum, same session');
    expect(forumSignIn.stops).not.toContain('login');
    expect(forumSignIn.handle).toBe(siteHandle);
    const active = await sessionsOf(aliceId);
    expect(active.map((x) => x.handle)).toEqual([siteHandle]);
    // Both apps joined the one session: the site at sign-in, the forum when it redeemed its code.
    expect(active[0]!.apps.map((a) => a.client_id).sort()).toEqual([siteClientId, forumClientId].sort());
    expect(active[0]!.user_agent).toBe('e2e laptop');

    // The site's sign-out form is protected by its own CSRF check: a post without the
    // form's token, or from another origin (the forum's), is refused and ends nothing.
    // (Forged posts are sent from this test's server side: a real browser page would not
    // send them from the site's own page.)
    await s.page.goto(`${site.url}/`);
    const csrf = (await s.page.locator('form[action="/logout"] input[name="csrf"]').getAttribute('value'))!;
    const cookieHeader = `${SESSION_COOKIE}=${cookie.value}`;
    for (const forged of [{ origin: site.url, csrf: 'forged' }, { origin: forum.url, csrf }]) {
      const res = await fetch(`${site.url}/logout`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: cookieHeader, origin: forged.origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: forged.csrf }).toString(),
      });
      expect(res.status).toBe(403);
    }
    expect((await sessionsOf(aliceId)).map((x) => x.handle)).toEqual([siteHandle]);

    // Sign out at the site: 303 to Tessera's logout URL, 303 back to the site's home.
    const outHops = await navigations(s, () => clickAndLand(s.page, s.page.getByRole('button', { name: 'Sign out of all apps', exact: true }), `${site.url}/`));
    expect(outHops).toEqual([
      ['POST', `${site.url}/logout`, 303],
      ['GET', `${tessera.url}/v1/logout`, 303],
      ['GET', `${site.url}/`, 200],
    ]);
    expect(await appSession(s.page)).toBeNull();
    await s.step('site, signed out');
    // Tessera cleared its cookie in the browser.
    expect((await s.cookies(site.url)).map((c) => c.name)).not.toContain(SESSION_COOKIE);

    // The forum: its logout token ends its own session of that Tessera session.
    await untilForumSignedOut(s);
    const whoami = await fetch(`${tessera.url}/v1/whoami`, { headers: { 'x-session-token': cookie.value } });
    expect(whoami.status).toBe(401);
    expect(((await whoami.json()) as { error: string }).error).toBe('UNAUTHENTICATED');

    // The session is marked ended by the user's logout, and the revocation log says so.
    expect(await sessionsOf(aliceId)).toEqual([]);
    const ended = (await sessionsOf(aliceId, true)).find((x) => x.handle === siteHandle)!;
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
    const devices = await Promise.all(['phone', 'laptop', 'tablet'].map((name) => newSession(`device ${name}`, `e2e ${name}`)));
    const handles: string[] = [];
    for (const device of devices) {
      const { handle } = await signInThrough(device, site.url);
      expect((await signInWithOidc(device, `${forum.url}/`, 'alice', undefined, 'forum, same session')).handle).toBe(handle);
      handles.push(handle);
    }
    expect(new Set(handles).size).toBe(3);
    expect((await sessionsOf(aliceId)).map((x) => x.user_agent).sort()).toEqual(['e2e laptop', 'e2e phone', 'e2e tablet']);

    const { status, body } = await admin<{ revoked: string[] }>('DELETE', `/users/${aliceId}/sessions`);
    expect(status).toBe(200);
    expect([...body.revoked].sort()).toEqual([...handles].sort());

    for (const device of devices) {
      // The cookie is still in each browser (nobody told the browsers), yet both apps say no.
      expect((await device.cookies(site.url)).map((c) => c.name)).toContain(SESSION_COOKIE);
      expect(await openApp(device, `${site.url}/`, 'site after the admin call')).toBeNull();
      // A user-wide end: the forum asked for sid, so it gets one logout token per session.
      await untilForumSignedOut(device);
    }
    const ended = await sessionsOf(aliceId, true);
    for (const handle of handles) expect(ended.find((x) => x.handle === handle)).toMatchObject({ active: false, end_reason: 'admin_revoked', ended_by: 'admin' });
  });

  it('signs in at the forum through OpenID Connect and ends the session from there (RP-initiated logout); the site sees it', async () => {
    const s = await newSession('forum: sign in, RP-initiated logout', 'e2e desktop');
    const { handle, stops } = await signInWithOidc(s, `${forum.url}/`, 'alice', PASSWORD, 'sign in at the forum');
    // No Tessera session yet: the authorization endpoint sent the browser to the login page.
    expect(stops[0]).toBe('login');
    expect(s.page.url()).toBe(`${forum.url}/`);
    expect(await openApp(s, `${site.url}/`)).toBe(handle);
    const [current] = await sessionsOf(aliceId);
    expect(current!.apps.map((a) => a.client_id)).toContain(forumClientId);

    // A forged post (no CSRF token) is refused and ends nothing.
    const cookie = (await s.cookies(forum.url)).find((c) => c.name === FORUM_COOKIE)!;
    const forged = await fetch(`${forum.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: `${FORUM_COOKIE}=${cookie.value}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=' });
    expect(forged.status).toBe(403);
    expect(await openApp(s, `${site.url}/`)).toBe(handle);

    await s.page.goto(`${forum.url}/`);
    const formCsrf = (await s.page.locator('form[action="/logout"] input[name="csrf"]').getAttribute('value'))!;
    const out = await navigations(s, () => clickAndLand(s.page, s.page.getByRole('button', { name: 'Sign out of all apps (OpenID Connect logout)', exact: true }), `${forum.url}/`));
    // Through Tessera's end-session endpoint (id_token_hint, registered post-logout URI).
    expect(out).toEqual([
      ['POST', `${forum.url}/logout`, 303],
      ['GET', `${tessera.url}/oidc/logout`, 303],
      ['GET', `${forum.url}/`, 200],
    ]);
    expect(await appSession(s.page)).toBeNull();
    await s.step('forum, signed out');
    // Tessera ended the session and cleared its cookie: the site is signed out too.
    expect((await s.cookies(site.url)).map((c) => c.name)).not.toContain(SESSION_COOKIE);
    expect(await openApp(s, `${site.url}/`, 'site, signed out')).toBeNull();

    const ended = (await sessionsOf(aliceId, true)).find((x) => x.handle === handle);
    expect(ended).toMatchObject({ active: false, end_reason: 'logout', ended_by: `app:${forumClientId}` });
    // Posting the same sign-out form again with the stale cookie (a second tab) is harmless:
    // the forum has no session left and sends the browser home.
    const again = await fetch(`${forum.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: `${FORUM_COOKIE}=${cookie.value}`, origin: forum.url, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: formCsrf }).toString() });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe(`${forum.url}/`);
    expect(await openApp(s, `${forum.url}/`)).toBeNull();
  });
});
