import { describe, expect, it } from 'vitest';
import { createFailureLimiter, createManualClock } from '@tessera/core';

describe('createFailureLimiter', () => {
  it('allows max failures per key per window, then reports the seconds left; other keys are untouched', () => {
    const clock = createManualClock(0);
    const limiter = createFailureLimiter({ max: 3, windowMs: 60_000, clock });
    expect(limiter.recordFailure('a')).toBe(0);
    expect(limiter.recordFailure('a')).toBe(0);
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    expect(limiter.recordFailure('a')).toBe(60);
    expect(limiter.retryAfterSeconds('b')).toBe(0);
    clock.advance(59_500);
    expect(limiter.retryAfterSeconds('a')).toBe(1);
    clock.advance(500);
    // The window ended: the key is forgotten.
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    expect(limiter.recordFailure('a')).toBe(0);
  });

  it('clear forgets a key at once', () => {
    const limiter = createFailureLimiter({ max: 1, windowMs: 1000, clock: createManualClock(0) });
    limiter.recordFailure('k');
    expect(limiter.retryAfterSeconds('k')).toBe(1);
    limiter.clear('k');
    expect(limiter.retryAfterSeconds('k')).toBe(0);
  });

  it('keeps at most maxKeys keys: expired ones go first, then the oldest', () => {
    const clock = createManualClock(0);
    const limiter = createFailureLimiter({ max: 1, windowMs: 1000, clock, maxKeys: 3 });
    limiter.recordFailure('old');
    clock.advance(1000);
    for (const key of ['a', 'b', 'c']) limiter.recordFailure(key);
    expect(limiter.size).toBe(3);
    limiter.recordFailure('d');
    expect(limiter.size).toBe(3);
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    expect(limiter.retryAfterSeconds('d')).toBe(1);
  });

  it('refuses nonsense options (a programmer error)', () => {
    expect(() => createFailureLimiter({ max: 0, windowMs: 1000, clock: createManualClock(0) })).toThrow(TypeError);
    expect(() => createFailureLimiter({ max: 1, windowMs: 0, clock: createManualClock(0) })).toThrow(TypeError);
  });
});
