import type { CoreDeps } from './deps.js';
import type { AuditEvent, RevocationEvent } from './model.js';
import { planLogout } from './logout-plan.js';
import type { StoreOperations } from './store-port.js';
import { planSecurityEvents, type SecuritySignal } from './ssf-events.js';

/**
 * Runs a revocation in one transaction together with its audit line, then tells the
 * listener (feed, outbox wake-up) once the transaction has committed — never before, so
 * nobody hears of a logout that could still roll back.
 */
export async function commitRevocation(
  deps: CoreDeps,
  work: (tx: StoreOperations) => Promise<RevocationEvent[]>,
  audit?: Omit<AuditEvent, 'at' | 'details'> & { details?: Record<string, unknown> },
  options: { userWide?: boolean; signals?: () => SecuritySignal[]; auditIfNone?: boolean } = {},
): Promise<RevocationEvent[]> {
  let sets = 0;
  let notices = 0;
  const events = await deps.store.transaction(async (tx) => {
    // Everything this transaction writes besides the log goes first, the log's entries last
    // (deferRevocationLog): taking their cursors takes the log counter's lock (decision 2),
    // which every other revocation waits for, so it is held for the log rows and the
    // back-channel outbox rows (which name a cursor) only, not for the reads and writes of
    // the outboxes and the audit line. On PostgreSQL each statement is a round trip, and a
    // round trip is longest when the node is busiest.
    // (A stream created at the very moment of this revocation may miss it: a race with no
    // "before" to keep.)
    // Read before the work's first statement, and on PostgreSQL sent together with it (the
    // store pipelines it), so it costs no round trip of its own; awaited once the work is done.
    const context = tx.readRevocationContext({ ssf: deps.config.ssf.enabled });
    // If the work fails first, its error is the one reported; the read's own is not left unhandled.
    context.catch(() => undefined);
    tx.deferRevocationLog();
    const written = await work(tx);
    const { apps, streams, subjects: subjectRules } = await context;
    const signals = options.signals?.() ?? [];
    const sessions = written.length > 0 ? await tx.findSessionsByHandles(written.map((e) => e.sid)) : [];
    // The Shared Signals outbox: every session end (whatever ended it) and every signal
    // becomes its SETs in the same transaction, so none is lost and none precedes its cause.
    if (streams.length > 0 && (written.some((e) => e.app === null) || signals.length > 0)) {
      const known = new Set(signals.map((s) => s.user.id));
      const users = [];
      for (const id of new Set(written.map((e) => e.sub))) {
        if (known.has(id)) continue;
        const user = await tx.findUserById(id);
        if (user) users.push(user);
      }
      const planned = planSecurityEvents({ issuer: deps.config.issuer, revocations: written, sessions, users, signals, streams, subjects: subjectRules, now: written[0]?.at ?? deps.clock.now(), horizonMs: deps.config.ssf.horizonSeconds * 1000 });
      await tx.enqueueSsfEvents(planned);
      sets = planned.length;
    }
    // auditIfNone false: a call that ended nothing (a handle already ended, or unknown) leaves no line.
    if (audit && (written.length > 0 || options.auditIfNone !== false)) {
      const subjects = new Set(written.map((e) => e.sub));
      await tx.appendAudit({
        ...audit,
        // The moment of the revocation itself, and its user when all ended sessions share one.
        at: written[0]?.at ?? deps.clock.now(),
        userId: audit.userId ?? (subjects.size === 1 ? [...subjects][0]! : null),
        details: { ...audit.details, revoked: written.map((e) => (e.app ? `${e.sid}@${e.app}` : e.sid)) },
      });
    }
    // The back-channel outbox rows, in the same transaction as the log entries (a logout is
    // never recorded without its notices, nor a notice without its logout); each names the
    // cursor of its end, so the log rows are written first (flushRevocationLog: the events in
    // `written` get their cursors), and from there to the commit every other revocation waits.
    // Without notices to send, the store writes the log rows as the transaction's last
    // statement, together with its commit (on PostgreSQL in one round trip). So the plan is
    // made once to see whether there are notices (whether there are does not depend on the
    // cursors, which are 0 until the flush) and once more, with the cursors, to write them.
    const plan = () => planLogout({ events: written, sessions, apps, userWide: options.userWide ?? false, now: written[0]!.at, horizonMs: deps.config.outbox.horizonSeconds * 1000 });
    if (sessions.some((s) => s.apps.length > 0) && plan().length > 0) {
      await tx.flushRevocationLog();
      const deliveries = plan();
      await tx.enqueueDeliveries(deliveries);
      notices = deliveries.length;
    }
    return written;
  });
  // Drop cached sessions before the revoking call returns: from here on nobody may be told
  // the session is active.
  if (events.length > 0) deps.cache?.dropSessions(events.map((e) => e.sid));
  if (events.length > 0) deps.onRevoked?.(events, { deliveries: notices });
  if (sets > 0) deps.onSecurityEvents?.();
  return events;
}
