// The browser harness (support/chromium.ts) must fail a test on what it promises to catch:
// a Content Security Policy violation, a CORS error, an uncaught page error, an announced
// problem that never came; it must pass a clean page, save its screenshots, and skip or
// fail as told when there is no browser.
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, launchChromium, type TestBrowser } from './support/chromium.js';

const chromium = findChromium();

describe('finding Chromium', () => {
  it('skips with a message naming the missing browser, or fails under TESSERA_REQUIRE_BROWSER=1', () => {
    const missing = findChromium({ TESSERA_CHROMIUM: '/nonexistent/chromium' });
    expect(missing).toEqual({ path: null, skip: 'TESSERA_CHROMIUM=/nonexistent/chromium does not exist' });
    expect(() => findChromium({ TESSERA_CHROMIUM: '/nonexistent/chromium', TESSERA_REQUIRE_BROWSER: '1' })).toThrow(/TESSERA_REQUIRE_BROWSER=1 but no browser: TESSERA_CHROMIUM=\/nonexistent\/chromium does not exist/);
  });
});

// A real browser on a shared 2-core machine: a step can take seconds, so more time per test.
describe.skipIf(chromium.skip !== null)('the browser harness', { timeout: 120_000 }, () => {
  let browser: TestBrowser;
  let server: Server;
  let base: string;
  let other: string;
  beforeAll(async () => {
    // One server on two host names: pages are served from `base`, and `other` (another origin,
    // never granted CORS) is what they try to reach.
    server = createServer((req, res) => {
      const pages: Record<string, [Record<string, string>, string]> = {
        '/clean': [{}, '<!doctype html><title>clean</title><p>nothing wrong here</p>'],
        '/csp': [{ 'content-security-policy': "default-src 'none'" }, '<!doctype html><title>csp</title><script>document.title = "ran"</script>'],
        '/cors': [{}, `<!doctype html><title>cors</title><script>fetch(${JSON.stringify(`${other}/clean`)}, { headers: { 'x-custom': '1' } }).catch(() => {})</script>`],
        '/throws': [{}, '<!doctype html><title>throws</title><script>setTimeout(() => { throw new Error("boom in the page") })</script>'],
      };
      const [headers, body] = pages[(req.url ?? '').split('?')[0]!] ?? [{}, 'not found'];
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...headers }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    base = `http://pages.tessera.test:${port}`;
    other = `http://api.elsewhere.test:${port}`;
    browser = await launchChromium(chromium.path!, import.meta.url);
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('passes a clean page and saves a screenshot per step', async () => {
    const s = await browser.newSession('clean page');
    await s.page.goto(`${base}/clean`);
    await s.step('clean');
    await s.close();
    expect(readdirSync(s.screenshots)).toEqual(['01-clean.png']);
  });

  for (const [path, kind, text] of [['/csp', 'csp', /Content Security Policy/], ['/cors', 'cors', /CORS policy/], ['/throws', 'pageerror', /boom in the page/]] as const) {
    it(`fails the test on ${kind === 'pageerror' ? 'an uncaught page error' : `a ${kind.toUpperCase()} error`}`, async () => {
      const s = await browser.newSession(`problem ${kind}`);
      await s.page.goto(`${base}${path}`);
      await expect.poll(() => s.problems().map((p) => p.kind)).toEqual([kind]);
      expect(s.problems()[0]!.text).toMatch(text);
      await expect(s.close()).rejects.toThrow(new RegExp(`browser ${kind} at ${base}${path}`));
    });
  }

  it('accepts an announced problem, and fails when it never comes', async () => {
    const announced = await browser.newSession('announced problem');
    announced.expectProblem(/CORS policy/);
    await announced.page.goto(`${base}/cors`);
    await expect.poll(() => announced.console.some((line) => /CORS policy/.test(line))).toBe(true);
    await announced.close();

    const never = await browser.newSession('announced, never came');
    never.expectProblem(/CORS policy/);
    await never.page.goto(`${base}/clean`);
    await expect(never.close()).rejects.toThrow(/expected a console problem matching \/CORS policy\/, none came/);
  });
});
