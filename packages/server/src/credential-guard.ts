import type { AppRecord, Authority } from '@tessera/core';

interface Bound {
  app: AppRecord;
  close(): void;
}

/**
 * Keeps long-lived connections (revocation streams) honest about the credentials they were
 * opened with. A request is authenticated once, when it arrives; a stream lives for hours.
 * When its app's secret is rotated, or the app is deleted (or disabled), the stream must end
 * like every later request with that secret fails — on every node, not only the one where
 * the admin made the change.
 *
 * What re-checks the connections of an app (against the store, never a cache):
 * - a change made by this process (`check(clientId)` from core's `onAppChanged`), at once;
 * - a change made by another node or the CLI over PostgreSQL (NOTIFY on the credentials
 *   channel, sent by the store on commit), at once;
 * - a timer, as a last resort (a lost NOTIFY, the CLI on a SQLite file): while any
 *   connection is open, the apps are re-read (one query) every `pollIntervalMs`.
 *
 * @example
 * ```ts
 * const guard = createCredentialGuard({ authority, pollIntervalMs: 1000 });
 * const release = guard.track(caller, () => stream.end());
 * ```
 */
export function createCredentialGuard(input: { authority: Authority; pollIntervalMs: number; onError?: (error: unknown) => void }) {
  const { authority } = input;
  const bound = new Map<string, Set<Bound>>();
  let closed = false;

  /** Closes the connections of `clientId` whose credentials no longer hold against `current`. */
  function settle(clientId: string, current: AppRecord | null): void {
    const entries = bound.get(clientId);
    if (!entries) return;
    for (const entry of [...entries]) {
      if (authority.apps.credentialsStillValid(entry.app, current)) continue;
      entries.delete(entry);
      entry.close();
    }
    if (entries.size === 0) bound.delete(clientId);
  }

  /**
   * Re-checks one app's connections (one read of that app), or every bound app's (one read of
   * all apps, whatever their number). Never throws (errors go to onError).
   */
  async function check(clientId?: string): Promise<void> {
    if (bound.size === 0 || (clientId !== undefined && !bound.has(clientId))) return;
    try {
      if (clientId !== undefined) {
        settle(clientId, await authority.deps.store.findApp(clientId));
        return;
      }
      const apps = new Map((await authority.deps.store.listApps()).map((a) => [a.clientId, a]));
      for (const id of [...bound.keys()]) settle(id, apps.get(id) ?? null);
    } catch (error) {
      input.onError?.(error);
    }
  }

  const timer = setInterval(() => void check(), input.pollIntervalMs);
  timer.unref();

  return {
    check,
    /**
     * Binds a connection to the credentials it was opened with; `close` ends it when they no
     * longer hold. Returns the function to call when the connection ends by itself.
     */
    track(app: AppRecord, close: () => void): () => void {
      if (closed) {
        close();
        return () => {};
      }
      const entry: Bound = { app, close };
      let entries = bound.get(app.clientId);
      if (!entries) bound.set(app.clientId, (entries = new Set()));
      entries.add(entry);
      return () => {
        const set = bound.get(app.clientId);
        set?.delete(entry);
        if (set && set.size === 0) bound.delete(app.clientId);
      };
    },
    /** How many connections are bound (for tests and metrics). */
    get size() {
      let n = 0;
      for (const set of bound.values()) n += set.size;
      return n;
    },
    close(): void {
      closed = true;
      clearInterval(timer);
      bound.clear();
    },
  };
}

/** The guard returned by {@link createCredentialGuard}. */
export type CredentialGuard = ReturnType<typeof createCredentialGuard>;
