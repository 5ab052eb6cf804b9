import type { Command } from './command.js';

const keep = (days: number) => (days === 0 ? 'kept forever' : `older than ${days} day${days === 1 ? '' : 's'}`);

/**
 * `tessera purge`: runs the retention job once, now, with the configured settings.
 *
 * @example
 * ```sh
 * tessera purge --json
 * ```
 */
export const retentionCommands: Command[] = [
  {
    path: ['purge'],
    summary: 'Delete what the retention settings let go, once, now: sessions long ended, old revocation-log entries, delivered deliveries, old audit events.',
    notes: [
      'Every running server does the same every retention.intervalSeconds (unless retention.enabled is false); this command runs it now, whatever retention.enabled says.',
      'Never deleted: active sessions, pending or dead deliveries, a revocation-log entry younger than one before it. Audit events only when retention.auditDays is set.',
    ],
    options: {},
    async run(ctx, args) {
      const r = ctx.config().retention;
      const authority = await ctx.authority();
      const purged = await authority.retention.purge('admin');
      if (args.flag('json')) return ctx.json({ purged: { ended_sessions: purged.endedSessions, revocations: purged.revocations, deliveries: purged.deliveries, audit_events: purged.audit } });
      ctx.out(`Deleted ${purged.endedSessions} ended session(s) (${keep(r.endedSessionsDays)}), ${purged.revocations} revocation-log entr${purged.revocations === 1 ? 'y' : 'ies'} (${keep(r.revocationLogDays)}), ${purged.deliveries} delivered deliver${purged.deliveries === 1 ? 'y' : 'ies'} (${keep(r.deliveredDays)}), ${purged.audit} audit event(s) (${keep(r.auditDays)}).`);
    },
  },
];
