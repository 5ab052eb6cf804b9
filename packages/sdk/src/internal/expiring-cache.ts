interface Entry<V> {
  value: V;
  expiresAt: number;
  /** Read since it was last passed over by eviction (the "second chance" bit). */
  used: boolean;
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
 * Creates a cache bounded to `maxEntries` with "second chance" (CLOCK) eviction, an
 * approximation of LRU: a hit only sets a flag — moving the entry to the end of the Map on
 * every hit was the largest cost of verifying a cached token — and eviction skips (and
 * re-queues) entries read since they were last considered.
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
      entry.used = true;
      return entry.value;
    },
    set(key, value, expiresAt) {
      if (maxEntries <= 0) return;
      map.delete(key);
      map.set(key, { value, expiresAt, used: false });
      while (map.size > maxEntries) {
        const oldest = map.entries().next();
        if (oldest.done) break;
        const [oldestKey, entry] = oldest.value;
        map.delete(oldestKey);
        // A recently read entry gets a second chance at the back of the queue; the loop
        // ends because every pass clears a flag.
        if (entry.used && oldestKey !== key) {
          entry.used = false;
          map.set(oldestKey, entry);
        }
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
