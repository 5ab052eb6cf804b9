// The `npm run demo` setup, end to end over real HTTP: Tessera and the two example apps on
// free ports with a temp data dir — the site on Tessera's own API (caching sign-ins for a
// minute), the forum a stock OpenID Connect client (openid-client) with sessions of its own;
// both receive back-channel logout. A scripted browser signs in once, is signed in at both
// apps, signs out at one, and is signed out at the other; the deliveries of that session
// show both apps confirmed, through the admin API and through the CLI command the demo prints.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../packages/server/src/cli/run-cli.js';
import { DEMO_APPS, demoInstructions, startDemo } from '../../scripts/demo-setup.mjs';
import { createBrowser, type Browser, type Page } from './support/browser.js';
import { findFreePort } from './support/free-port.js';

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

/** The session handle an app page shows, or null when it says "Not signed in". */
function signedInHandle(page: Page): string | null {
  expect(page.status).toBe(200);
  if (page.html.includes('Not signed in.')) return null;
  expect(page.html).toContain('Signed in as <strong>alice</strong>');
  return /data-session="([^"]+)"/.exec(page.html)![1]!;
}

/** Opens the app, follows its "Sign in" link, submits Tessera's login form; back at the app. */
async function signInAt(browser: Browser, appUrl: string, password = demo.user.password): Promise<Page> {
  const start = await browser.open(appUrl);
  expect(signedInHandle(start)).toBeNull();
  const login = await browser.open(browser.linkHref(start, 'Sign in'));
  return browser.submitForm(login, { action: '/login', fields: { username: 'alice', password } });
}

/**
 * Signs in at the forum through OpenID Connect: its "Sign in" link goes to Tessera's
 * authorization endpoint, which shows the login form only without a Tessera session and
 * the consent page only the first time; then back at the forum.
 */
async function signInAtForum(browser: Browser, password = demo.user.password): Promise<Page> {
  const start = await browser.open(demo.forumUrl);
  expect(signedInHandle(start)).toBeNull();
  let page = await browser.open(browser.linkHref(start, 'Sign in'));
  if (page.html.includes('name="password"')) page = await browser.submitForm(page, { action: '/login', fields: { username: 'alice', password } });
  if (page.html.includes('action="/oidc/consent"')) page = await browser.submitForm(page, { action: '/oidc/consent', fields: { decision: 'allow' } });
  expect(page.url).toBe(demo.forumUrl);
  return page;
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
    for (const part of [demo.tesseraUrl, demo.siteUrl, demo.forumUrl, `alice / ${demo.user.password}`, demo.adminToken, `/admin/api/sessions/<handle>/deliveries`, `TESSERA_DATA_DIR=${dataDir} npm run tessera -- deliveries list --session <handle>`]) {
      expect(text).toContain(part);
    }
  });

  it('sign in once, both apps signed in; sign out at the site, the forum is signed out; both apps confirmed', async () => {
    const browser = createBrowser({ userAgent: 'demo laptop' });
    const back = await signInAt(browser, demo.siteUrl);
    expect(back.url).toBe(demo.siteUrl);
    const handle = signedInHandle(back)!;
    expect(handle).not.toBeNull();
    // The forum: no second password; Tessera asks once whether the forum may sign alice in.
    const start = await browser.open(demo.forumUrl);
    const consent = await browser.open(browser.linkHref(start, 'Sign in'));
    expect(consent.html).toContain('Demo forum');
    const forumPage = await browser.submitForm(consent, { action: '/oidc/consent', fields: { decision: 'allow' } });
    expect(forumPage.url).toBe(demo.forumUrl);
    // The forum's own session is the OIDC client's view of the same Tessera session.
    expect(signedInHandle(forumPage)).toBe(handle);
    const cookie = browser.jar.get('forum_session', demo.forumUrl)!.value;

    const home = await browser.open(demo.siteUrl);
    const out = await browser.submitForm(home, { action: '/logout' });
    expect(out.hops.map((h) => h.status)).toEqual([303, 303, 200]);
    expect(signedInHandle(out)).toBeNull();

    // The forum learns of the end only from its logout token (it never asks Tessera on page
    // views): once the deliveries are confirmed, it is signed out.
    expectBothConfirmed(await settledDeliveries(handle), handle);
    expect(signedInHandle(await browser.open(demo.forumUrl))).toBeNull();
    // The forum keeps sessions of its own; the back-channel logout token ended the one of
    // this Tessera session, so even a request still carrying the forum's cookie is signed out.
    expect(appLog).toContain(`[forum] back-channel logout from Tessera: session ${handle} ended (1 forum session ended)`);
    const stale = await fetch(demo.forumUrl, { headers: { cookie: `forum_session=${cookie}` } });
    expect(await stale.text()).toContain('Not signed in.');

    // The CLI command the demo prints says the same.
    let stdout = '';
    const code = await runCli(['deliveries', 'list', '--session', handle, '--json'], {
      env: { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: 'silent' },
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: () => true },
      stdin: Readable.from([]),
      signals: new EventEmitter(),
    });
    expect(code).toBe(0);
    expectBothConfirmed(JSON.parse(stdout) as SessionDeliveries, handle);
  });

  it('sign in at the forum (OIDC, through the login page), then sign out there (RP-initiated logout): the site, which cached the sign-in, is signed out by back-channel logout', async () => {
    const browser = createBrowser({ userAgent: 'demo phone' });
    const back = await signInAtForum(browser);
    const handle = signedInHandle(back)!;
    // The hosted login set Tessera's cookie: the site sees the same session.
    expect(signedInHandle(await browser.open(demo.siteUrl))).toBe(handle);

    const out = await browser.submitForm(await browser.open(demo.forumUrl), { action: '/logout' });
    // POST /logout → 303 to Tessera's end-session endpoint (id_token_hint) → 303 back home.
    expect(out.hops.map((h) => [h.method, h.status])).toEqual([['POST', 303], ['GET', 303], ['GET', 200]]);
    expect(out.url).toBe(demo.forumUrl);
    expect(signedInHandle(out)).toBeNull();
    expectBothConfirmed(await settledDeliveries(handle), handle);
    expect(appLog).toContain(`[site] back-channel logout from Tessera: session ${handle} ended (1 cached sign-in dropped)`);
    expect(signedInHandle(await browser.open(demo.siteUrl))).toBeNull();
  });

  it('a second run on the same data reuses the apps and the user, with a new password', async () => {
    const first = demo.user.password;
    await demo.close();
    // Another port: this test process's HTTP client may still hold keep-alive sockets to
    // the old one (a real re-run is a new process).
    port = await findFreePort();
    demo = await startDemo({ port, sitePort: 0, forumPort: 0, dataDir, logLevel: 'error', appLog: (line) => appLog.push(line) });
    expect(demo.user.password).not.toBe(first);
    const { status, body } = await admin<{ apps: Array<{ client_id: string; backchannel_logout_uri: string | null; return_urls: string[] }> }>('GET', '/apps');
    expect(status).toBe(200);
    expect(body.apps.map((a) => a.client_id).sort()).toEqual([DEMO_APPS.forum, DEMO_APPS.site].sort());
    const site = body.apps.find((a) => a.client_id === DEMO_APPS.site)!;
    expect(site).toMatchObject({ return_urls: [demo.siteUrl], backchannel_logout_uri: `${demo.siteUrl}backchannel-logout` });

    const refused = await signInAt(createBrowser(), demo.siteUrl, first);
    expect(refused.status).toBe(401);
    const browser = createBrowser();
    const handle = signedInHandle(await signInAt(browser, demo.siteUrl))!;
    // The forum's new redirect URI was registered; alice's consent from the first run stands.
    expect(signedInHandle(await signInAtForum(browser))).toBe(handle);
  });
});
