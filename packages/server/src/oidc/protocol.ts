import { isTesseraError } from '@tessera/core';
import type { FastifyReply } from 'fastify';

/** The paths of the OpenID Provider's endpoints (under the issuer). */
export const OIDC_PATHS = Object.freeze({
  authorize: '/oidc/authorize',
  token: '/oidc/token',
  userinfo: '/oidc/userinfo',
  endSession: '/oidc/logout',
  consent: '/oidc/consent',
  logoutConfirm: '/oidc/logout/confirm',
  register: '/oidc/register',
});

/**
 * An OAuth 2.0 / OpenID Connect protocol error: `error` is the code the specs name
 * (`invalid_request`, `invalid_grant`, `login_required`…), which relying parties switch on.
 */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
  ) {
    super(description);
    this.name = 'OAuthError';
  }
}

/**
 * The OAuth error of a failure at the token or userinfo endpoint. Tessera's catalogue codes
 * map onto RFC 6749 §5.2; anything else is rethrown (a 5xx stays a 5xx, with its log line).
 */
export function toOAuthError(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  if (isTesseraError(error)) {
    switch (error.code) {
      case 'INVALID_GRANT':
        return new OAuthError('invalid_grant', error.message);
      case 'REFRESH_TOKEN_REUSED':
        // RFC 6749 §5.2 has no code of its own for it; the session has been ended.
        return new OAuthError('invalid_grant', error.message);
      case 'INVALID_CLIENT':
        return new OAuthError('invalid_client', error.message, 401);
      case 'UNSUPPORTED_GRANT_TYPE':
        return new OAuthError('unsupported_grant_type', error.message);
      default:
        if (error.status < 500) return new OAuthError('invalid_request', error.message);
    }
  }
  throw error;
}

/**
 * Sends an OAuth error body. It carries the RFC 6749 members (`error`, `error_description`)
 * and Tessera's `message`, so the envelope of every other route is there as well.
 */
export function sendOAuthError(reply: FastifyReply, failure: OAuthError): FastifyReply {
  if (failure.status === 401 && failure.error === 'invalid_client') reply.header('www-authenticate', 'Basic realm="tessera"');
  return reply
    .status(failure.status)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .type('application/json')
    .send({ error: failure.error, error_description: failure.description, message: failure.description });
}

/**
 * The parameters of a request (query or form body) as single strings. RFC 6749 §3.1:
 * "Request and response parameters MUST NOT be included more than once", so a repeated
 * parameter is reported, never silently resolved to one of its values.
 */
export function readParams(raw: unknown): { get(name: string): string | undefined; repeated: string | null; entries(): Array<[string, string]> } {
  const source = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const values = new Map<string, string>();
  let repeated: string | null = null;
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined || value === null) continue;
    if (typeof value === 'string') {
      // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
      if (value !== '') values.set(name, value);
    } else if (repeated === null) {
      repeated = name;
    }
  }
  return { get: (name) => values.get(name), repeated, entries: () => [...values.entries()] };
}
