import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TesseraError, type AppRecord, type Authenticated, type Authority, type Config, type Device } from '@tessera/core';
import { countFailure, type FailureLimits, type LimitKey } from './failure-limits.js';

/** How the caller presented its session token. */
export type TokenSource = 'bearer' | 'header' | 'cookie';

/**
 * The session token of a request and where it came from: `Authorization: Bearer`, then
 * `X-Session-Token`, then the session cookie.
 */
export function readSessionToken(request: FastifyRequest, config: Config): { token: string; source: TokenSource } | null {
  const fromHeaders = readHeaderToken(request.headers);
  if (fromHeaders) return fromHeaders;
  const cookie = request.cookies[config.cookie.name];
  if (cookie) return { token: cookie, source: 'cookie' };
  return null;
}

/** The session token in `Authorization: Bearer` or else `X-Session-Token` (the cookie is read separately). */
export function readHeaderToken(headers: IncomingHttpHeaders): { token: string; source: 'bearer' | 'header' } | null {
  const auth = headers.authorization;
  if (typeof auth === 'string' && auth.slice(0, 7).toLowerCase() === 'bearer ') return { token: auth.slice(7).trim(), source: 'bearer' };
  const header = headers['x-session-token'];
  if (typeof header === 'string' && header !== '') return { token: header, source: 'header' };
  return null;
}

/** The device a request comes from, as recorded on sessions. */
export function deviceOf(request: FastifyRequest): Device {
  const ua = request.headers['user-agent'];
  return { ip: request.ip ?? null, userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null };
}

/** The authenticated session of the request, or a 401 `UNAUTHENTICATED`. */
export async function requireSession(request: FastifyRequest, authority: Authority, config: Config): Promise<Authenticated & { source: TokenSource }> {
  const presented = readSessionToken(request, config);
  const current = presented ? await authority.sessions.authenticate(presented.token) : null;
  if (!current || !presented) throw new TesseraError('UNAUTHENTICATED');
  return { ...current, source: presented.source };
}

/**
 * CSRF rule for cookie-authenticated state changes: the browser sends cookies on
 * cross-site requests, so a cookie alone proves nothing about who asked. Requiring the
 * custom `X-Tessera-CSRF` header forces a CORS preflight, which only registered origins
 * pass; header- and bearer-authenticated calls cannot be forged cross-site and skip it.
 */
export function requireCsrfForCookie(request: FastifyRequest, source: TokenSource): void {
  if (source === 'cookie' && request.headers['x-tessera-csrf'] === undefined) throw new TesseraError('CSRF_FAILED');
}

/** Parses `Authorization: Basic` client credentials (RFC 6749 §2.3.1: form-encoded, then base64). */
export function readBasicCredentials(request: { headers: IncomingHttpHeaders }): { clientId: string; clientSecret: string } | null {
  const auth = request.headers.authorization;
  if (typeof auth !== 'string' || auth.slice(0, 6).toLowerCase() !== 'basic ' || auth.length > 1024) return null;
  const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  try {
    return { clientId: decodeURIComponent(decoded.slice(0, colon)), clientSecret: decodeURIComponent(decoded.slice(colon + 1)) };
  } catch {
    return null;
  }
}

/**
 * The app whose Basic credentials the request carries, or a 401 `INVALID_CLIENT`. The secret
 * is checked first and a right one always passes; a wrong one is counted per address and per
 * client id, and past the limit answered 429 (failure-limits.ts).
 */
export async function requireApp(request: FastifyRequest, reply: FastifyReply, authority: Authority, limits: FailureLimits): Promise<AppRecord> {
  const creds = readBasicCredentials(request);
  const app = creds ? await authority.apps.authenticateApp(creds.clientId, creds.clientSecret) : null;
  if (!app) {
    reply.header('www-authenticate', 'Basic realm="tessera"');
    const failure = new TesseraError('INVALID_CLIENT');
    // No credentials at all is not a guess (a client that forgot them): not counted.
    if (!creds) throw failure;
    const keys: LimitKey[] = [[limits.credentialByAddress, request.ip], [limits.credentialByClient, creds.clientId.slice(0, 128)]];
    throw countFailure(keys, failure);
  }
  return app;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The app authenticated by HTTP Basic on server-to-server routes. */
    client: AppRecord | null;
  }
}

/** The app that authenticated this request (set by the app context's onRequest hook). */
export function clientOf(request: FastifyRequest): AppRecord {
  if (!request.client) throw new TesseraError('INVALID_CLIENT');
  return request.client;
}

/**
 * Checks `Authorization: Bearer <admin token>`, or throws 401 `INVALID_ADMIN_TOKEN`. A right
 * token always passes; a wrong one is counted per address, and past the limit answered 429.
 */
export async function requireAdmin(request: FastifyRequest, authority: Authority, limits: FailureLimits): Promise<void> {
  const auth = request.headers.authorization;
  const token = typeof auth === 'string' && auth.slice(0, 7).toLowerCase() === 'bearer ' ? auth.slice(7).trim() : '';
  if (token && token.length <= 300 && (await authority.admin.authenticateAdmin(token))) return;
  const failure = new TesseraError('INVALID_ADMIN_TOKEN');
  // A call without any token is not a guess (not counted); a wrong token is.
  throw token ? countFailure([[limits.credentialByAddress, request.ip]], failure) : failure;
}
