import { expect } from 'vitest';
import type { Response } from './support.js';
import { STYLESHEET_PATH } from '../src/pages/index.js';

// The headers every hosted HTML page must carry (pages/send-page.ts), asserted one way for
// every page: login, sign-out, messages, the devices page and the OpenID Provider's pages.

function directives(res: Response): Map<string, string> {
  const csp = String(res.headers['content-security-policy']);
  return new Map(csp.split(';').map((d) => d.trim()).filter(Boolean).map((d) => [d.split(' ')[0]!, d.slice(d.indexOf(' ') + 1)] as const));
}

/** Asserts the security headers of a hosted page; `formAction` is the expected form-action. */
export function expectPageHeaders(res: Response, formAction = "'self'"): void {
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  const csp = directives(res);
  expect(csp.get('default-src')).toBe("'none'");
  // No script source at all (default-src 'none' covers scripts): no 'unsafe-inline' scripts.
  expect(csp.has('script-src')).toBe(false);
  expect(String(res.headers['content-security-policy'])).not.toMatch(/script-src[^;]*unsafe-inline/);
  // Styles only from the one shared stylesheet on Tessera's origin: no inline style at all.
  expect(csp.get('style-src')).toBe("'self'");
  expect(res.body).toContain(`<link rel="stylesheet" href="${STYLESHEET_PATH}">`);
  expect(res.body).not.toMatch(/<style|\sstyle=/i);
  expect(csp.get('frame-ancestors')).toBe("'none'");
  expect(csp.get('form-action')).toBe(formAction);
  expect(csp.get('base-uri')).toBe("'none'");
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
  expect(res.headers['cache-control']).toBe('no-store');
}

