/** What the set needs of one revocation log entry. */
export interface RevocationEntry {
  sid: string;
  /** null: the whole session ended; a client id: only that app's part of it. */
  app: string | null;
  /** When the session (or the app's part) ended, epoch ms. */
  atMs: number;
  /** After this moment no access token of the session can still be valid, epoch ms. */
  forgetAfterMs: number;
}

/** The in-memory set of ended sessions that `verify` checks on every call. */
export interface RevocationSet {
  add(entry: RevocationEntry, now: number): void;
  /** True when a token of session `sid` issued at `iatSeconds` has been revoked. */
  isRevoked(sid: string, iatSeconds: number, now: number): boolean;
  /** Drops entries no token can need any more; returns how many. */
  prune(now: number): number;
  clear(): void;
  readonly size: number;
}

/**
 * Creates the revocation set of one app. Entries for other apps' parts of a session are
 * ignored (the server omits them anyway). `retainMs` keeps entries a little past
 * `forget_after`: verification accepts a token up to the clock tolerance after its `exp`, so
 * the entry must outlive that window too or a revoked token would pass in it.
 */
export function createRevocationSet(clientId: string, retainMs: number): RevocationSet {
  // Whole-session ends: sid → forget-after (ms). One number per entry keeps 100k entries small.
  const sessions = new Map<string, number>();
  // App-scoped ends: sid → [ended at, forget-after] (ms). Tokens issued later are not affected:
  // the app may join the same session again.
  const appParts = new Map<string, [number, number]>();

  return {
    add(entry, now) {
      if (entry.app !== null && entry.app !== clientId) return;
      const keepUntil = entry.forgetAfterMs + retainMs;
      if (keepUntil <= now) return;
      if (entry.app === null) {
        sessions.set(entry.sid, Math.max(sessions.get(entry.sid) ?? 0, keepUntil));
      } else {
        const prior = appParts.get(entry.sid);
        appParts.set(entry.sid, [Math.max(prior?.[0] ?? 0, entry.atMs), Math.max(prior?.[1] ?? 0, keepUntil)]);
      }
    },
    isRevoked(sid, iatSeconds, now) {
      const until = sessions.get(sid);
      if (until !== undefined) {
        if (until > now) return true;
        sessions.delete(sid);
      }
      const part = appParts.get(sid);
      if (part !== undefined) {
        if (part[1] <= now) {
          appParts.delete(sid);
          return false;
        }
        // iat has whole seconds: a token issued in the same second as the end counts as
        // revoked (erring towards rejection; the app gets a new token on the next exchange).
        return iatSeconds * 1000 <= part[0];
      }
      return false;
    },
    prune(now) {
      let removed = 0;
      for (const [sid, until] of sessions) {
        if (until <= now) {
          sessions.delete(sid);
          removed++;
        }
      }
      for (const [sid, part] of appParts) {
        if (part[1] <= now) {
          appParts.delete(sid);
          removed++;
        }
      }
      return removed;
    },
    clear() {
      sessions.clear();
      appParts.clear();
    },
    get size() {
      return sessions.size + appParts.size;
    },
  };
}
