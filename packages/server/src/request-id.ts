import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The request id: a caller's `X-Request-Id` is kept (and echoed) only when it is short and
 * plain, so it cannot inject anything into a log line; otherwise a fresh one is made.
 */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(given) ? given : randomUUID();
}

/**
 * Headers on every response: responses may carry tokens, so they are never cached by
 * browsers or proxies and never sniffed (routes that may be cached, like the JWKS,
 * override cache-control).
 */
export const SECURITY_HEADERS = Object.freeze({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' });
