import { describe, expect, it } from 'vitest';
import { createExpiringCache } from '../src/internal/expiring-cache.js';

describe('expiring LRU cache', () => {
  it('drops entries at their expiry and evicts the least recently used beyond the bound', () => {
    const cache = createExpiringCache<string>(2);
    cache.set('a', 'A', 100);
    cache.set('b', 'B', 200);
    expect(cache.get('a', 50)).toBe('A');
    cache.set('c', 'C', 300);
    expect(cache.get('b', 50)).toBeUndefined();
    expect(cache.get('a', 50)).toBe('A');
    expect(cache.get('a', 100)).toBeUndefined();
    expect(cache.size).toBe(1);
    cache.set('d', 'D', 10);
    expect(cache.prune(10)).toBe(1);
    expect(cache.size).toBe(1);
  });

  it('stores nothing with a bound of 0', () => {
    const cache = createExpiringCache<string>(0);
    cache.set('a', 'A', 100);
    expect(cache.get('a', 0)).toBeUndefined();
  });
});
