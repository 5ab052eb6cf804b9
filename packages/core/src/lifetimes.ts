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
