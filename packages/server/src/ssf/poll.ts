import { TesseraError } from '@tessera/core';
import { Type } from '@fastify/type-provider-typebox';
import type { ServerContext, TesseraApp } from '../context.js';
import { errors } from '../schemas.js';
import { requireSsfCaller } from './auth.js';
import { SSF_PATHS } from './paths.js';
import type { SsfWakeup } from './wakeup.js';

const DEFAULT_MAX_EVENTS = 100;
const MAX_EVENTS = 1_000;
// A waiting poll re-reads the outbox at least this often, in case a wake-up from another
// node was missed (SQLite shared by a CLI process has no NOTIFY).
const FALLBACK_TICK_MS = 1_000;

/**
 * Poll delivery (RFC 8936) at the URL Tessera made for the stream. One request acknowledges
 * (`ack`), reports errors (`setErrs`, the SETs are then given up with the receiver's error)
 * and asks for more (`maxEvents`, default 100; 0 = acknowledge only). Without
 * `returnImmediately` it is a long poll: it answers as soon as a SET is ready (woken by the
 * commit that planned it, on this node or another), or with no SETs after
 * `ssf.longPollSeconds`. A returned SET that is not acknowledged within
 * `ssf.pollRedeliverSeconds` is returned again; SETs are kept until acknowledged, up to
 * `ssf.horizonSeconds`. A paused stream keeps its SETs and returns only those about the stream itself.
 */
export async function ssfPollRoutes(app: TesseraApp, { authority, config }: ServerContext, wakeup: SsfWakeup, isClosing: () => boolean): Promise<void> {
  const store = authority.deps.store;
  // Outbox times (settled, claimed, leased until) on the authority's clock, as the push worker
  // and the planning of SETs use; the long poll's wait itself is real time.
  const clock = authority.deps.clock;
  app.post(`${SSF_PATHS.poll}/:stream_id`, {
    schema: {
      tags: ['ssf'],
      security: [{ ssfBearer: [] }],
      description: 'RFC 8936 poll of a poll stream (scope ssf.read or ssf.manage): {maxEvents, returnImmediately, ack, setErrs} → {sets, moreAvailable}.',
      params: Type.Object({ stream_id: Type.String({ minLength: 1, maxLength: 128 }) }),
      body: Type.Optional(Type.Object({
        maxEvents: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_EVENTS })),
        returnImmediately: Type.Optional(Type.Boolean()),
        ack: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: MAX_EVENTS })),
        setErrs: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Object({ err: Type.String({ maxLength: 64 }), description: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false }), { maxProperties: MAX_EVENTS, 'x-max-depth': 3, 'x-max-bytes': 262_144 })),
      }, { additionalProperties: false })),
      response: { 200: Type.Object({ sets: Type.Record(Type.String(), Type.String()), moreAvailable: Type.Boolean() }), ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    authority.ssf.requireScope(caller, 'ssf.read');
    const stream = await authority.ssf.ownStream(caller, request.params.stream_id);
    if (stream.deliveryMethod !== 'poll') throw new TesseraError('INVALID_REQUEST', 'This stream is delivered by push, not poll.');
    const body = request.body ?? {};
    const at = clock.now();
    if (body.ack && body.ack.length > 0) await store.settleSsfEvents(stream.id, body.ack, { status: 'delivered', at, httpStatus: null });
    for (const [jti, failure] of Object.entries(body.setErrs ?? {})) {
      // RFC 8936 §2.4.3: the receiver could not accept this SET; it is not sent again.
      await store.settleSsfEvents(stream.id, [jti], { status: 'dead', at, nextAttemptAt: at, error: `${failure.err}${failure.description ? `: ${failure.description}` : ''}`, httpStatus: null });
    }
    const maxEvents = body.maxEvents ?? DEFAULT_MAX_EVENTS;
    const immediate = body.returnImmediately === true || maxEvents === 0;
    const deadline = Date.now() + config.ssf.longPollSeconds * 1000;
    reply.header('cache-control', 'no-store');
    // The response closing before it was sent means the receiver went away: stop waiting.
    // (request.raw.destroyed is no sign: a request whose body was read is destroyed too.)
    let gone = false;
    reply.raw.once('close', () => {
      gone = true;
    });
    for (;;) {
      const current = await store.findSsfStream(stream.id);
      if (!current) throw new TesseraError('SSF_STREAM_NOT_FOUND');
      // A paused stream still answers with the events about itself (verification,
      // stream-updated); the others wait for it to be enabled again.
      const streamOnly = current.status === 'paused';
      if (maxEvents > 0 && current.status !== 'disabled') {
        const now = clock.now();
        const claimed = await store.claimSsfPollEvents(stream.id, 'poll', now, now + config.ssf.pollRedeliverSeconds * 1000, maxEvents, streamOnly);
        if (claimed.length > 0) {
          const sets: Record<string, string> = {};
          for (const event of claimed) sets[event.jti] = await authority.ssf.signSet(event, current);
          // Fewer than asked: the claim took every SET that was available, so there are no
          // more to tell of, and the store is not asked again (one statement fewer per answer,
          // which a hundred long polls woken by one logout pay together). A SET committed since
          // goes to the next poll at once.
          return { sets, moreAvailable: claimed.length < maxEvents ? false : await store.hasSsfPollEvents(stream.id, clock.now(), streamOnly) };
        }
      }
      const left = deadline - Date.now();
      // A client that went away, a server shutting down, or time up: answer with nothing.
      if (immediate || left <= 0 || isClosing() || gone) {
        return { sets: {}, moreAvailable: maxEvents > 0 && current.status !== 'disabled' ? await store.hasSsfPollEvents(stream.id, clock.now(), streamOnly) : false };
      }
      await wakeup.next(Math.min(left, FALLBACK_TICK_MS));
    }
  });
}
