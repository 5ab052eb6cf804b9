import { channelsOf, isTesseraError, TesseraError, type Delivery, type DeliveryStatus } from '@tessera/core';
import { deliveryJson } from '../views.js';
import { UsageError, type Command } from './command.js';
import { clip, formatTable, formatTime, printable } from './output.js';

const STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'dead'];

function parseStatus(value: string | undefined): DeliveryStatus | undefined {
  if (value === undefined) return undefined;
  if (!(STATUSES as readonly string[]).includes(value)) throw new UsageError(`--status "${value}": must be pending, delivered or dead`);
  return value as DeliveryStatus;
}

function parseInteger(flag: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${flag} "${value}": must be a whole number from 1 to ${max}`);
  return n;
}

/** What happened last: the time it arrived, or the last attempt's HTTP status and error. */
function outcome(d: Delivery): string {
  if (d.status === 'delivered') return `delivered ${formatTime(d.deliveredAt ?? d.lastAttemptAt ?? d.createdAt)}${d.lastStatus === null ? '' : ` (HTTP ${d.lastStatus})`}`;
  if (d.lastAttemptAt === null) return d.status === 'pending' ? `first attempt ${formatTime(d.nextAttemptAt)}` : '-';
  const last = [d.lastStatus === null ? null : `HTTP ${d.lastStatus}`, d.lastError].filter((part) => part !== null).join(' ');
  const next = d.status === 'pending' ? `; next ${formatTime(d.nextAttemptAt)}` : '';
  return `${clip(last || 'failed', 60)}${next}`;
}

function deliveryTable(deliveries: Delivery[]): string[] {
  const rows = deliveries.map((d) => [
    String(d.id),
    d.clientId,
    d.channel,
    d.status,
    d.sid === null ? `user ${d.sub} (${d.handles.length})` : d.sid,
    d.reason,
    String(d.attempts),
    formatTime(d.createdAt),
    outcome(d),
  ]);
  return formatTable(['ID', 'APP', 'CHANNEL', 'STATUS', 'SESSION', 'REASON', 'ATTEMPTS', 'CREATED', 'OUTCOME'], rows);
}

/**
 * `tessera deliveries list | retry`: the logout notices of the durable outbox (back-channel
 * logout tokens, webhooks), per app, with their status; and sending a failed one again.
 * Works on the same database as a running server, whose worker sends a retried delivery
 * at its next poll.
 *
 * @example
 * ```sh
 * tessera deliveries list --session ses_…        # did every app hear of this logout?
 * tessera deliveries list --status dead --app forum
 * tessera deliveries retry --id 42
 * ```
 */
export const deliveriesCommands: Command[] = [
  {
    path: ['deliveries', 'list'],
    summary: 'Logout deliveries (back-channel, webhook) newest first, or those of one session; status, attempts and outcome per app.',
    notes: [
      'tessera deliveries list --session H          every notice covering session H (user-wide ones too), oldest first',
      'tessera deliveries list --status dead        notices given up after the retry horizon',
      'Status: pending (waiting or retrying), delivered (the app answered 200/204), dead (gave up).',
    ],
    options: {
      session: { type: 'string', value: 'H', help: 'Only the deliveries covering this session (its handle)' },
      status: { type: 'string', value: 'STATUS', help: 'Only pending, delivered or dead deliveries' },
      app: { type: 'string', value: 'CLIENT_ID', help: 'Only deliveries to this app' },
      limit: { type: 'string', value: 'N', help: 'At most N deliveries without --session (default 100, at most 1000)' },
    },
    async run(ctx, args) {
      const status = parseStatus(args.string('status'));
      const clientId = args.string('app');
      const handle = args.string('session');
      if (handle !== undefined && args.string('limit') !== undefined) throw new UsageError('--limit goes without --session (a session\'s deliveries are all listed)');
      const limit = parseInteger('--limit', args.string('limit'), 100, 1000);
      const authority = await ctx.authority();
      const store = authority.deps.store;
      const keep = (d: Delivery) => (status === undefined || d.status === status) && (clientId === undefined || d.clientId === clientId);

      if (handle === undefined) {
        const deliveries = await store.listDeliveries({ status, clientId, limit });
        if (args.flag('json')) return ctx.json({ deliveries: deliveries.map(deliveryJson), counts: await store.countDeliveries() });
        if (deliveries.length === 0) return ctx.out('No logout deliveries match.');
        for (const line of deliveryTable(deliveries)) ctx.out(line);
        const counts = await store.countDeliveries();
        ctx.out('');
        ctx.out(`In the outbox: ${counts.pending} pending, ${counts.delivered} delivered, ${counts.dead} dead.`);
        return;
      }

      const session = await store.findSessionByHandle(handle);
      if (!session) throw new TesseraError('SESSION_NOT_FOUND', `no such session "${handle}"`);
      const deliveries = (await store.listDeliveriesBySession(session.handle)).filter(keep);
      // Joined apps with neither a back-channel URI nor a webhook are told nothing: they see
      // the end when they next ask (whoami, introspection, the revocation feed).
      const apps = new Map((await store.listApps()).map((a) => [a.clientId, a]));
      const pullOnly = session.apps.map((a) => a.clientId).filter((id) => {
        const app = apps.get(id);
        return !app || channelsOf(app).length === 0;
      });
      if (args.flag('json')) {
        return ctx.json({ handle: session.handle, active: session.endedAt === null, ended_at: session.endedAt === null ? null : new Date(session.endedAt).toISOString(), deliveries: deliveries.map(deliveryJson), pull_only: pullOnly });
      }
      const state = session.endedAt === null ? 'active' : `ended ${formatTime(session.endedAt)} (${session.endReason ?? 'unknown'})`;
      ctx.out(`Session ${printable(session.handle)} of user ${printable(session.userId)}: ${state}.`);
      if (deliveries.length === 0) ctx.out(session.endedAt === null ? 'No logout deliveries yet: the session has not ended.' : 'No logout deliveries match.');
      else for (const line of deliveryTable(deliveries)) ctx.out(line);
      if (pullOnly.length > 0) ctx.out(`Apps without a back-channel or webhook (they see the end at their next check): ${pullOnly.map(printable).join(', ')}`);
    },
  },
  {
    path: ['deliveries', 'retry'],
    summary: 'Send a pending or dead delivery again now, with a fresh retry horizon.',
    notes: ['A running server sends it at its next outbox poll (outbox.pollIntervalMs, 1 s by default).'],
    options: { id: { type: 'string', value: 'N', help: 'The delivery id (from deliveries list)', required: true } },
    async run(ctx, args) {
      const id = parseInteger('--id', args.need('id'), 0, 2_147_483_647);
      const authority = await ctx.authority();
      let delivery;
      try {
        delivery = await authority.deliveries.retryDelivery(id, 'admin');
      } catch (error) {
        // As the admin API: unknown ids and delivered ones are not retried.
        if (isTesseraError(error, 'DELIVERY_NOT_FOUND')) throw new TesseraError('DELIVERY_NOT_FOUND', `no delivery ${id} to retry (unknown, or already delivered)`);
        throw error;
      }
      if (args.flag('json')) return ctx.json({ delivery: deliveryJson(delivery) });
      ctx.out(`Delivery ${delivery.id} to ${printable(delivery.clientId)} (${delivery.channel}) is pending again; it is sent at the server's next outbox poll.`);
    },
  },
];
