import type { Clock } from './clock.js';

/** Options of {@link createFailureLimiter}. */
export interface FailureLimiterOptions {
  /** Failures allowed per key in one window; the next one is refused. */
  max: number;
  /** Length of the window in ms; a key's count starts at its first failure and ends with the window. */
  windowMs: number;
  clock: Clock;
  /**
   * Keys tracked at once (default 100 000). Past it, expired keys are dropped, then the
   * oldest: memory stays bounded however many addresses or names an attacker invents.
   */
  maxKeys?: number;
}

/**
 * Counts FAILED attempts per key (an address, an account, a client id) in fixed windows.
 * Only failures are counted, never successes: a limit built this way can slow down guessing
 * without ever refusing the many legitimate callers that share one address (an office behind
 * NAT, every user behind a proxy without `trust proxy`, a server-side integration).
 * Counts live in this process (one node); see docs/security.md.
 *
 * @example
 * ```ts
 * const perAddress = createFailureLimiter({ max: 60, windowMs: 60_000, clock: systemClock });
 * if (perAddress.retryAfterSeconds(ip) > 0) throw new TesseraError('RATE_LIMITED');
 * perAddress.recordFailure(ip);
 * ```
 */
export interface FailureLimiter {
  /** Seconds until `key` may fail again, or 0 while it is under its limit. */
  retryAfterSeconds(key: string): number;
  /** Counts one failure of `key`; returns {@link retryAfterSeconds} after counting it. */
  recordFailure(key: string): number;
  /** Forgets the failures of `key` (after it proved itself, e.g. an account's right password). */
  clear(key: string): void;
  /** Keys tracked now (for tests and metrics). */
  readonly size: number;
}

/** Creates a {@link FailureLimiter} (in memory, per process). */
export function createFailureLimiter(options: FailureLimiterOptions): FailureLimiter {
  const { max, windowMs, clock } = options;
  const maxKeys = options.maxKeys ?? 100_000;
  if (!Number.isInteger(max) || max < 1) throw new TypeError('max must be a positive integer');
  if (!(windowMs > 0)) throw new TypeError('windowMs must be positive');
  // Insertion order is window-start order (a key is re-inserted when its window restarts),
  // so the first entries are the oldest.
  const counts = new Map<string, { count: number; resetAt: number }>();

  function live(key: string, now: number) {
    const entry = counts.get(key);
    if (entry && entry.resetAt <= now) {
      counts.delete(key);
      return undefined;
    }
    return entry;
  }

  function makeRoom(now: number): void {
    if (counts.size < maxKeys) return;
    for (const [key, entry] of counts) {
      if (entry.resetAt <= now) counts.delete(key);
      else break;
    }
    // Still full of live keys: drop the oldest. An attacker who can fill the table can at
    // worst reset counts early, never refuse someone else.
    while (counts.size >= maxKeys) counts.delete(counts.keys().next().value!);
  }

  function retryAfterSeconds(key: string): number {
    const now = clock.now();
    const entry = live(key, now);
    return entry && entry.count >= max ? Math.max(1, Math.ceil((entry.resetAt - now) / 1000)) : 0;
  }

  return {
    retryAfterSeconds,
    recordFailure(key) {
      const now = clock.now();
      const entry = live(key, now);
      if (entry) entry.count += 1;
      else {
        makeRoom(now);
        counts.set(key, { count: 1, resetAt: now + windowMs });
      }
      return retryAfterSeconds(key);
    },
    clear(key) {
      counts.delete(key);
    },
    get size() {
      return counts.size;
    },
  };
}
