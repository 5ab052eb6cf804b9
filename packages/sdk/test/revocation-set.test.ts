// The in-memory revocation set on its own, with explicit times.
import { describe, expect, it } from 'vitest';
import { createRevocationSet } from '../src/internal/revocation-set.js';

const T = Date.UTC(2030, 0, 1);
const sec = (ms: number) => Math.floor(ms / 1000);

describe('revocation set', () => {
  it('a whole-session end revokes every token of the session, whenever issued', () => {
    const set = createRevocationSet('me', 0);
    set.add({ sid: 's1', app: null, atMs: T, forgetAfterMs: T + 360_000 }, T);
    expect(set.isRevoked('s1', sec(T) - 100, T + 1)).toBe(true);
    expect(set.isRevoked('s1', sec(T) + 100, T + 1)).toBe(true);
    expect(set.isRevoked('s2', sec(T), T + 1)).toBe(false);
  });

  it('an end of this app\'s part revokes only tokens issued up to it; other apps\' parts are ignored', () => {
    const set = createRevocationSet('me', 0);
    set.add({ sid: 's1', app: 'me', atMs: T + 500, forgetAfterMs: T + 360_000 }, T);
    set.add({ sid: 's2', app: 'someone-else', atMs: T, forgetAfterMs: T + 360_000 }, T);
    expect(set.isRevoked('s1', sec(T), T + 1000)).toBe(true);
    // Issued in the same second as the end: counted as before it (erring towards rejection).
    expect(set.isRevoked('s1', sec(T + 500), T + 1000)).toBe(true);
    expect(set.isRevoked('s1', sec(T) + 1, T + 1000)).toBe(false);
    expect(set.isRevoked('s2', sec(T), T + 1000)).toBe(false);
    expect(set.size).toBe(1);
  });

  it('a later whole-session end overrides an app-part end', () => {
    const set = createRevocationSet('me', 0);
    set.add({ sid: 's1', app: 'me', atMs: T, forgetAfterMs: T + 360_000 }, T);
    set.add({ sid: 's1', app: null, atMs: T + 10_000, forgetAfterMs: T + 370_000 }, T);
    expect(set.isRevoked('s1', sec(T) + 5, T + 20_000)).toBe(true);
  });

  it('forgets entries after forget_after plus the retention window, lazily and by prune', () => {
    const set = createRevocationSet('me', 5000);
    set.add({ sid: 's1', app: null, atMs: T, forgetAfterMs: T + 1000 }, T);
    set.add({ sid: 's2', app: 'me', atMs: T, forgetAfterMs: T + 1000 }, T);
    set.add({ sid: 's3', app: null, atMs: T, forgetAfterMs: T + 60_000 }, T);
    expect(set.isRevoked('s1', sec(T), T + 5999)).toBe(true);
    expect(set.isRevoked('s1', sec(T), T + 6000)).toBe(false);
    expect(set.size).toBe(2);
    expect(set.prune(T + 6000)).toBe(1);
    expect(set.size).toBe(1);
    expect(set.isRevoked('s3', sec(T), T + 6000)).toBe(true);
  });

  it('does not store an entry that is already forgettable', () => {
    const set = createRevocationSet('me', 0);
    set.add({ sid: 's1', app: null, atMs: T - 10_000, forgetAfterMs: T - 1 }, T);
    expect(set.size).toBe(0);
  });
});
