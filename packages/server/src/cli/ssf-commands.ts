import { TesseraError, type SsfStreamStatus } from '@tessera/core';
import { adminStreamJson, eventJson } from '../routes/admin-ssf.js';
import { UsageError, type Command } from './command.js';
import { clip, formatTable, formatTime, printable } from './output.js';

const STATUSES: readonly SsfStreamStatus[] = ['enabled', 'paused', 'disabled'];

/** `work` on stream `id`, with an unknown stream named in the error. */
async function onStream<T>(id: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof TesseraError && error.code === 'SSF_STREAM_NOT_FOUND') throw new TesseraError('SSF_STREAM_NOT_FOUND', `no stream "${printable(id)}"`);
    throw error;
  }
}

/**
 * `tessera ssf streams | status | audience | retry`: the Shared Signals streams of every receiver
 * with their status and delivery state (pending, delivered, dead, the last error), an
 * operator's status change (the receiver is told by a stream-updated event), the `aud` of a
 * stream's SETs, and sending a dead SET again. Works on the same database as a running server.
 *
 * @example
 * ```sh
 * tessera ssf streams
 * tessera ssf status --stream st_… --status paused --reason "receiver maintenance"
 * tessera ssf audience --stream st_… --aud https://example.okta.com
 * tessera ssf retry --stream st_… --event 42
 * ```
 */
export const ssfCommands: Command[] = [
  {
    path: ['ssf', 'streams'],
    summary: 'Shared Signals streams: receiver, method, status, and delivery state (pending, delivered, dead, last error).',
    notes: ['Pending SETs of a paused stream are held (up to ssf.horizonSeconds); a disabled stream holds none.'],
    options: {},
    async run(ctx, args) {
      const authority = await ctx.authority();
      const streams = await authority.ssf.listAllStreams();
      if (args.flag('json')) return ctx.json({ streams: streams.map(adminStreamJson) });
      if (streams.length === 0) return ctx.out('No Shared Signals streams.');
      const rows = streams.map((s) => [
        s.id,
        s.clientId,
        s.deliveryMethod,
        s.status + (s.statusReason ? ` (${clip(s.statusReason, 30)})` : ''),
        String(s.delivery.pending),
        String(s.delivery.delivered),
        String(s.delivery.dead),
        s.delivery.lastDeliveredAt === null ? '-' : formatTime(s.delivery.lastDeliveredAt),
        s.delivery.lastError === null ? '-' : `${clip(s.delivery.lastError, 50)} ${formatTime(s.delivery.lastErrorAt ?? 0)}`,
      ]);
      for (const line of formatTable(['STREAM', 'RECEIVER', 'METHOD', 'STATUS', 'PENDING', 'DELIVERED', 'DEAD', 'LAST DELIVERED', 'LAST ERROR'], rows)) ctx.out(line);
    },
  },
  {
    path: ['ssf', 'status'],
    summary: 'Set a stream\'s status as the operator: enabled, paused (holds events) or disabled (drops them).',
    notes: ['The receiver hears of it by an SSF stream-updated event (not when disabled: a disabled stream sends nothing).'],
    options: {
      stream: { type: 'string', value: 'ID', help: 'The stream id (from ssf streams)', required: true },
      status: { type: 'string', value: 'STATUS', help: 'enabled, paused or disabled', required: true },
      reason: { type: 'string', value: 'TEXT', help: 'Why (sent to the receiver in stream-updated)' },
    },
    async run(ctx, args) {
      const status = args.need('status');
      if (!(STATUSES as readonly string[]).includes(status)) throw new UsageError(`--status "${status}": must be enabled, paused or disabled`);
      const authority = await ctx.authority();
      const id = args.need('stream');
      const stream = await onStream(id, () => authority.ssf.setStatusAsAdmin(id, status as SsfStreamStatus, args.string('reason') ?? null));
      if (args.flag('json')) return ctx.json({ stream: adminStreamJson({ ...stream, delivery: await authority.deps.store.ssfDeliveryState(stream.id) }) });
      ctx.out(`Stream ${printable(stream.id)} of ${printable(stream.clientId)} is ${stream.status}.`);
    },
  },
  {
    path: ['ssf', 'audience'],
    summary: 'Set the aud of a stream\'s SETs (by default the receiver client\'s id), for a receiver that checks another value.',
    notes: [
      'Okta, as a receiver, expects its org URL (https://{yourOktaDomain}). Give --aud again for several values.',
      'Every SET sent from now on carries it, those already waiting (pending, held by a pause, sent again) included.',
    ],
    options: {
      stream: { type: 'string', value: 'ID', help: 'The stream id (from ssf streams)', required: true },
      aud: { type: 'string', value: 'VALUE', help: 'An audience value (a URI when it holds a colon)', required: true, multiple: true },
    },
    async run(ctx, args) {
      const authority = await ctx.authority();
      const id = args.need('stream');
      const stream = await onStream(id, () => authority.ssf.setAudienceAsAdmin(id, args.strings('aud')));
      if (args.flag('json')) return ctx.json({ stream: adminStreamJson({ ...stream, delivery: await authority.deps.store.ssfDeliveryState(stream.id) }) });
      ctx.out(`SETs of stream ${printable(stream.id)} now go to aud ${stream.audience.map(printable).join(', ')}.`);
    },
  },
  {
    path: ['ssf', 'retry'],
    summary: 'Send a dead SET of a stream again: pending again with a fresh horizon, the same jti and claims.',
    notes: ['The event id is in the admin API\'s events listing (GET /admin/api/ssf/streams/:id/events?status=dead) and the console\'s stream page. A running server sends it at its next push poll; a paused stream holds it.'],
    options: {
      stream: { type: 'string', value: 'ID', help: 'The stream id (from ssf streams)', required: true },
      event: { type: 'string', value: 'N', help: 'The dead SET\'s event id', required: true },
    },
    async run(ctx, args) {
      const raw = args.need('event');
      if (!/^[1-9]\d{0,14}$/.test(raw)) throw new UsageError(`--event "${printable(raw)}": must be a whole number from 1`);
      const authority = await ctx.authority();
      const id = args.need('stream');
      let event;
      try {
        event = await onStream(id, () => authority.ssf.retryEvent(id, Number(raw), 'admin'));
      } catch (error) {
        if (error instanceof TesseraError && error.code === 'SSF_EVENT_NOT_FOUND') throw new TesseraError('SSF_EVENT_NOT_FOUND', `no dead SET ${raw} on stream "${printable(id)}"`);
        throw error;
      }
      if (args.flag('json')) return ctx.json({ event: eventJson(event) });
      ctx.out(`SET ${event.id} (${printable(event.jti)}) of stream ${printable(id)} is pending again.`);
    },
  },
];
