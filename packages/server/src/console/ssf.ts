import { Type } from '@fastify/type-provider-typebox';
import { SSF_EVENTS, TesseraError, type SsfEvent, type SsfStream, type SsfStreamDeliveryState } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TesseraApp } from '../context.js';
import { StreamAudienceBody, StreamStatusBody } from '../routes/admin-ssf.js';
import { Cursor } from '../schemas.js';
import { barChart } from './charts.js';
import { checkAgainst, formText, seeOther, showPage, type ConsoleKit, CONSOLE_ROUTE } from './kit.js';
import { field, formError, hidden, notice, postButton, renderConsolePage, select, table, text, time, type FieldErrors } from './layout.js';

const STREAM_DONE: Record<string, string> = {
  status: 'The stream\'s status is changed. The receiver is told by a stream-updated event (unless the stream is now disabled).',
  retried: 'The SET is queued again and will be sent now (a paused stream holds it until it is enabled).',
  audience: 'The audience is changed: every SET sent from now on carries it, those already waiting included.',
};

const STATUSES = [['enabled', 'enabled: deliver'], ['paused', 'paused: hold events'], ['disabled', 'disabled: drop events']] as const;
// Worded for the form; the rules themselves are the admin API's schema (StreamStatusBody).
const MESSAGES: Record<string, string> = {
  status: 'Choose enabled, paused or disabled.',
  reason: 'A reason has at most 1024 characters.',
  aud: 'Give one to ten values, separated by spaces, each at most 512 characters.',
};
const RECENT = 50;

const form = { ...CONSOLE_ROUTE, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] };
const StreamParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const EventStatus = Type.Union([Type.Literal(''), Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')]);

// The event types by their short names (CAEP, RISC, SSF), for tables a person reads.
const EVENT_NAMES = new Map<string, string>(Object.values(SSF_EVENTS).map((uri) => [uri, `${uri.split('/').pop()!} (${/\/caep\//.test(uri) ? 'CAEP' : /\/risc\//.test(uri) ? 'RISC' : 'SSF'})`]));
const eventName = (uri: string): string => EVENT_NAMES.get(uri) ?? uri;
const eventList = (uris: string[]): string => (uris.length === 0 ? '—' : uris.map((u) => text(eventName(u))).join(', '));
/** The short names only (session-revoked, …), for the list's narrow column. */
const shortList = (uris: string[]): string => (uris.length === 0 ? '—' : uris.map((u) => text(u.split('/').pop()!)).join(', '));

/** A pill for a stream's or a SET's status; the class names are the stylesheet's status-*. */
const pill = (status: string): string => `<span class="pill status-${text(status)}" data-status="${text(status)}">${text(status)}</span>`;

/** The stream's status with the reason it was given. */
const statusCell = (s: SsfStream): string => `${pill(s.status)}${s.statusReason ? ` ${text(s.statusReason)}` : ''}`;

/** The last error of a stream or a SET, with the HTTP status when the text does not say it. */
function errorText(error: string | null, at: number | null, httpStatus: number | null = null): string {
  if (error === null) return '—';
  const status = httpStatus !== null && !error.includes(String(httpStatus)) ? ` (HTTP ${httpStatus})` : '';
  return `${text(error)}${status}${at !== null ? ` at ${time(at)}` : ''}`;
}

/**
 * Who a SET is about, read from its `sub_id` only (never the signed SET, whose claims are
 * the receiver's business): a user (linked), a verified email, a user's session, or the
 * stream itself (verification, stream-updated).
 */
function subjectOf(event: SsfEvent): string {
  const sub = (event.claims as { sub_id?: unknown }).sub_id;
  const s = (typeof sub === 'object' && sub !== null ? sub : {}) as Record<string, unknown>;
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const user = (u: unknown): string => {
    const o = (typeof u === 'object' && u !== null ? u : {}) as Record<string, unknown>;
    if (o.format === 'iss_sub' && str(o.sub)) return `user <a href="/admin/users/${encodeURIComponent(str(o.sub)!)}">${text(str(o.sub))}</a>`;
    if (o.format === 'email' && str(o.email)) return `email ${text(str(o.email))}`;
    return 'unknown subject';
  };
  if (event.subjectKey.startsWith('stream:')) return 'this stream';
  if (s.format === 'complex') {
    const session = str((s.session as Record<string, unknown> | undefined)?.id);
    return `${user(s.user)}${session ? `, session <a href="/admin/sessions/${encodeURIComponent(session)}">${text(session)}</a>` : ''}`;
  }
  return user(s);
}

/** The delivery state of a stream as a table cell: counts, oldest pending. */
function deliveryCell(d: SsfStreamDeliveryState): string {
  return `<span data-count="pending">${d.pending}</span> pending, <span data-count="delivered">${d.delivered}</span> delivered, <span data-count="dead">${d.dead}</span> dead${d.oldestPendingAt !== null ? `; oldest pending ${time(d.oldestPendingAt)}` : ''}`;
}

/**
 * The Shared Signals streams in the console: every stream of every receiver with its status
 * and delivery state (`GET /admin/ssf`), one stream with its recent SETs (`GET
 * /admin/ssf/:id`), the operator's status and audience changes and the retry of a dead SET.
 * The figures are core's listAllStreams and the store's listSsfEvents, the same as GET
 * /admin/api/ssf/streams and …/events; the status and audience changes are core's
 * setStatusAsAdmin and setAudienceAsAdmin, checked against the admin API's own body schemas,
 * and the retry core's retryEvent, as on the API.
 * No page shows a signed SET, its claims beyond the subject, or a receiver's
 * authorization header.
 */
export async function ssfPages(app: TesseraApp, kit: ConsoleKit): Promise<void> {
  const { authority } = kit;
  const store = authority.deps.store;

  async function receiverNames(): Promise<Map<string, string>> {
    return new Map((await authority.apps.listApps()).map((a) => [a.clientId, a.name]));
  }
  const receiver = (names: Map<string, string>, clientId: string): string =>
    `<a href="/admin/apps/${encodeURIComponent(clientId)}">${text(names.get(clientId) ?? clientId)}</a> <code>${text(clientId)}</code>`;

  app.get('/ssf', { schema: { ...CONSOLE_ROUTE, produces: ['text/html'], description: 'Admin console: every Shared Signals stream with its status and delivery state.' } }, async (request, reply) => {
    const [streams, names] = await Promise.all([authority.ssf.listAllStreams(), receiverNames()]);
    const rows = streams.map((s) => [
      `<a href="/admin/ssf/${encodeURIComponent(s.id)}">${text(s.id)}</a>`,
      receiver(names, s.clientId),
      `<span data-method="${text(s.deliveryMethod)}">${text(s.deliveryMethod)}</span><br><code>${text(s.endpointUrl)}</code>`,
      `<span data-stream-status="${text(s.status)}">${statusCell(s)}</span>`,
      `requested: ${shortList(s.eventsRequested)}; delivered: ${shortList(s.eventsDelivered)}`,
      `<span data-stream="${text(s.id)}">${deliveryCell(s.delivery)}</span>`,
      errorText(s.delivery.lastError, s.delivery.lastErrorAt),
      time(s.lastVerificationAt),
    ]);
    const totals = streams.reduce((t, s) => ({ pending: t.pending + s.delivery.pending, delivered: t.delivered + s.delivery.delivered, dead: t.dead + s.delivery.dead }), { pending: 0, delivered: 0, dead: 0 });
    const body = `<p class="hint">Streams are made by receivers (SSF stream management, with an access token of a client that has the client_credentials grant). Here an operator sees them, pauses, disables or enables one, and sends a dead SET again.</p>
${streams.length > 0 ? `<section class="card" aria-labelledby="h-sets"><h2 id="h-sets">SETs of every stream</h2>${barChart({ id: 'chart-ssf', title: 'Security Event Tokens of every stream by status', bars: [
      { label: 'delivered', value: totals.delivered, className: 'bar-delivered' },
      { label: 'pending', value: totals.pending, className: 'bar-pending' },
      { label: 'dead', value: totals.dead, className: 'bar-dead' },
    ] })}</section>` : ''}
${table('Shared Signals streams', ['Stream', 'Receiver', 'Delivery method and endpoint', 'Status', 'Events', 'SETs', 'Last error', 'Last verification'], rows, 'No receiver has made a stream yet.')}`;
    return showPage(kit, request, reply, 200, (csrf) => renderConsolePage({ title: 'Shared Signals', section: 'ssf', csrf, body }));
  });

  async function showStream(request: FastifyRequest, reply: FastifyReply, id: string, status: number, extra: { done?: string; filter?: SsfEvent['status']; errors?: FieldErrors; values?: { status?: string; reason?: string; aud?: string } } = {}) {
    const stream = id.length <= 128 ? await store.findSsfStream(id) : null;
    if (!stream) throw new TesseraError('SSF_STREAM_NOT_FOUND');
    const [delivery, events, names] = await Promise.all([store.ssfDeliveryState(stream.id), store.listSsfEvents(stream.id, { ...(extra.filter ? { status: extra.filter } : {}), limit: RECENT }), receiverNames()]);
    const base = `/admin/ssf/${encodeURIComponent(stream.id)}`;
    const errors = extra.errors ?? {};
    const body = (csrf: string) => {
      const rows = events.map((e) => [
        text(eventName(e.eventType)),
        subjectOf(e),
        `<span data-event="${e.id}">${pill(e.status)}</span>`,
        String(e.attempts),
        time(e.createdAt),
        e.status === 'pending' ? time(e.nextAttemptAt) : e.status === 'delivered' ? `delivered ${time(e.deliveredAt)}` : '—',
        errorText(e.lastError, e.lastAttemptAt, e.lastStatus),
        e.status === 'dead' && stream.status !== 'disabled'
          ? postButton(`${base}/events/${e.id}/retry`, csrf, 'Send again', { small: true, name: `Send again: the ${eventName(e.eventType)} SET ${e.id}` })
          : '',
      ]);
      return `${notice(extra.done ? STREAM_DONE[extra.done] : undefined)}
<dl class="facts"><dt>Receiver</dt><dd>${receiver(names, stream.clientId)}</dd>
<dt>Delivery method</dt><dd>${text(stream.deliveryMethod)}</dd>
<dt>${stream.deliveryMethod === 'push' ? 'Endpoint' : 'Poll URL'}</dt><dd><code>${text(stream.endpointUrl)}</code></dd>
${stream.deliveryMethod === 'push' ? `<dt>Authorization header</dt><dd>${stream.authorizationHeader ? 'set by the receiver (never shown)' : 'none'}</dd>` : ''}
<dt>Status</dt><dd data-stream-status="${text(stream.status)}">${statusCell(stream)}</dd>
<dt>Events requested</dt><dd>${eventList(stream.eventsRequested)}</dd><dt>Events delivered</dt><dd>${eventList(stream.eventsDelivered)}</dd>
<dt>Subject format</dt><dd>${text(stream.subjectFormat)}</dd>
<dt>Audience (aud)</dt><dd data-stream-aud>${stream.audience.map((a) => `<code>${text(a)}</code>`).join(' ')}</dd>
${stream.description ? `<dt>Description</dt><dd>${text(stream.description)}</dd>` : ''}
<dt>Created</dt><dd>${time(stream.createdAt)}</dd><dt>Changed</dt><dd>${time(stream.updatedAt)}</dd>
<dt>Last verification</dt><dd>${time(stream.lastVerificationAt)}</dd></dl>
<div class="cards"><section class="card" aria-labelledby="h-stream-sets"><h2 id="h-stream-sets">SETs by status</h2>${barChart({ id: 'chart-stream', title: 'This stream\'s SETs by status', bars: [
        { label: 'delivered', value: delivery.delivered, className: 'bar-delivered' },
        { label: 'pending', value: delivery.pending, className: 'bar-pending' },
        { label: 'dead', value: delivery.dead, className: 'bar-dead' },
      ] })}</section>
<section class="card" aria-labelledby="h-stream-state"><h2 id="h-stream-state">Delivery state</h2><p data-stream="${text(stream.id)}">${deliveryCell(delivery)}</p>
<dl class="facts"><dt>Last delivered</dt><dd>${time(delivery.lastDeliveredAt)}</dd><dt>Last error</dt><dd>${errorText(delivery.lastError, delivery.lastErrorAt)}</dd></dl></section></div>
<h2 id="status">Change the status</h2>${formError(errors.form)}
<p class="hint">Paused holds new events (up to ssf.horizonSeconds) and delivers them in order when enabled again; disabled drops the pending ones and plans no new ones. The receiver is told by a stream-updated event, except when disabled.</p>
<form method="post" action="${base}/status">${hidden('csrf', csrf)}
${select({ name: 'status', label: 'Status', value: extra.values?.status ?? stream.status, options: STATUSES, errors })}
${field({ name: 'reason', label: 'Reason (optional, sent to the receiver)', value: extra.values?.reason ?? '', errors, autocomplete: 'off' })}
<button type="submit">Set the status</button></form>
<h2 id="audience">Change the audience</h2>
<p class="hint">The <code>aud</code> of this stream's SETs; by default the receiver client's id. Okta, as a receiver, expects its org URL (https://{yourOktaDomain}). Every SET sent from now on carries it, those already waiting (pending, held by a pause, sent again) included.</p>
<form method="post" action="${base}/audience">${hidden('csrf', csrf)}
${field({ name: 'aud', label: 'Audience (values separated by spaces)', value: extra.values?.aud ?? stream.audience.join(' '), errors, autocomplete: 'off', required: true })}
<button type="submit">Set the audience</button></form>
<h2 id="sets">Recent SETs</h2>
<form method="get" action="${base}" class="inline"><div>${select({ name: 'show', label: 'Show', value: extra.filter ?? '', options: [['', 'every status'], ['pending', 'pending'], ['delivered', 'delivered'], ['dead', 'dead']] })}</div><button type="submit">Filter</button></form>
${table(`The stream's SETs, newest first (at most ${RECENT})`, ['Event', 'Subject', 'Status', 'Attempts', 'Made', 'Next attempt', 'Last error', 'Action'], rows, extra.filter ? `No ${extra.filter} SET.` : 'No SET yet.')}
${stream.status === 'disabled' && delivery.dead > 0 ? '<p class="hint">A disabled stream sends nothing: enable it to send a dead SET again.</p>' : ''}`;
    };
    return showPage(kit, request, reply, status, (csrf) => renderConsolePage({ title: `Stream ${stream.id}`, section: 'ssf', csrf, body: body(csrf) }));
  }

  app.get('/ssf/:id', { schema: { ...CONSOLE_ROUTE, produces: ['text/html'], params: StreamParams, querystring: Type.Object({ done: Type.Optional(Type.String({ maxLength: 32 })), show: Type.Optional(EventStatus) }), description: 'Admin console: one Shared Signals stream, its delivery state and its recent SETs.' } }, async (request, reply) =>
    showStream(request, reply, request.params.id, 200, { done: request.query.done, filter: request.query.show || undefined }));

  app.post('/ssf/:id/status', { schema: { ...form, params: StreamParams, description: 'Admin console: set a stream\'s status as the operator (POST /admin/api/ssf/streams/:id/status).' } }, async (request, reply) => {
    const values = { status: (formText(request.body, 'status') ?? '').trim(), reason: (formText(request.body, 'reason') ?? '').trim() };
    // The admin API's body, as the API would get it: an empty reason is left out.
    const body = { status: values.status, ...(values.reason ? { reason: values.reason } : {}) };
    const errors = checkAgainst(StreamStatusBody, body, MESSAGES);
    if (Object.keys(errors).length > 0) return showStream(request, reply, request.params.id, 400, { errors, values });
    await authority.ssf.setStatusAsAdmin(request.params.id, body.status as 'enabled' | 'paused' | 'disabled', body.reason ?? null);
    return seeOther(reply, `/admin/ssf/${encodeURIComponent(request.params.id)}?done=status`);
  });

  app.post('/ssf/:id/audience', { schema: { ...form, params: StreamParams, description: 'Admin console: set the aud of a stream\'s SETs (PUT /admin/api/ssf/streams/:id/audience).' } }, async (request, reply) => {
    const raw = formText(request.body, 'aud') ?? '';
    // Audience values hold no white space (core checks it), so spaces and line breaks separate them.
    const body = { aud: raw.split(/\s+/).filter((v) => v !== '') };
    const errors = checkAgainst(StreamAudienceBody, body, MESSAGES);
    if (Object.keys(errors).length > 0) return showStream(request, reply, request.params.id, 400, { errors, values: { aud: raw } });
    try {
      await authority.ssf.setAudienceAsAdmin(request.params.id, body.aud);
    } catch (error) {
      // The rules of a value (a URI when it holds a colon), in core's own words.
      if (error instanceof TesseraError && error.code === 'INVALID_REQUEST') return showStream(request, reply, request.params.id, 400, { errors: { aud: error.message }, values: { aud: raw } });
      throw error;
    }
    return seeOther(reply, `/admin/ssf/${encodeURIComponent(request.params.id)}?done=audience`);
  });

  app.post('/ssf/:id/events/:event/retry', { schema: { ...form, params: Type.Object({ id: StreamParams.properties.id, event: Cursor({ minimum: 1 }) }), description: 'Admin console: send a dead SET again (POST /admin/api/ssf/streams/:id/events/:event/retry).' } }, async (request, reply) => {
    await authority.ssf.retryEvent(request.params.id, request.params.event, 'admin', request.ip);
    return seeOther(reply, `/admin/ssf/${encodeURIComponent(request.params.id)}?done=retried`);
  });
}
