import type { Session } from './model.js';

/** The moment a session dies unless used again: last use + idle timeout, capped at its absolute end. */
export function idleDeadline(lastSeenAt: number, idleTimeoutMs: number, expiresAt: number): number {
  return Math.min(lastSeenAt + idleTimeoutMs, expiresAt);
}

/** True when the session is past its idle or absolute deadline at `now`. */
export function isSessionExpired(session: Pick<Session, 'idleExpiresAt' | 'expiresAt'>, now: number): boolean {
  return now >= session.idleExpiresAt || now >= session.expiresAt;
}

/**
 * Whether a use of the session at `now` should be written to the store. Writing last-seen
 * on every request would turn every read into a write; writing it at most once per interval
 * keeps the idle deadline accurate to within that interval.
 */
export function shouldTouch(session: Pick<Session, 'lastSeenAt'>, now: number, touchIntervalMs: number): boolean {
  return now - session.lastSeenAt >= touchIntervalMs;
}

// Clock skew allowed between Tessera and the verifiers that follow its revocation log.
const FORGET_SKEW_MS = 60_000;

/**
 * How long after it is written a revocation matters to a verifier: until every access token
 * of the session (lifetime `accessTokenTtlMs`) has expired, plus clock skew. The feed's
 * `forget_after` is `at` plus this; the log must keep entries at least this long.
 */
export function revocationMattersMs(accessTokenTtlMs: number): number {
  return accessTokenTtlMs + FORGET_SKEW_MS;
}
