import { TesseraError, createFailureLimiter, isTesseraError, type Clock, type Config, type ErrorCode, type FailureLimiter } from '@tessera/core';

/**
 * The failure limits of the server, one place for every route that checks a secret: logouts,
 * password sign-ins (and password changes), admin tokens and client secrets. Each counts only
 * FAILED attempts (see createFailureLimiter): a success is never counted, so many honest
 * callers behind one address are never refused because of their number.
 *
 * Two shapes, chosen by what the secret is:
 * - high-entropy secrets (session tokens, logout tokens, admin tokens, client secrets) are
 *   checked FIRST, and a right one always succeeds: a logout with a valid token always ends
 *   the session (CONVENTIONS 14), and an app or admin is never locked out by someone else's
 *   failures on the same address or client id. Only failures past the limit get 429.
 *   Guessing such a secret is hopeless anyway; the limit caps the noise and work one caller
 *   can cause and tells it to back off.
 * - passwords are low-entropy, so a sign-in is refused BEFORE the (expensive) password check
 *   while its address or its account is over the limit: that is what makes brute force slow.
 *   The account limit means an attacker can hold one account's sign-in for one window at
 *   most; the address limit counts only failures, so an office behind NAT is not locked out
 *   by its users' successes.
 */
export interface FailureLimits {
  /** Failed logouts per address. */
  logoutByAddress: FailureLimiter;
  /** Failed sign-ins (and password changes) per address. */
  loginByAddress: FailureLimiter;
  /** Failed sign-ins (and password changes) per account name. */
  loginByAccount: FailureLimiter;
  /** Failed admin tokens and client secrets per address. */
  credentialByAddress: FailureLimiter;
  /** Failed client secrets per client id. */
  credentialByClient: FailureLimiter;
}

/** A key under one limiter. */
export type LimitKey = readonly [FailureLimiter, string];

/** Builds the limits from `rateLimit.*`; with `rateLimit.enabled=false` nothing is ever limited. */
export function createFailureLimits(config: Config, clock: Clock): FailureLimits {
  const windowMs = config.rateLimit.windowSeconds * 1000;
  const make = (max: number): FailureLimiter => (config.rateLimit.enabled ? createFailureLimiter({ max, windowMs, clock }) : UNLIMITED);
  return {
    logoutByAddress: make(config.rateLimit.logoutMax),
    loginByAddress: make(config.rateLimit.loginMax),
    loginByAccount: make(config.rateLimit.loginAccountMax),
    credentialByAddress: make(config.rateLimit.credentialMax),
    credentialByClient: make(config.rateLimit.clientMax),
  };
}

const UNLIMITED: FailureLimiter = { retryAfterSeconds: () => 0, recordFailure: () => 0, clear: () => {}, size: 0 };

/** The account key of a sign-in: the name as typed, case-folded (the store matches it so). */
export function accountKey(login: string): string {
  return login.normalize('NFC').trim().toLowerCase();
}

/** A RATE_LIMITED error that carries its Retry-After (the error handler sets the header). */
export function rateLimited(retryAfterSeconds: number): TesseraError {
  return Object.assign(new TesseraError('RATE_LIMITED', `Too many failed attempts; retry in ${retryAfterSeconds} s.`), { retryAfterSeconds });
}

/** Seconds until every key is under its limit again, or 0 when none is over it. */
export function limitedFor(keys: readonly LimitKey[]): number {
  return Math.max(0, ...keys.map(([limiter, key]) => limiter.retryAfterSeconds(key)));
}

/** Throws RATE_LIMITED when any key is over its limit (checked before a password is). */
export function refuseIfLimited(keys: readonly LimitKey[]): void {
  const wait = limitedFor(keys);
  if (wait > 0) throw rateLimited(wait);
}

/**
 * After a failed attempt: counts it under every key and returns the error to throw — the
 * failure itself, or RATE_LIMITED when a key was already over its limit.
 */
export function countFailure(keys: readonly LimitKey[], failure: unknown): unknown {
  const wait = limitedFor(keys);
  recordFailures(keys);
  return wait > 0 ? rateLimited(wait) : failure;
}

/** Counts one failure under every key. */
export function recordFailures(keys: readonly LimitKey[]): void {
  for (const [limiter, key] of keys) limiter.recordFailure(key);
}

/**
 * Runs an attempt that checks a high-entropy secret. Its success is never refused; a failure
 * with one of `codes` is counted (see {@link countFailure}). Other errors (a store outage, a
 * bad return_to) are not the caller's guesses and pass through uncounted.
 */
export async function limitFailures<T>(keys: readonly LimitKey[], codes: ReadonlySet<ErrorCode>, attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (error) {
    if (isTesseraError(error) && codes.has(error.code)) throw countFailure(keys, error);
    throw error;
  }
}

/**
 * What counts as a failed logout: an unknown or malformed token, a wrong or spent logout
 * token, a failed CSRF or origin check. Not an XHR logout without a live session (401
 * UNAUTHENTICATED): that is mostly a session that already ended (a second click, an expiry),
 * and clients read that 401 as "already logged out"; a 429 there would report a failure for
 * a session that is in fact over.
 */
export const LOGOUT_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['TOKEN_INVALID', 'LOGOUT_TOKEN_INVALID', 'CSRF_FAILED', 'ORIGIN_NOT_ALLOWED']);
