// The `npm run demo` setup, end to end in a real browser (Chromium): Tessera and the two
// example apps (each caching sign-ins for a minute and receiving back-channel logout) on free
// ports of 127.0.0.1 with a temp data dir, walked exactly as the README and the printed steps
// tell it: sign in at the site (back on the site, signed in), the forum is signed in with the
// same session, sign out at the site, the forum's next page is signed out, and both apps
// confirmed the logout (admin API and the CLI command the demo prints); the server-to-server
// variant; signing in a second and a third time. No CSP violation or CORS error may appear
// in the console (the session fails the test on one).
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../packages/server/src/cli/run-cli.js';
import { DEMO_APPS, demoInstructions, startDemo } from '../../scripts/demo-setup.mjs';
import { appSession, clickAndLand, openApp, signInAt, signOutAt, statusLine } from './support/app-pages.js';
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

  it('sign in at the site, the forum shares the session; sign out at the site, the forum is signed out; both apps confirmed', async () => {
    const s = await newSession('sign in at the site, sign out at the site');
    expect(await openApp(s, demo.siteUrl, 'the site, signed out')).toBeNull();
    expect(await statusLine(s.page)).toBe('You are not signed in.');
    // 1. Sign in: back on the site, signed in (the 303 to the site is not blocked by CSP).
    const handle = await signInAt(s, demo.siteUrl, 'alice', demo.user.password, 'sign in at the site');
    expect(s.page.url()).toBe(demo.siteUrl);
    expect(await statusLine(s.page)).toBe(`You are signed in with Tessera as alice: this site joined your session ${handle}.`);
    expect(await s.page.locator('header [data-user]').innerText()).toBe('Alice (alice)');
    // 2. The forum: signed in too, same session, no second login.
    expect(await openApp(s, demo.forumUrl, 'the forum, signed in by the same session')).toBe(handle);
    expect(await statusLine(s.page)).toContain('this forum joined your session');
    const cookie = (await s.cookies(demo.forumUrl)).find((c) => c.name === 'tessera_session')!.value;

    // 3. On the site, "Sign out of all apps": through Tessera's logout URL and back.
    await s.page.goto(demo.siteUrl);
    await signOutAt(s, demo.siteUrl, 'Sign out of all apps', 'the site, after "Sign out of all apps"');
    expect(await statusLine(s.page)).toBe('You signed out. Tessera ended your session at every app and cleared its cookie in this browser.');
    expect((await s.cookies(demo.siteUrl)).map((c) => c.name)).not.toContain('tessera_session');
    // 4. Reload the forum: signed out, and it says why.
    expect(await openApp(s, demo.forumUrl, 'the forum, reloaded: signed out')).toBeNull();
    expect(await statusLine(s.page)).toMatch(/^Your session ended elsewhere/);

    // 5. Both apps confirmed.
    expectBothConfirmed(await settledDeliveries(handle), handle);
    // The forum had kept alice's sign-in (cached for a minute); the back-channel logout
    // dropped it, so even a request still carrying the old cookie is signed out.
    expect(appLog).toContain(`[forum] back-channel logout from Tessera: session ${handle} ended (1 cached sign-in dropped)`);
    const stale = await fetch(demo.forumUrl, { headers: { cookie: `tessera_session=${cookie}` } });
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

  it('6. sign out at the forum (server to server): the site, which cached the sign-in, is signed out by back-channel logout', async () => {
    const s = await newSession('sign out at the forum, server to server');
    const handle = await signInAt(s, demo.siteUrl, 'alice', demo.user.password, 'sign in at the site');
    expect(await openApp(s, demo.forumUrl, 'the forum, signed in')).toBe(handle);

    await signOutAt(s, demo.forumUrl, 'Sign out of all apps (server to server)', 'the forum, after its server-to-server sign-out');
    expect(await statusLine(s.page)).toBe('You signed out. The forum asked Tessera, server to server, to end your session at every app.');
    // The browser still holds Tessera's cookie: only the back-channel tells the site.
    expect((await s.cookies(demo.siteUrl)).map((c) => c.name)).toContain('tessera_session');
    expectBothConfirmed(await settledDeliveries(handle), handle);
    expect(appLog).toContain(`[site] back-channel logout from Tessera: session ${handle} ended (1 cached sign-in dropped)`);
    expect(await openApp(s, demo.siteUrl, 'the site, reloaded: signed out')).toBeNull();
  });

  it('signs in a second and a third time in the same browser, each time back at the app, signed in', async () => {
    const s = await newSession('sign in three times');
    const first = await signInAt(s, demo.siteUrl, 'alice', demo.user.password, 'first sign-in, at the site');
    await signOutAt(s, demo.siteUrl, 'Sign out of all apps', 'first sign-out, at the site');
    const second = await signInAt(s, demo.siteUrl, 'alice', demo.user.password, 'second sign-in, at the site');
    expect(await openApp(s, demo.forumUrl)).toBe(second);
    await signOutAt(s, demo.forumUrl, 'Sign out of all apps (server to server)', 'second sign-out, at the forum');
    // The browser still holds the cookie of the ended session: signing in replaces it.
    const third = await signInAt(s, demo.forumUrl, 'alice', demo.user.password, 'third sign-in, at the forum');
    expect(new Set([first, second, third]).size).toBe(3);
    expect(await openApp(s, demo.siteUrl, 'the site, signed in by the third session')).toBe(third);
    const { body } = await admin<{ sessions: Array<{ handle: string }> }>('GET', `/users/${demo.user.id}/sessions`);
    expect(body.sessions.map((x) => x.handle)).toEqual([third]);
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
    expect(await openApp(s, demo.forumUrl)).toBe(handle);
  });
});
