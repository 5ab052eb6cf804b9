// What a person does and sees at the example apps (examples/shared/example-app.mjs) and at
// Tessera's hosted login page, in a real browser.
import { expect } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import type { BrowserSession } from './chromium.js';

/**
 * Clicks `target` and waits until the page has loaded `url` by a top-level GET (after any
 * redirects). Unlike waitForURL, this also waits when the page is already at `url` (a
 * sign-out that lands back on the same home page).
 */
export async function clickAndLand(page: Page, target: Locator, url: string, timeout = 10_000): Promise<void> {
  const landed = page.waitForResponse((r) => r.url() === url && r.request().isNavigationRequest() && r.request().method() === 'GET', { timeout });
  await target.click();
  await landed;
  await page.waitForLoadState('load');
}

/** What an example app's page says: the session handle it shows, or null when signed out. */
export async function appSession(page: Page): Promise<string | null> {
  const signedIn = page.locator('[data-session]');
  const signedOut = page.locator('[data-signed-out]');
  await expect.poll(async () => (await signedIn.count()) + (await signedOut.count()), { timeout: 10_000 }).toBe(1);
  if ((await signedOut.count()) === 1) return null;
  return signedIn.getAttribute('data-session');
}

/** The line at the top of an example app's page saying what just happened. */
export function statusLine(page: Page): Promise<string> {
  return page.locator('p.status').innerText();
}

/** Opens `url` and returns what the app's page says. */
export async function openApp(session: BrowserSession, url: string, step?: string): Promise<string | null> {
  await session.page.goto(url);
  const handle = await appSession(session.page);
  if (step) await session.step(step);
  return handle;
}

/**
 * From the app's home, signed out: clicks "Sign in", fills Tessera's form, submits, and
 * waits to be back at `appUrl` (a blocked redirect fails here, and the CSP violation is
 * reported by the session). Returns the handle the app then shows.
 */
export async function signInAt(session: BrowserSession, appUrl: string, username: string, password: string, label = 'sign in'): Promise<string> {
  const { page } = session;
  await page.goto(appUrl);
  expect(await appSession(page)).toBeNull();
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/login');
  await submitLoginForm(session, username, password, label, appUrl);
  const handle = await appSession(page);
  await session.step(`${label}: back at the app`);
  expect(handle).toMatch(/^ses_/);
  return handle!;
}

/**
 * Fills and submits the login form on the current page (Tessera's /login); with
 * `landsAt`, waits until the browser has arrived there.
 */
export async function submitLoginForm(session: BrowserSession, username: string, password: string, label = 'sign in', landsAt?: string): Promise<void> {
  const { page } = session;
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(password);
  await session.step(`${label}: login form`);
  const button = page.getByRole('button', { name: 'Sign in' });
  if (landsAt === undefined) await button.click();
  else await clickAndLand(page, button, landsAt);
}

/** Presses the app's sign-out button and waits until the app's home shows "signed out". */
export async function signOutAt(session: BrowserSession, appUrl: string, label: string, step = 'signed out'): Promise<void> {
  const { page } = session;
  await clickAndLand(page, page.getByRole('button', { name: label, exact: true }), appUrl);
  expect(await appSession(page)).toBeNull();
  await session.step(step);
}

/** What Tessera showed on the way of an OpenID Connect sign-in: its login form, its consent page. */
export type OidcStop = 'login' | 'consent';

/**
 * From an OpenID Connect app's home (the example forum), signed out: clicks "Sign in", which
 * goes to the app's /signin and on to Tessera's authorization endpoint. Fills Tessera's login
 * form when this browser has no Tessera session (`password` is required then), presses
 * "Allow" when Tessera asks for consent (an app that is not trusted, the first time), and
 * waits to be back at `appUrl`, signed in. Returns the handle the app shows and what Tessera
 * showed on the way, in order.
 */
export async function signInWithOidc(session: BrowserSession, appUrl: string, username: string, password: string | undefined, label = 'sign in with OpenID Connect'): Promise<{ handle: string; stops: OidcStop[] }> {
  const { page } = session;
  await page.goto(appUrl);
  expect(await appSession(page)).toBeNull();
  const stops: OidcStop[] = [];
  // A page the browser stops at: the app's home, Tessera's login form, or the consent page
  // (rendered by the authorization endpoint itself). Redirects in between are not stops.
  const stopped = () => page.waitForResponse((r) => {
    if (!r.request().isNavigationRequest() || r.request().method() !== 'GET' || r.status() !== 200) return false;
    const url = new URL(r.url());
    return r.url() === appUrl || url.pathname === '/login' || url.pathname === '/oidc/authorize';
  }, { timeout: 15_000 });
  let next = stopped();
  await page.getByRole('link', { name: 'Sign in' }).click();
  for (;;) {
    await next;
    await page.waitForLoadState('load');
    const url = new URL(page.url());
    if (page.url() === appUrl) break;
    if (stops.length > 2) throw new Error(`signing in at ${appUrl}: stuck at ${url.pathname}`);
    if (url.pathname === '/login') {
      stops.push('login');
      if (password === undefined) throw new Error(`signing in at ${appUrl}: Tessera asked for a password`);
      await page.getByLabel('Username or email').fill(username);
      await page.getByLabel('Password').fill(password);
      await session.step(`${label}: login form`);
      next = stopped();
      await page.getByRole('button', { name: 'Sign in' }).click();
    } else {
      stops.push('consent');
      await session.step(`${label}: consent`);
      next = stopped();
      await page.getByRole('button', { name: 'Allow' }).click();
    }
  }
  const handle = await appSession(page);
  await session.step(`${label}: back at the app`);
  expect(handle).toMatch(/^ses_/);
  return { handle: handle!, stops };
}
