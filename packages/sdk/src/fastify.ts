import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthenticateOptions } from './authenticate-request.js';
import type { Tessera } from './create-tessera.js';
import type { TesseraSession } from './session.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified Tessera session, set by `authenticate` from `@tessera/sdk/fastify`. */
    tessera?: TesseraSession;
  }
}

/**
 * A Fastify `onRequest` (or `preHandler`) hook: verifies the request's access token
 * (`Authorization: Bearer`, or the `cookie` option) and puts the session on
 * `request.tessera`; otherwise answers 401 (503 when Tessera cannot vouch for it) with
 * `{ "error": CODE, "message" }`.
 *
 * @example
 * ```ts
 * import { authenticate } from '@tessera/sdk/fastify';
 *
 * app.get('/me', { onRequest: authenticate(tessera) }, async (request) => ({ user: request.tessera!.sub }));
 * // or for every route of a plugin: app.addHook('onRequest', authenticate(tessera));
 * ```
 */
export function authenticate(tessera: Tessera, options?: AuthenticateOptions) {
  return async function tesseraAuthenticate(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const result = await tessera.authenticateRequest({ headers: request.headers }, options);
    if (result.ok) {
      request.tessera = result.session;
      return undefined;
    }
    // Returning the reply tells Fastify the request was answered here (no route handler).
    return reply.code(result.status).headers(result.headers).send(result.body);
  };
}
