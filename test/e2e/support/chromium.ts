/**
 * Real-browser support for the end-to-end tests: Debian's Chromium driven by playwright-core
 * (the driver only; no browser download).
 *
 * - {@link findChromium} finds /usr/bin/chromium (or TESSERA_CHROMIUM), installing it with
 *   `apt-get install -y chromium` when it is missing and the tests run as root. Where it
 *   cannot, the browser tests are skipped with a message saying why — unless
 *   TESSERA_REQUIRE_BROWSER=1 (set by .ci/run), where that is a failure.
 * - {@link launchChromium} starts one browser per test file; each test opens its own
 *   {@link BrowserSession} (a fresh context: its own cookies, like a new profile), which
 *   collects console messages and page errors, fails the test on any Content Security
 *   Policy violation, CORS error or uncaught page error that the test did not announce, and
 *   saves a screenshot of each step under test-results/browser/ (printed by the test).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Cookie, type Page } from 'playwright-core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Where screenshots go: one folder per test file and test. Ignored by git. */
export const SCREENSHOT_ROOT = join(ROOT, 'test-results', 'browser');

/** Every host name under these suffixes resolves to 127.0.0.1 inside the test browser. */
export const TEST_DOMAINS = ['tessera.test', 'elsewhere.test'] as const;

// The flags of the brief: a quiet headless browser that talks to nobody but the tests. The
// user-data-dir is fresh on every launch: playwright-core's launch() makes a new temporary
// profile and deletes it on close.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Two (or more) host names on 127.0.0.1, so that a parent-domain cookie (Domain=tessera.test)
  // really applies across hosts, as it does between auth.example.com and forum.example.com.
  `--host-resolver-rules=${TEST_DOMAINS.map((d) => `MAP *.${d} 127.0.0.1`).join(', ')}`,
];

/** The outcome of {@link findChromium}: a browser to use, or why the browser tests are skipped. */
export type ChromiumLookup = { path: string; skip: null } | { path: null; skip: string };

let lookup: ChromiumLookup | undefined;

/**
 * Finds Chromium (installing it when missing and possible). Throws under
 * TESSERA_REQUIRE_BROWSER=1 when there is none; otherwise returns why the tests skip.
 * `env` defaults to the process environment (and the answer is then kept for the process).
 *
 * @example
 * ```ts
 * const browserLookup = findChromium();
 * describe.skipIf(browserLookup.skip !== null)('in a real browser', () => { … });
 * ```
 */
export function findChromium(env: Record<string, string | undefined> = process.env): ChromiumLookup {
  const found = env === process.env ? (lookup ??= locate(env)) : locate(env);
  if (found.skip !== null) {
    if (env.TESSERA_REQUIRE_BROWSER === '1') throw new Error(`TESSERA_REQUIRE_BROWSER=1 but no browser: ${found.skip}`);
    console.warn(`[browser tests skipped] ${found.skip}`);
  }
  return found;
}

function locate(env: Record<string, string | undefined>): ChromiumLookup {
  const path = env.TESSERA_CHROMIUM || '/usr/bin/chromium';
  if (existsSync(path)) return { path, skip: null };
  if (env.TESSERA_CHROMIUM) return { path: null, skip: `TESSERA_CHROMIUM=${path} does not exist` };
  const root = process.getuid?.() === 0;
  const aptGet = ['/usr/bin/apt-get', '/bin/apt-get'].find((p) => existsSync(p));
  if (!root || !aptGet) {
    return { path: null, skip: `Chromium is not installed at ${path}, and the tests cannot install it (${!aptGet ? 'no apt-get' : 'not root'}). Install it with \`sudo apt-get install -y chromium\` (or set TESSERA_CHROMIUM to a Chromium binary).` };
  }
  console.warn(`[browser tests] Chromium is missing: installing it with \`apt-get install -y chromium\` (once)…`);
  // Another test worker may be installing at the same moment: wait for dpkg's lock.
  const install = () => spawnSync(aptGet, ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'inherit', timeout: 15 * 60_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  let result = install();
  if (result.status !== 0) {
    // A fresh image often has no package lists yet.
    spawnSync(aptGet, ['-o', 'DPkg::Lock::Timeout=600', 'update'], { stdio: 'inherit', timeout: 10 * 60_000 });
    result = install();
  }
  if (existsSync(path)) return { path, skip: null };
  return { path: null, skip: `Chromium is not installed at ${path}, and \`apt-get install -y chromium\` failed (exit ${result.status ?? result.signal ?? result.error?.message}).` };
}

/** A console message, page error or failed request seen in a session. */
export interface BrowserProblem {
  kind: 'csp' | 'cors' | 'pageerror';
  text: string;
  url: string;
}

/** One test's browser: a fresh context and its first page. */
export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** Every console message of every page of the context (type and text), in order. */
  console: string[];
  /** The folder this session's screenshots go to. */
  screenshots: string;
  /** Saves a screenshot of `page` (default: the session's page) as the next numbered step. */
  step(name: string, page?: Page): Promise<void>;
  /**
   * Announces a problem this test provokes on purpose (e.g. the CORS error of a refused
   * origin); it must then occur, once, and it fails nothing.
   */
  expectProblem(pattern: RegExp): void;
  /** The problems seen so far, expected ones excluded. */
  problems(): BrowserProblem[];
  /** The browser's cookies, as it stores them, for `url`. */
  cookies(url: string): Promise<Cookie[]>;
  /** Closes the context; throws when there were unexpected problems or an expected one never came. */
  close(): Promise<void>;
}

/** The browser of one test file. */
export interface TestBrowser {
  browser: Browser;
  /** A new session for one test; `name` names its screenshot folder. */
  newSession(name: string, options?: BrowserContextOptions): Promise<BrowserSession>;
  /** Closes every session still open (checking each) and the browser. */
  close(): Promise<void>;
}

const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80) || 'step';

// What Chromium writes to the console when a policy stops something.
const CSP = /Content Security Policy|Content-Security-Policy|violates the following/i;
const CORS = /CORS policy|Access-Control-Allow|Cross-Origin Request Blocked|preflight/i;

/**
 * Launches Chromium for one test file. `file` (e.g. `import.meta.url`) names the
 * screenshot folder, which is printed.
 *
 * @example
 * ```ts
 * const browser = await launchChromium(lookup.path!, import.meta.url);
 * const s = await browser.newSession('sign in at the site');
 * await s.page.goto(siteUrl);
 * await s.step('site, signed out');
 * await s.close();
 * ```
 */
export async function launchChromium(executablePath: string, file: string): Promise<TestBrowser> {
  const browser = await chromium.launch({ executablePath, headless: true, args: FLAGS, timeout: 60_000 });
  const folder = join(SCREENSHOT_ROOT, slug(relative(ROOT, fileURLToPath(file)).replace(/\.test\.ts$/, '')));
  rmSync(folder, { recursive: true, force: true });
  console.log(`[browser] Chromium ${browser.version()}; screenshots of each step: ${folder}`);
  const open = new Set<BrowserSession>();

  return {
    browser,
    async newSession(name, options = {}) {
      const context = await browser.newContext({ viewport: { width: 1024, height: 720 }, ...options });
      context.setDefaultTimeout(15_000);
      const screenshots = join(folder, slug(name));
      mkdirSync(screenshots, { recursive: true });
      const seen: BrowserProblem[] = [];
      const expected: Array<{ pattern: RegExp; hits: number }> = [];
      const messages: string[] = [];
      const record = (kind: BrowserProblem['kind'], text: string, url: string) => {
        const announced = expected.find((e) => e.pattern.test(text));
        if (announced) announced.hits += 1;
        else seen.push({ kind, text, url });
      };
      context.on('console', (message) => {
        const text = message.text();
        messages.push(`${message.type()}: ${text}`);
        if (CSP.test(text)) record('csp', text, message.page()?.url() ?? '');
        else if (CORS.test(text)) record('cors', text, message.page()?.url() ?? '');
      });
      context.on('weberror', (error) => record('pageerror', String(error.error()), error.page()?.url() ?? ''));
      const page = await context.newPage();
      let steps = 0;
      const session: BrowserSession = {
        context,
        page,
        console: messages,
        screenshots,
        async step(stepName, target = page) {
          steps += 1;
          await target.screenshot({ path: join(screenshots, `${String(steps).padStart(2, '0')}-${slug(stepName)}.png`), fullPage: true });
        },
        expectProblem(pattern) {
          expected.push({ pattern, hits: 0 });
        },
        problems: () => [...seen],
        cookies: (url) => context.cookies(url),
        async close() {
          open.delete(session);
          await context.close();
          const missing = expected.filter((e) => e.hits === 0).map((e) => String(e.pattern));
          if (seen.length > 0 || missing.length > 0) {
            throw new Error([
              ...seen.map((p) => `browser ${p.kind} at ${p.url}: ${p.text}`),
              ...missing.map((m) => `expected a console problem matching ${m}, none came`),
              `(screenshots: ${screenshots})`,
            ].join('\n'));
          }
        },
      };
      open.add(session);
      return session;
    },
    async close() {
      const failures: unknown[] = [];
      for (const session of [...open]) await session.close().catch((error: unknown) => failures.push(error));
      await browser.close();
      if (failures.length > 0) throw failures[0];
    },
  };
}

/** Waits until `check` returns a value other than undefined (polling), or fails after `timeoutMs`. */
export async function waitUntil<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
