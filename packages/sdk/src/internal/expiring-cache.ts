interface Entry<V> {
  value: V;
  expiresAt: number;
}

/** A bounded LRU map whose entries also drop at their own expiry time. */
export interface ExpiringCache<V> {
  get(key: string, now: number): V | undefined;
  set(key: string, value: V, expiresAt: number): void;
  delete(key: string): void;
  /** Removes every expired entry; returns how many. */
  prune(now: number): number;
  clear(): void;
  readonly size: number;
}

/**
 * Creates an LRU cache bounded to `maxEntries` (a Map keeps insertion order; a hit moves the
 * entry to the end, so the first key is always the least recently used).
 */
export function createExpiringCache<V>(maxEntries: number): ExpiringCache<V> {
  const map = new Map<string, Entry<V>>();
  return {
    get(key, now) {
      const entry = map.get(key);
      if (entry === undefined) return undefined;
      if (entry.expiresAt <= now) {
        map.delete(key);
        return undefined;
      }
      map.delete(key);
      map.set(key, entry);
      return entry.value;
    },
    set(key, value, expiresAt) {
      if (maxEntries <= 0) return;
      map.delete(key);
      map.set(key, { value, expiresAt });
      while (map.size > maxEntries) {
        const oldest = map.keys().next();
        if (oldest.done) break;
        map.delete(oldest.value);
      }
    },
    delete(key) {
      map.delete(key);
    },
    prune(now) {
      let removed = 0;
      for (const [key, entry] of map) {
        if (entry.expiresAt <= now) {
          map.delete(key);
          removed++;
        }
      }
      return removed;
    },
    clear() {
      map.clear();
    },
    get size() {
      return map.size;
    },
  };
}
