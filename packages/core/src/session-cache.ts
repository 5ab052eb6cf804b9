import type { Clock } from './clock.js';
import type { SessionRecord, UserRecord } from './model.js';
import type { Store } from './store-port.js';

interface Entry {
  session: SessionRecord;
  user: UserRecord;
  cachedAt: number;
}

/** A read that may be cached if nothing changed while it ran. */
export interface CacheTicket {
  generation: number;
  marker: number | null;
}

/**
 * An in-process cache of authenticated sessions for the whoami hot path, so that a known
 * session costs no database read. Correctness comes first:
 * - every end of a session and every change of a user made by this process drops the
 *   affected entries before the call that made it returns;
 * - a change committed by anyone else (the CLI, another process on the same SQLite file) is
 *   detected through the store's change marker (SQLite's `data_version`), which empties the
 *   cache; a store that cannot give such a marker (PostgreSQL, many nodes) gets no cache;
 * - a database read that overlapped a drop or a foreign commit is not cached (the ticket
 *   check), so a stale "active" can never be put back after its end;
 * - entries live at most `ttlMs` anyway.
 *
 * @example
 * ```ts
 * const cache = createSessionCache(store, clock);
 * const ticket = await cache.ticket();
 * const hit = await cache.get(tokenId);
 * ```
 */
export function createSessionCache(store: Store, clock: Clock, options: { maxEntries?: number; ttlMs?: number } = {}) {
  const maxEntries = options.maxEntries ?? 50_000;
  const ttlMs = options.ttlMs ?? 30_000;
  const entries = new Map<string, Entry>();
  // handle → token id, so that ending a session finds its entry without a scan.
  const byHandle = new Map<string, string>();
  let generation = 0;
  let marker: number | null | undefined;

  function clear(): void {
    generation += 1;
    entries.clear();
    byHandle.clear();
  }

  function remove(tokenId: string): void {
    const entry = entries.get(tokenId);
    if (!entry) return;
    entries.delete(tokenId);
    byHandle.delete(entry.session.handle);
  }

  /** Checks the change marker; returns false when caching is impossible with this store. */
  let checkedThisTurn = false;

  /**
   * Checks the change marker; returns false when caching is impossible with this store.
   *
   * The marker is read once per turn of the event loop, not once per call. Every request
   * handled in one turn was received before that turn's poll for I/O returned; the first
   * read of the marker comes after that. So a foreign commit that finished before a request
   * was even sent is always seen by the check that request relies on, and the check costs one
   * read per batch of requests instead of one per request.
   */
  async function sync(): Promise<boolean> {
    if (checkedThisTurn) return marker !== null && marker !== undefined;
    const current = await store.changeMarker();
    if (current === null) {
      marker = null;
      return false;
    }
    if (current !== marker) {
      clear();
      marker = current;
    }
    if (!checkedThisTurn) {
      checkedThisTurn = true;
      setImmediate(() => {
        checkedThisTurn = false;
      });
    }
    return true;
  }

  return {
    /** Takes a ticket before a database read, so its result can be cached only if still valid. */
    async ticket(): Promise<CacheTicket> {
      await sync();
      return { generation, marker: marker ?? null };
    },

    async get(tokenId: string): Promise<Entry | null> {
      if (entries.size === 0 || !(await sync())) return null;
      const entry = entries.get(tokenId);
      if (!entry) return null;
      if (clock.now() - entry.cachedAt >= ttlMs || clock.now() < entry.cachedAt) {
        remove(tokenId);
        return null;
      }
      return entry;
    },

    async set(tokenId: string, session: SessionRecord, user: UserRecord, ticket: CacheTicket): Promise<void> {
      if (ticket.marker === null || !(await sync()) || ticket.generation !== generation || ticket.marker !== marker) return;
      if (entries.size >= maxEntries) remove(entries.keys().next().value!);
      entries.set(tokenId, { session, user, cachedAt: clock.now() });
      byHandle.set(session.handle, tokenId);
    },

    dropSessions(handles: Iterable<string>): void {
      generation += 1;
      for (const handle of handles) {
        const id = byHandle.get(handle);
        if (id !== undefined) remove(id);
      }
    },

    /** Drops every entry of a user (a rare event: a user changed, was disabled or deleted). */
    dropUser(userId: string): void {
      generation += 1;
      for (const [id, entry] of entries) if (entry.session.userId === userId) remove(id);
    },

    clear,
  };
}

/** The cache returned by {@link createSessionCache}. */
export type SessionCache = ReturnType<typeof createSessionCache>;
