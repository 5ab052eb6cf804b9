import { Type } from '@fastify/type-provider-typebox';
import { TesseraError, revocationMattersMs, type AppRecord, type RevocationEvent } from '@tessera/core';
import type { ServerContext, TesseraApp } from '../context.js';
import type { FeedHub } from '../feed-hub.js';
import type { CredentialGuard } from '../credential-guard.js';
import { clientOf } from '../http-auth.js';
import { Cursor, PageLimit, errors } from '../schemas.js';

const client = { security: [{ client: [] }] };
// After the end of a session, access tokens signed before it stay cryptographically valid
// for at most their lifetime; a verifier can forget the entry after that (plus skew).

const EventView = Type.Object({
  cursor: Type.Integer(),
  sid: Type.String(),
  sub: Type.String(),
  reason: Type.String(),
  actor: Type.String(),
  at: Type.String({ format: 'date-time' }),
  app: Type.Union([Type.String(), Type.Null()]),
  forget_after: Type.String({ format: 'date-time' }),
});

/** The revocation feed: paged JSON and a resumable Server-Sent Events stream. */
export async function feedRoutes(app: TesseraApp, { authority, config }: ServerContext, hub: FeedHub, guard?: CredentialGuard): Promise<void> {
  const mattersMs = revocationMattersMs(config.tokens.accessTokenTtlSeconds * 1000);
  const view = (e: RevocationEvent) => ({
    cursor: e.cursor, sid: e.sid, sub: e.sub, reason: e.reason, actor: e.actor, at: new Date(e.at).toISOString(), app: e.app, forget_after: new Date(e.at + mattersMs).toISOString(),
  });
  // An app hears of whole-session ends and of its own app-scoped ends, not of other apps'.
  const visibleTo = (caller: AppRecord) => (e: RevocationEvent) => e.app === null || e.app === caller.clientId;

  app.get('/v1/revocations', {
    schema: {
      ...client, tags: ['feed'],
      description: 'Revocation log entries after `after`, in order. `next` is the cursor to pass as `after` next time. With `skip_forgotten=true` the page starts no earlier than the first entry whose `forget_after` has not passed: a verifier that starts with an empty set needs nothing older (every token such an entry revokes has expired), so its catch-up reads minutes of log, not the whole retention window.',
      querystring: Type.Object({
        after: Cursor({ default: 0 }),
        limit: PageLimit(),
        skip_forgotten: Type.Boolean({ default: false }),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ events: Type.Array(EventView), next: Type.Integer() }), ...errors(400, 401) },
    },
  }, async (request) => {
    const caller = clientOf(request);
    const { limit } = request.query;
    let { after } = request.query;
    if (request.query.skip_forgotten) {
      const { store, clock } = authority.deps;
      // An entry matters while its forget_after (at + mattersMs) is ahead.
      const first = await store.firstRevocationSince(clock.now() - mattersMs);
      after = Math.max(after, first === null ? await store.revocationHead() : first - 1);
    }
    const events = await authority.deps.store.listRevocations(after, limit);
    const next = events.length > 0 ? events[events.length - 1]!.cursor : after;
    return { events: events.filter(visibleTo(caller)).map(view), next };
  });

  app.get('/v1/revocations/stream', {
    schema: {
      ...client, tags: ['feed'], produces: ['text/event-stream'],
      description: 'Server-Sent Events of the revocation log: `id:` is the cursor, `event: revocation`, `data:` the event JSON. Resume with Last-Event-ID (or ?after=). Heartbeat comments keep proxies from closing idle streams.',
      querystring: Type.Object({ after: Type.Optional(Cursor()) }, { additionalProperties: false }),
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
      response: errors(400, 401),
    },
  }, async (request, reply) => {
    const caller = clientOf(request);
    const lastEventId = request.headers['last-event-id'];
    const after = lastEventId !== undefined ? Number(lastEventId) : (request.query.after ?? 0);
    if (!Number.isSafeInteger(after)) throw new TesseraError('INVALID_REQUEST', 'Last-Event-ID must be a cursor.');
    const visible = visibleTo(caller);
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Tell nginx-style proxies not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    // HEAD: the head of the stream and nothing more (a body-less answer would otherwise
    // never flush its headers, and the client would wait forever).
    if (request.method === 'HEAD') {
      raw.end();
      return;
    }
    raw.write('retry: 1000\n\n');
    let ended = false;
    const heartbeat = setInterval(() => raw.write(': ping\n\n'), config.feed.heartbeatSeconds * 1000);
    let stop = () => {};
    let release = () => {};
    const finish = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      stop();
      release();
      raw.end();
    };
    raw.on('close', finish);
    // The stream was authenticated once, on arrival; it ends when those credentials stop
    // holding (secret rotated, app deleted or disabled), as every later request with them fails.
    if (guard) {
      release = guard.track(caller, finish);
      // A change that landed between authentication and tracking is not missed.
      void guard.check(caller.clientId);
    }
    try {
      stop = await hub.subscribe(after, {
        send(events) {
          if (ended) return true;
          const text = events.filter(visible).map((e) => `id: ${e.cursor}\nevent: revocation\ndata: ${JSON.stringify(view(e))}\n\n`).join('');
          // A batch of only other apps' events still moves the client's position forward.
          const last = events[events.length - 1]!.cursor;
          return raw.write(text || `id: ${last}\n\n`);
        },
        drained: () => new Promise((resolve) => {
          if (ended) return resolve();
          raw.once('drain', resolve);
          raw.once('close', resolve);
        }),
        end: finish,
      });
      if (ended) stop();
    } catch (error) {
      request.log.error({ err: error }, 'revocation stream failed');
      finish();
    }
  });
}
