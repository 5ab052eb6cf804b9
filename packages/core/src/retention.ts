import type { CoreDeps } from './deps.js';
import type { Actor } from './model.js';

const DAY_MS = 86_400_000;

/** Rows deleted by one retention run, per kind. */
export interface PurgeCounts {
  endedSessions: number;
  revocations: number;
  deliveries: number;
  audit: number;
}

/**
 * Retention: deletes what the `retention` settings let go — sessions long ended, old
 * revocation-log entries, delivered logout deliveries and SETs, and (only when configured) old audit
 * events. Never an active session, a pending or dead delivery, or a log entry younger than
 * one before it. Each table is emptied in batches of `retention.batchSize` so that no
 * statement holds locks for long; several nodes may run it at once (a batch the other node
 * already deleted deletes nothing).
 *
 * @example
 * ```ts
 * const retention = createRetentionService(deps);
 * const counts = await retention.purge('system'); // { endedSessions: 12, revocations: 40, … }
 * ```
 */
export function createRetentionService(deps: CoreDeps) {
  const { store, clock, config } = deps;

  async function drain(days: number, purge: (before: number, limit: number) => Promise<number>, now: number): Promise<number> {
    if (days === 0) return 0;
    const limit = config.retention.batchSize;
    let total = 0;
    for (;;) {
      const deleted = await purge(now - days * DAY_MS, limit);
      total += deleted;
      if (deleted < limit) return total;
    }
  }

  /** Runs every configured purge once, to the end; audits what it deleted (if anything). */
  async function purge(actor: Actor): Promise<PurgeCounts> {
    const r = config.retention;
    const now = clock.now();
    const counts: PurgeCounts = {
      endedSessions: await drain(r.endedSessionsDays, (before, limit) => store.purgeEndedSessions(before, limit), now),
      revocations: await drain(r.revocationLogDays, (before, limit) => store.purgeRevocations(before, limit), now),
      // Delivered logout notices and delivered (or acknowledged) SETs: the same setting.
      deliveries: await drain(r.deliveredDays, (before, limit) => store.purgeDeliveredDeliveries(before, limit), now) + await drain(r.deliveredDays, (before, limit) => store.purgeSsfEvents(before, limit), now),
      audit: await drain(r.auditDays, (before, limit) => store.purgeAudit(before, limit), now),
    };
    if (Object.values(counts).some((n) => n > 0)) {
      await store.appendAudit({ at: now, actor, action: 'retention.purged', userId: null, sessionHandle: null, clientId: null, ip: null, details: { ...counts } });
    }
    return counts;
  }

  return { purge };
}

/** The service returned by {@link createRetentionService}. */
export type RetentionService = ReturnType<typeof createRetentionService>;
