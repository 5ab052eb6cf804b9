import { audClaim, DELIVERY_URNS, SSF_SUPPORTED_EVENTS, TesseraError, type SsfStream, type StreamInput } from '@tessera/core';
import { Type, type Static } from '@fastify/type-provider-typebox';
import { empty, type ServerContext, type TesseraApp } from '../context.js';
import { errors } from '../schemas.js';
import { requireSsfCaller } from './auth.js';
import { SSF_PATHS } from './paths.js';

const StreamId = Type.String({ minLength: 1, maxLength: 128 });
const Delivery = Type.Object({
  method: Type.String({ maxLength: 64 }),
  endpoint_url: Type.Optional(Type.String({ maxLength: 2048 })),
  authorization_header: Type.Optional(Type.String({ maxLength: 4096 })),
}, { additionalProperties: false });

/**
 * What a receiver may send when it creates, replaces or updates a stream (SSF §8.1.1). The
 * receiver-supplied members are used; transmitter-supplied ones that a receiver sends back
 * (it read the stream, changed a member, and PUTs it whole) are accepted and ignored.
 * `format` is Tessera's: the subject identifier format the receiver wants (`iss_sub`,
 * `email`, `complex` with the session).
 */
const StreamFields = {
  events_requested: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 32 })),
  delivery: Type.Optional(Delivery),
  description: Type.Optional(Type.Union([Type.String({ maxLength: 1024 }), Type.Null()])),
  format: Type.Optional(Type.Union([Type.Literal('iss_sub'), Type.Literal('email'), Type.Literal('complex')])),
  iss: Type.Optional(Type.String({ maxLength: 2048 })),
  aud: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Array(Type.String({ maxLength: 256 }), { maxItems: 16 })])),
  events_supported: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 32 })),
  events_delivered: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 32 })),
  min_verification_interval: Type.Optional(Type.Integer({ minimum: 0 })),
  inactivity_timeout: Type.Optional(Type.Integer({ minimum: 0 })),
};
const CreateBody = Type.Object(StreamFields, { additionalProperties: false });
const UpdateBody = Type.Object({ stream_id: StreamId, ...StreamFields }, { additionalProperties: false });

const StreamView = Type.Object({
  stream_id: Type.String(),
  iss: Type.String(),
  aud: Type.Union([Type.String(), Type.Array(Type.String())]),
  events_supported: Type.Array(Type.String()),
  events_requested: Type.Array(Type.String()),
  events_delivered: Type.Array(Type.String()),
  delivery: Type.Object({ method: Type.String(), endpoint_url: Type.String() }),
  min_verification_interval: Type.Integer(),
  description: Type.Optional(Type.String()),
  format: Type.String(),
});
const StatusView = Type.Object({ stream_id: Type.String(), status: Type.String(), reason: Type.Optional(Type.String()) });

/**
 * A stream's configuration as SSF §8.1.1 shows it. The push `authorization_header` is the
 * receiver's own credential: it is never echoed back (a token with ssf.read must not be able
 * to read it).
 */
export function streamView(stream: SsfStream, issuer: string): Static<typeof StreamView> {
  return {
    stream_id: stream.id,
    iss: issuer,
    aud: audClaim(stream),
    events_supported: [...SSF_SUPPORTED_EVENTS],
    events_requested: stream.eventsRequested,
    events_delivered: stream.eventsDelivered,
    delivery: { method: DELIVERY_URNS[stream.deliveryMethod], endpoint_url: stream.endpointUrl },
    min_verification_interval: stream.minVerificationInterval,
    ...(stream.description !== null ? { description: stream.description } : {}),
    format: stream.subjectFormat,
  };
}

const statusView = (s: SsfStream): Static<typeof StatusView> => ({ stream_id: s.id, status: s.status, ...(s.statusReason ? { reason: s.statusReason } : {}) });

/** The stream input of a request body: the receiver-supplied members only. */
function inputOf(body: Static<typeof CreateBody>, partial: boolean): StreamInput {
  let delivery: StreamInput['delivery'];
  if (body.delivery !== undefined) {
    const method = body.delivery.method === DELIVERY_URNS.push ? 'push' : body.delivery.method === DELIVERY_URNS.poll ? 'poll' : null;
    if (!method) throw new TesseraError('INVALID_REQUEST', `delivery.method must be ${DELIVERY_URNS.push} (push) or ${DELIVERY_URNS.poll} (poll).`);
    delivery = { method, ...(body.delivery.endpoint_url !== undefined ? { endpointUrl: body.delivery.endpoint_url } : {}), authorizationHeader: body.delivery.authorization_header ?? null };
  } else if (!partial) {
    delivery = null;
  }
  return {
    ...(body.events_requested !== undefined || !partial ? { eventsRequested: body.events_requested ?? [] } : {}),
    ...(delivery !== undefined ? { delivery } : {}),
    ...(body.description !== undefined || !partial ? { description: body.description ?? null } : {}),
    ...(body.format !== undefined ? { subjectFormat: body.format } : {}),
  };
}

const bearer = [{ ssfBearer: [] }];

/** Stream management (SSF §8.1.1 to §8.1.4): configuration, status, subjects, verification. */
export async function ssfStreamRoutes(app: TesseraApp, { authority, config }: ServerContext): Promise<void> {
  const { ssf } = authority;
  const Query = Type.Object({ stream_id: Type.Optional(StreamId) }, { additionalProperties: true });

  app.post(SSF_PATHS.configuration, {
    schema: { tags: ['ssf'], security: bearer, description: 'Create a stream (scope ssf.manage). Without `delivery` the stream is polled, at a URL Tessera makes for it.', body: CreateBody, response: { 201: StreamView, ...errors(400, 401, 403, 409) } },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    const stream = await ssf.createStream(caller, inputOf(request.body, false));
    return reply.status(201).send(streamView(stream, config.issuer));
  });

  app.get(SSF_PATHS.configuration, {
    schema: { tags: ['ssf'], security: bearer, description: 'Read one stream (`stream_id`) or list the caller\'s streams (scope ssf.read or ssf.manage).', querystring: Query, response: { 200: Type.Union([StreamView, Type.Array(StreamView)]), ...errors(400, 401, 403, 404) } },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    const id = request.query.stream_id;
    if (id !== undefined) return streamView(await ssf.getStream(caller, id), config.issuer);
    return (await ssf.listStreams(caller)).map((s) => streamView(s, config.issuer));
  });

  for (const method of ['PATCH', 'PUT'] as const) {
    app.route({
      method,
      url: SSF_PATHS.configuration,
      schema: { tags: ['ssf'], security: bearer, description: method === 'PATCH' ? 'Update the given receiver-supplied members of a stream (scope ssf.manage).' : 'Replace a stream\'s receiver-supplied members; those left out take their defaults (scope ssf.manage).', body: UpdateBody, response: { 200: StreamView, ...errors(400, 401, 403, 404) } },
      handler: async (request, reply) => {
        const caller = await requireSsfCaller(request, reply, authority);
        const body = request.body as Static<typeof UpdateBody>;
        const stream = await ssf.updateStream(caller, body.stream_id, inputOf(body, method === 'PATCH'), method === 'PUT');
        return streamView(stream, config.issuer);
      },
    });
  }

  app.delete(SSF_PATHS.configuration, {
    schema: { tags: ['ssf'], security: bearer, description: 'Delete a stream with its undelivered events (scope ssf.manage).', querystring: Type.Object({ stream_id: StreamId }, { additionalProperties: true }), response: { 204: Type.Null(), ...errors(400, 401, 403, 404) } },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    await ssf.deleteStream(caller, request.query.stream_id);
    return empty(reply, 204);
  });

  app.get(SSF_PATHS.status, {
    schema: { tags: ['ssf'], security: bearer, description: 'A stream\'s status: enabled, paused or disabled (scope ssf.read or ssf.manage).', querystring: Type.Object({ stream_id: StreamId }, { additionalProperties: true }), response: { 200: StatusView, ...errors(400, 401, 403, 404) } },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    return statusView(await ssf.getStatus(caller, request.query.stream_id));
  });

  app.post(SSF_PATHS.status, {
    schema: {
      tags: ['ssf'], security: bearer,
      description: 'Set a stream\'s status (scope ssf.manage): paused holds events (up to ssf.horizonSeconds) and delivers them in order when enabled again; disabled drops them.',
      body: Type.Object({ stream_id: StreamId, status: Type.Union([Type.Literal('enabled'), Type.Literal('paused'), Type.Literal('disabled')]), reason: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false }),
      response: { 200: StatusView, ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    return statusView(await ssf.updateStatus(caller, request.body.stream_id, request.body.status, request.body.reason ?? null));
  });

  app.post(SSF_PATHS.verification, {
    schema: {
      tags: ['ssf'], security: bearer,
      description: 'Ask for a verification event echoing `state` (scope ssf.manage) → 204. Sooner than min_verification_interval after the last one → 429 SSF_VERIFICATION_TOO_SOON with Retry-After.',
      body: Type.Object({ stream_id: StreamId, state: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 429) },
    },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    await ssf.requestVerification(caller, request.body.stream_id, request.body.state);
    return empty(reply, 204);
  });

  const Subject = Type.Object({}, { additionalProperties: true, 'x-max-depth': 4, 'x-max-bytes': 4096 });
  app.post(SSF_PATHS.addSubject, {
    schema: {
      tags: ['ssf'], security: bearer,
      description: 'Add a subject to a stream (scope ssf.manage) → 200. Subjects are all in by default (default_subjects ALL); adding one undoes a removal. Nothing is looked up: the answer is the same whether such a user exists or not.',
      body: Type.Object({ stream_id: StreamId, subject: Subject, verified: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: { 200: Type.Null(), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    await ssf.setSubject(caller, request.body.stream_id, request.body.subject, true);
    return empty(reply, 200);
  });

  app.post(SSF_PATHS.removeSubject, {
    schema: {
      tags: ['ssf'], security: bearer,
      description: 'Remove a subject from a stream (scope ssf.manage) → 204: no more events about it on this stream.',
      body: Type.Object({ stream_id: StreamId, subject: Subject }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    await ssf.setSubject(caller, request.body.stream_id, request.body.subject, false);
    return empty(reply, 204);
  });
}
