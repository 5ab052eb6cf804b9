import { ERROR_CATALOGUE, SetRefusal, TesseraError } from '@tessera/core';
import { Type } from '@fastify/type-provider-typebox';
import { empty, type ServerContext, type TesseraApp } from '../context.js';
import { SSF_PATHS } from './paths.js';

const RefusalBody = Type.Object({ error: Type.String(), message: Type.String(), err: Type.String(), description: Type.String() });

/**
 * Tessera as a Shared Signals receiver: `POST /ssf/receive/<name>` takes the SETs an upstream
 * transmitter of `ssf.upstreams` pushes (RFC 8935: the body is the SET, `application/secevent+jwt`),
 * and core's receiver checks them and ends the sessions they name. 202 when accepted (also
 * when the subject names nobody here, or the event is one Tessera only notes). A refusal
 * carries RFC 8935's `err` and `description` beside Tessera's own `error` and `message`, so
 * both a transmitter and Tessera's clients read it.
 */
export async function ssfReceiveRoutes(app: TesseraApp, { authority }: ServerContext): Promise<void> {
  // The SET itself, as text: the route reads it, nothing else does.
  app.addContentTypeParser('application/secevent+jwt', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.post(SSF_PATHS.receive, {
    schema: {
      tags: ['ssf'],
      description: 'Tessera as an SSF receiver (RFC 8935 push) of the upstream transmitter `name` (ssf.upstreams): the body is one SET (application/secevent+jwt). A CAEP session-revoked or credential-change about a user here ends that user\'s sessions begun before the event. 202 when accepted; 400 SSF_SET_REFUSED with RFC 8935 err and description; 404 SSF_UPSTREAM_NOT_FOUND; 503 SSF_UPSTREAM_KEYS_UNAVAILABLE (retry).',
      params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 32 }) }),
      consumes: ['application/secevent+jwt'],
      body: Type.String({ maxLength: 65_536 }),
      response: { 202: Type.Null(), 400: RefusalBody, 404: RefusalBody, 503: RefusalBody },
    },
    // RFC 8935 §2: a push is the SET itself. Another body (JSON, a form) is not one, whatever
    // the other parsers make of it.
    preValidation: async (request) => {
      if (!/^application\/secevent\+jwt\s*(;|$)/i.test(String(request.headers['content-type'] ?? '')) || typeof request.body !== 'string') throw new TesseraError('UNSUPPORTED_MEDIA_TYPE');
    },
  }, async (request, reply) => {
    try {
      const outcome = await authority.ssfReceiver.receive(request.params.name, request.body.trim(), request.headers.authorization);
      // The jti and what it came to; never the SET itself (it names a person).
      request.log.info({ upstream: request.params.name, jti: outcome.jti.slice(0, 64), matched: outcome.userId !== null, ended: outcome.ended.length }, 'SSF event received');
      return empty(reply, 202);
    } catch (error) {
      if (!(error instanceof SetRefusal)) throw error;
      const code = error.status === 404 ? 'SSF_UPSTREAM_NOT_FOUND' : error.status === 503 ? 'SSF_UPSTREAM_KEYS_UNAVAILABLE' : 'SSF_SET_REFUSED';
      request.log.warn({ upstream: request.params.name, err: error.err, description: error.message }, 'SSF event refused');
      return reply.code(error.status).send({ error: code, message: ERROR_CATALOGUE[code].message, err: error.err, description: error.message });
    }
  });
}
