import { Type } from '@fastify/type-provider-typebox';
import { DELIVERY_URNS, TesseraError, type SsfEvent, type SsfStream, type SsfStreamDeliveryState } from '@tessera/core';
import type { ServerContext, TesseraApp } from '../context.js';
import { Cursor, PageLimit, errors } from '../schemas.js';
import { iso, isoOrNull } from '../views.js';

const admin = { security: [{ admin: [] }] };

const DeliveryState = Type.Object({
  pending: Type.Integer(),
  delivered: Type.Integer(),
  dead: Type.Integer(),
  oldest_pending_at: Type.Union([Type.String(), Type.Null()]),
  last_delivered_at: Type.Union([Type.String(), Type.Null()]),
  last_error: Type.Union([Type.String(), Type.Null()]),
  last_error_at: Type.Union([Type.String(), Type.Null()]),
});
const AdminStreamView = Type.Object({
  stream_id: Type.String(),
  client_id: Type.String(),
  status: Type.String(),
  status_reason: Type.Union([Type.String(), Type.Null()]),
  delivery_method: Type.String(),
  endpoint_url: Type.String(),
  aud: Type.Array(Type.String()),
  events_delivered: Type.Array(Type.String()),
  format: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  delivery: DeliveryState,
});
const EventView = Type.Object({
  id: Type.Integer(),
  jti: Type.String(),
  event_type: Type.String(),
  status: Type.String(),
  attempts: Type.Integer(),
  created_at: Type.String(),
  next_attempt_at: Type.Union([Type.String(), Type.Null()]),
  last_attempt_at: Type.Union([Type.String(), Type.Null()]),
  delivered_at: Type.Union([Type.String(), Type.Null()]),
  last_status: Type.Union([Type.Integer(), Type.Null()]),
  last_error: Type.Union([Type.String(), Type.Null()]),
});

/** A stream for operators: status and delivery state, never the receiver's authorization header. */
export function adminStreamJson(s: SsfStream & { delivery: SsfStreamDeliveryState }) {
  return {
    stream_id: s.id,
    client_id: s.clientId,
    status: s.status,
    status_reason: s.statusReason,
    delivery_method: DELIVERY_URNS[s.deliveryMethod],
    endpoint_url: s.endpointUrl,
    aud: s.audience,
    events_delivered: s.eventsDelivered,
    format: s.subjectFormat,
    description: s.description,
    created_at: iso(s.createdAt),
    delivery: {
      pending: s.delivery.pending,
      delivered: s.delivery.delivered,
      dead: s.delivery.dead,
      oldest_pending_at: isoOrNull(s.delivery.oldestPendingAt),
      last_delivered_at: isoOrNull(s.delivery.lastDeliveredAt),
      last_error: s.delivery.lastError,
      last_error_at: isoOrNull(s.delivery.lastErrorAt),
    },
  };
}

/** The body of an operator's status change (the console checks its form against it too). */
export const StreamStatusBody = Type.Object({ status: Type.Union([Type.Literal('enabled'), Type.Literal('paused'), Type.Literal('disabled')]), reason: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false });

/**
 * The body of an operator's audience change: `aud` as a stream configuration shows it (one
 * value, or several). The rules of a value (StringOrURI) are core's setAudienceAsAdmin.
 */
const AudienceValue = Type.String({ minLength: 1, maxLength: 512 });
export const StreamAudienceBody = Type.Object({ aud: Type.Union([AudienceValue, Type.Array(AudienceValue, { minItems: 1, maxItems: 10 })]) }, { additionalProperties: false });

/** A SET for operators: its outbox state, never its claims or signature. */
export const eventJson = (e: SsfEvent) => ({
  id: e.id,
  jti: e.jti,
  event_type: e.eventType,
  status: e.status,
  attempts: e.attempts,
  created_at: iso(e.createdAt),
  next_attempt_at: e.status === 'pending' ? iso(e.nextAttemptAt) : null,
  last_attempt_at: isoOrNull(e.lastAttemptAt),
  delivered_at: isoOrNull(e.deliveredAt),
  last_status: e.lastStatus,
  last_error: e.lastError,
});

/**
 * The Shared Signals streams for operators (under /admin/api, admin token): every stream with
 * its status and delivery state, a stream's recent events, a status change by the operator
 * (the receiver hears of it by a `stream-updated` event), the `aud` of a stream's SETs, and
 * the retry of a dead SET.
 */
export async function adminSsfRoutes(app: TesseraApp, { authority }: ServerContext): Promise<void> {
  const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
  app.get('/ssf/streams', {
    schema: { ...admin, tags: ['admin', 'ssf'], description: 'Every SSF stream with its status and delivery state (pending, delivered, dead, last error).', response: { 200: Type.Object({ streams: Type.Array(AdminStreamView) }), ...errors(401) } },
  }, async () => ({ streams: (await authority.ssf.listAllStreams()).map(adminStreamJson) }));

  app.get('/ssf/streams/:id/events', {
    schema: {
      ...admin, tags: ['admin', 'ssf'], description: 'A stream\'s SETs, newest first (their claims are not shown).', params: Params,
      querystring: Type.Object({ status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')])), limit: PageLimit(50) }, { additionalProperties: false }),
      response: { 200: Type.Object({ events: Type.Array(EventView) }), ...errors(400, 401, 404) },
    },
  }, async (request) => {
    const stream = await authority.deps.store.findSsfStream(request.params.id);
    if (!stream) throw new TesseraError('SSF_STREAM_NOT_FOUND');
    const events = await authority.deps.store.listSsfEvents(stream.id, { ...(request.query.status ? { status: request.query.status } : {}), limit: request.query.limit });
    return { events: events.map(eventJson) };
  });

  app.post('/ssf/streams/:id/status', {
    schema: {
      ...admin, tags: ['admin', 'ssf'], description: 'Set a stream\'s status as the operator (enabled, paused, disabled); the receiver is told by a stream-updated event (not when disabled: a disabled stream sends nothing).', params: Params,
      body: StreamStatusBody,
      response: { 200: Type.Object({ stream: AdminStreamView }), ...errors(400, 401, 404) },
    },
  }, async (request) => {
    const stream = await authority.ssf.setStatusAsAdmin(request.params.id, request.body.status, request.body.reason ?? null);
    return { stream: adminStreamJson({ ...stream, delivery: await authority.deps.store.ssfDeliveryState(stream.id) }) };
  });

  app.put('/ssf/streams/:id/audience', {
    schema: {
      ...admin, tags: ['admin', 'ssf'], params: Params, body: StreamAudienceBody,
      description: 'Set the `aud` of a stream\'s SETs as the operator (by default the receiver client\'s id): for a receiver that checks another value, such as Okta, which expects its org URL. Every SET sent from then on carries it, those already waiting included. A value with a colon must be a URI (400 INVALID_REQUEST).',
      response: { 200: Type.Object({ stream: AdminStreamView }), ...errors(400, 401, 404) },
    },
  }, async (request) => {
    const { aud } = request.body;
    const stream = await authority.ssf.setAudienceAsAdmin(request.params.id, typeof aud === 'string' ? [aud] : aud);
    return { stream: adminStreamJson({ ...stream, delivery: await authority.deps.store.ssfDeliveryState(stream.id) }) };
  });

  app.post('/ssf/streams/:id/events/:event/retry', {
    schema: {
      ...admin, tags: ['admin', 'ssf'], description: 'Send a dead SET again: pending again with a fresh horizon (ssf.horizonSeconds), the same jti and claims. A paused stream holds it until enabled; a disabled stream is 409 SSF_STREAM_DISABLED; anything but a dead SET of this stream is 404 SSF_EVENT_NOT_FOUND.',
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }), event: Cursor({ minimum: 1 }) }),
      response: { 200: Type.Object({ event: EventView }), ...errors(400, 401, 404, 409) },
    },
  }, async (request) => {
    const event = await authority.ssf.retryEvent(request.params.id, request.params.event, 'admin', request.ip);
    return { event: eventJson(event) };
  });
}
