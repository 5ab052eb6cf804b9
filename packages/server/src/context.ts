import type { FastifyReply, FastifyInstance, FastifyBaseLogger, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Authority, Config } from '@tessera/core';
import type { FailureLimits } from './failure-limits.js';

/** What every route module is given. */
export interface ServerContext {
  authority: Authority;
  config: Config;
  /** Failed-attempt limits (failure-limits.ts): only failures are counted, successes never refused. */
  limits: FailureLimits;
}

/** The Fastify instance with TypeBox types for route schemas. */
export type TesseraApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Ends a reply with a status and no body (204, or the empty 200 of the server-to-server logout). */
export function empty(reply: FastifyReply, status: number): FastifyReply {
  return reply.status(status).send();
}
