// "Your devices" (/account) in a real browser (Chromium): one user signs in on two browser
// contexts (a phone and a desktop); the phone's devices page lists both, marks itself, and
// its "Sign out all other devices" button (a plain form, no script) ends the desktop's
// session, whose next load of /account goes to the login page. Any CSP violation in the
// console fails the test (support/chromium.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@tessera/core';
import { buildServer, type TesseraApp } from '@tessera/server';
import { createSqliteStore, type Store } from '@tessera/store';
import { submitLoginForm } from './support/app-pages.js';
import { findChromium, launchChromium, type BrowserSession, type TestBrowser } from './support/chromium.js';
import { ADMIN_TOKEN, createUser } from './support/backchannel.js';
import { findFreePort } from './support/free-port.js';

const chromium = findChromium();
const PASSWORD = 'correct horse battery staple';
const PHONE_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1';
const DESKTOP_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

let dataDir: string;
let app: TesseraApp;
let store: Store;
let issuer: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-account-'));
  const port = await findFreePort();
  issuer = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    env: {
      TESSERA_PORT: String(port),
      TESSERA_ISSUER: issuer,
      TESSERA_DATA_DIR: dataDir,
      TESSERA_COOKIE_SECURE: 'false',
      TESSERA_ADMIN_TOKEN: ADMIN_TOKEN,
      TESSERA_LOG_LEVEL: 'error',
      TESSERA_RATE_LIMIT: 'false',
    },
  });
  store = createSqliteStore(join(dataDir, 'tessera.db'));
  await store.migrate();
  ({ app } = await buildServer({ config, store }));
  await app.listen({ port, host: '127.0.0.1' });
  await createUser(issuer, 'dora', PASSWORD);
});

afterAll(async () => {
  await app?.close();
  await store?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Opens /account signed out, is sent to the login page, signs in, and is brought back. */
async function signInToAccount(s: BrowserSession, label: string): Promise<void> {
  await s.page.goto(`${issuer}/account`);
  await s.page.waitForURL((url) => url.pathname === '/login');
  expect(new URL(s.page.url()).searchParams.get('return_to')).toBe(`${issuer}/account`);
  await submitLoginForm(s, 'dora', PASSWORD, label);
  await s.page.waitForURL(`${issuer}/account`);
  await s.step(`${label}: devices page`);
}

describe.skipIf(chromium.skip !== null)('your devices page in Chromium', { timeout: 120_000 }, () => {
  let browser: TestBrowser;
  beforeAll(async () => {
    browser = await launchChromium(chromium.path!, import.meta.url);
  });
  afterAll(async () => browser?.close());

  it('lists both devices, and "sign out all other devices" ends the other one', async () => {
    const phone = await browser.newSession('phone', { userAgent: PHONE_UA, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const desktop = await browser.newSession('desktop', { userAgent: DESKTOP_UA });
    await signInToAccount(phone, 'phone');
    await signInToAccount(desktop, 'desktop');

    await phone.page.reload();
    const devices = phone.page.locator('ul.devices > li');
    await expect.poll(() => devices.count()).toBe(2);
    const current = phone.page.locator('li[aria-current="true"]');
    expect(await current.count()).toBe(1);
    expect(await current.innerText()).toMatch(/Safari 17 on iOS[\s\S]*This device/);
    const other = devices.filter({ hasNot: phone.page.locator('.badge') });
    expect(await other.innerText()).toMatch(/Chrome 120 on Linux/);
    // Exact times are on hover (title) and in datetime.
    expect(await current.locator('time').first().getAttribute('title')).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    await phone.step('phone: both devices listed');
    // A phone's width: nothing wider than the 390 px screen.
    const width = await phone.page.evaluate(() => ({ document: document.documentElement.scrollWidth, main: Math.ceil(document.querySelector('main')!.getBoundingClientRect().right) }));
    expect(width.document).toBe(390);
    expect(width.main).toBeLessThanOrEqual(390);

    await phone.page.getByRole('button', { name: 'Sign out all other devices' }).click();
    await phone.page.waitForURL(`${issuer}/account?done=others`);
    await expect.poll(() => phone.page.getByRole('status').innerText()).toBe('All your other devices are signed out.');
    expect(await devices.count()).toBe(1);
    await phone.step('phone: other devices signed out');

    // The desktop's next load of the page goes to the login page; the phone stays signed in.
    await desktop.page.goto(`${issuer}/account`);
    await desktop.page.waitForURL((url) => url.pathname === '/login');
    await expect.poll(() => desktop.page.getByRole('button', { name: 'Sign in' }).count()).toBe(1);
    await desktop.step('desktop: sent to the login page');
    await phone.page.reload();
    expect(new URL(phone.page.url()).pathname).toBe('/account');

    await phone.close();
    await desktop.close();
  });
});
