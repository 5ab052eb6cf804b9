import type { FastifyReply, FastifyInstance, FastifyBaseLogger, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Authority, Config } from '@tessera/core';

/** What every route module is given. */
export interface ServerContext {
  authority: Authority;
  config: Config;
  /** Per-route options for @fastify/rate-limit (false when disabled by configuration). */
  rateLimits: { login: RateLimit | false; logout: RateLimit | false };
}

/** A rate limit: at most `max` requests per `timeWindow` ms per client IP. */
export interface RateLimit {
  max: number;
  timeWindow: number;
}

/** The Fastify instance with TypeBox types for route schemas. */
export type TesseraApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Ends a reply with a status and no body (204, or the empty 200 of the server-to-server logout). */
export function empty(reply: FastifyReply, status: number): FastifyReply {
  return reply.status(status).send();
}
