// The `npm run demo` setup, end to end in a real browser (Chromium): Tessera and the two
// example apps on free ports of 127.0.0.1 with a temp data dir — the site on Tessera's own API
// (caching sign-ins for a minute), the forum a stock OpenID Connect client (openid-client)
// with sessions of its own; both receive back-channel logout. Walked exactly as the README
// and the printed steps tell it: sign in at the site (back on the site, signed in), sign in
// at the forum through OpenID Connect (no second password, a one-time consent, the same
// session), sign out at the site, the forum's next page is signed out, and both apps
// confirmed the logout (admin API and the CLI command the demo prints); the forum's
// RP-initiated logout; signing in a second and a third time. No CSP violation or CORS error
// may appear in the console (the session fails the test on one).
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../packages/server/src/cli/run-cli.js';
import { DEMO_APPS, demoInstructions, startDemo } from '../../scripts/demo-setup.mjs';
import { appSession, clickAndLand, openApp, signInAt, signInWithOidc, signOutAt, statusLine } from './support/app-pages.js';
import { findChromium, launchChromium, type BrowserSession, type TestBrowser } from './support/chromium.js';
import { findFreePort } from './support/free-port.js';

const chromium = findChromium();

type Demo = Awaited<ReturnType<typeof startDemo>>;

interface DeliveryJson {
  client_id: string;
  channel: string;
  status: string;
  sid: string | null;
  last_status: number | null;
}

interface SessionDeliveries {
  handle: string;
  active: boolean;
  deliveries: DeliveryJson[];
  pull_only: string[];
}

let dataDir: string;
let port: number;
let demo: Demo;
const appLog: string[] = [];

async function admin<T>(method: string, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${demo.tesseraUrl}/admin/api${path}`, { method, headers: { authorization: `Bearer ${demo.adminToken}` } });
  return { status: res.status, body: (await res.json()) as T };
}

/** Waits (up to 10 s) until every delivery of the session is settled; returns them. */
async function settledDeliveries(handle: string): Promise<SessionDeliveries> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { status, body } = await admin<SessionDeliveries>('GET', `/sessions/${handle}/deliveries`);
    expect(status).toBe(200);
    if ((body.deliveries.length === 2 && body.deliveries.every((d) => d.status !== 'pending')) || Date.now() > deadline) return body;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function expectBothConfirmed(result: SessionDeliveries, handle: string): void {
  expect(result.active).toBe(false);
  expect(result.pull_only).toEqual([]);
  expect(result.deliveries.map((d) => [d.client_id, d.channel, d.status, d.sid, d.last_status]).sort()).toEqual([
    [DEMO_APPS.forum, 'backchannel', 'delivered', handle, 200],
    [DEMO_APPS.site, 'backchannel', 'delivered', handle, 200],
  ]);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-demo-'));
  port = await findFreePort();
  demo = await startDemo({ port, sitePort: 0, forumPort: 0, dataDir, logLevel: 'error', appLog: (line) => appLog.push(line) });
});

afterAll(async () => {
  await demo?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('prints where everything is and what to do', () => {
    const text = demoInstructions(demo).join('\n');
    for (const part of [demo.tesseraUrl, demo.siteUrl, demo.forumUrl, `alice / ${demo.user.password}`, demo.adminToken, `/admin/api/sessions/<handle>/deliveries`, `TESSERA_DATA_DIR=${dataDir} npm run tessera -- deliveries list --session <handle>`, 'click "Sign out of all apps"']) {
      expect(text).toContain(part);
    }
  });
});

// A real browser on a shared 2-core machine: a step can take seconds, so more time per test.
describe.skipIf(chromium.skip !== null)('npm run demo in Chromium, as the README tells it', { timeout: 120_000 }, () => {
  let browser: TestBrowser;
  let session: BrowserSession | undefined;
  beforeAll(async () => {
    browser = await launchChromium(chromium.path!, import.meta.url);
  });
  afterAll(async () => browser?.close());
  // Each test's context is checked as it closes: any CSP violation or CORS error fails it.
  afterEach(async () => {
    const closing = session;
    session = undefined;
    await closing?.close();
  });
  const newSession = async (name: string) => (session = await browser.newSession(name));

  it('sign in at the site, then at the forum (OpenID Connect, same session); sign out at the site, the forum is signed out; both apps confirmed', async () => {
    const s = await newSession('sign in at the site and the forum, sign out at the site');
    expect(await openApp(s, demo.siteUrl, 'the site, signed out')).toBeNull();
    expect(await statusLine(s.page)).toBe('You are not signed in.');
    // 1. Sign in: back on the site, signed in (the 303 to the site is not blocked by CSP).
    const handle = await signInAt(s, demo.siteUrl, 'alice', demo.user.password, 'sign in at the site');
    expect(s.page.url()).toBe(demo.siteUrl);
    expect(await statusLine(s.page)).toBe(`You are signed in with Tessera as alice: this site joined your session ${handle}.`);
    expect(await s.page.locator('header [data-user]').innerText()).toBe('Alice (alice)');
    // 2. The forum: "Sign in" through OpenID Connect. No second password: Tessera asks once
    // whether the forum may sign alice in, then the forum is signed in to the same session.
    const forum = await signInWithOidc(s, demo.forumUrl, 'alice', undefined, 'sign in at the forum');
    expect(forum.stops).toEqual(['consent']);
    expect(forum.handle).toBe(handle);
    expect(await statusLine(s.page)).toBe(`You signed in with Tessera (OpenID Connect) as alice: the forum joined your session ${handle}.`);
    expect(await s.page.locator('header [data-user]').innerText()).toBe('Alice (alice)');
    const cookie = (await s.cookies(demo.forumUrl)).find((c) => c.name === 'forum_session')!.value;

    // 3. On the site, "Sign out of all apps": through Tessera's logout URL and back.
    await s.page.goto(demo.siteUrl);
    await signOutAt(s, demo.siteUrl, 'Sign out of all apps', 'the site, after "Sign out of all apps"');
    expect(await statusLine(s.page)).toBe('You signed out. Tessera ended your session at every app and cleared its cookie in this browser.');
    expect((await s.cookies(demo.siteUrl)).map((c) => c.name)).not.toContain('tessera_session');

    // 5. Both apps confirmed. The forum learns of the end only from its logout token (it
    // never asks Tessera on page views): once the deliveries are confirmed, it is signed out.
    expectBothConfirmed(await settledDeliveries(handle), handle);
    // 4. Reload the forum: signed out, and it says why.
    expect(await openApp(s, demo.forumUrl, 'the forum, reloaded: signed out')).toBeNull();
    expect(await statusLine(s.page)).toMatch(/^Your session ended elsewhere/);
    // The forum keeps sessions of its own; the back-channel logout token ended the one of
    // this Tessera session, so even a request still carrying the forum's cookie is signed out.
    expect(appLog).toContain(`[forum] back-channel logout from Tessera: session ${handle} ended (1 forum session ended)`);
    const stale = await fetch(demo.forumUrl, { headers: { cookie: `forum_session=${cookie}` } });
    expect(await stale.text()).toContain('data-signed-out');

    // The CLI command the demo prints says the same.
    let stdout = '';
    const code = await runCli(['deliveries', 'list', '--session', handle, '--json'], {
      env: { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: 'silent' },
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: () => true },
      stdin: Readable.from([]),
      signals: new EventEmitter(),
    });
    expect(code).toBe(0);
    expectBothConfirmed(JSON.parse(stdout) as SessionDeliveries, handle);
  });

  it('6. sign out at the forum (RP-initiated logout): the site, which cached the sign-in, is signed out by back-channel logout', async () => {
    const s = await newSession('sign out at the forum, OpenID Connect logout');
    const handle = await signInAt(s, demo.siteUrl, 'alice', demo.user.password, 'sign in at the site');
    // Signed in at Tessera and consent given before: straight back to the forum.
    const forum = await signInWithOidc(s, demo.forumUrl, 'alice', undefined, 'sign in at the forum');
    expect(forum).toEqual({ handle, stops: [] });

    // POST /logout → 303 to Tessera's end-session endpoint (id_token_hint) → 303 back home.
    const hops: Array<[string, string, number]> = [];
    s.page.on('response', (r) => {
      if (r.request().isNavigationRequest()) hops.push([r.request().method(), r.url().split('?')[0]!, r.status()]);
    });
    await signOutAt(s, demo.forumUrl, 'Sign out of all apps (OpenID Connect logout)', 'the forum, after its OpenID Connect logout');
    expect(hops).toEqual([['POST', `${demo.forumUrl}logout`, 303], ['GET', `${demo.tesseraUrl}/oidc/logout`, 303], ['GET', demo.forumUrl, 200]]);
    expect(await statusLine(s.page)).toMatch(/^You signed out\. The forum ended its own session/);
    // Tessera ended the session and cleared its cookie in this browser.
    expect((await s.cookies(demo.siteUrl)).map((c) => c.name)).not.toContain('tessera_session');
    expectBothConfirmed(await settledDeliveries(handle), handle);
    expect(appLog).toContain(`[site] back-channel logout from Tessera: session ${handle} ended (1 cached sign-in dropped)`);
    expect(await openApp(s, demo.siteUrl, 'the site, reloaded: signed out')).toBeNull();
  });

  it('signs in a second and a third time in the same browser, each time back at the app, signed in', async () => {
    const s = await newSession('sign in three times');
    const first = await signInAt(s, demo.siteUrl, 'alice', demo.user.password, 'first sign-in, at the site');
    await signOutAt(s, demo.siteUrl, 'Sign out of all apps', 'first sign-out, at the site');
    const second = await signInAt(s, demo.siteUrl, 'alice', demo.user.password, 'second sign-in, at the site');
    expect((await signInWithOidc(s, demo.forumUrl, 'alice', undefined, 'second sign-in, at the forum')).handle).toBe(second);
    await signOutAt(s, demo.forumUrl, 'Sign out of all apps (OpenID Connect logout)', 'second sign-out, at the forum');
    // The forum's logout ended the Tessera session and cleared its cookie: this time the
    // authorization endpoint sends the browser to the login form.
    const third = await signInWithOidc(s, demo.forumUrl, 'alice', demo.user.password, 'third sign-in, at the forum');
    expect(third.stops).toEqual(['login']);
    expect(new Set([first, second, third.handle]).size).toBe(3);
    expect(await openApp(s, demo.siteUrl, 'the site, signed in by the third session')).toBe(third.handle);
    const { body } = await admin<{ sessions: Array<{ handle: string }> }>('GET', `/users/${demo.user.id}/sessions`);
    expect(body.sessions.map((x) => x.handle)).toEqual([third.handle]);
  });

  it('a second run on the same data reuses the apps and the user, with a new password', async () => {
    const firstPassword = demo.user.password;
    await demo.close();
    // Another port: this test process's HTTP client may still hold keep-alive sockets to
    // the old one (a real re-run is a new process).
    port = await findFreePort();
    demo = await startDemo({ port, sitePort: 0, forumPort: 0, dataDir, logLevel: 'error', appLog: (line) => appLog.push(line) });
    expect(demo.user.password).not.toBe(firstPassword);
    const { status, body } = await admin<{ apps: Array<{ client_id: string; backchannel_logout_uri: string | null; return_urls: string[] }> }>('GET', '/apps');
    expect(status).toBe(200);
    expect(body.apps.map((a) => a.client_id).sort()).toEqual([DEMO_APPS.forum, DEMO_APPS.site].sort());
    const site = body.apps.find((a) => a.client_id === DEMO_APPS.site)!;
    expect(site).toMatchObject({ return_urls: [demo.siteUrl], backchannel_logout_uri: `${demo.siteUrl}backchannel-logout` });

    const s = await newSession('second run');
    await s.page.goto(demo.siteUrl);
    await s.page.getByRole('link', { name: 'Sign in' }).click();
    await s.page.getByLabel('Username or email').fill('alice');
    await s.page.getByLabel('Password').fill(firstPassword);
    const refused = s.page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login');
    await s.page.getByRole('button', { name: 'Sign in' }).click();
    expect((await refused).status()).toBe(401);
    await expect.poll(() => s.page.getByRole('alert').innerText()).toBe('Wrong username or password.');
    await s.step('the old password is refused');
    await s.page.getByLabel('Password').fill(demo.user.password);
    await clickAndLand(s.page, s.page.getByRole('button', { name: 'Sign in' }), demo.siteUrl);
    await s.step('the new password signs in, back at the site');
    const handle = await appSession(s.page);
    expect(handle).toMatch(/^ses_/);
    // The forum's new redirect URI was registered; alice's consent from the first run stands.
    expect(await signInWithOidc(s, demo.forumUrl, 'alice', undefined, 'sign in at the forum')).toEqual({ handle, stops: [] });
  });
});
