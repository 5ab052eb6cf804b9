import type { FastifyInstance } from 'fastify';

const ALLOW_METHODS = 'GET, POST, DELETE';
const ALLOW_HEADERS = 'Content-Type, X-Tessera-CSRF, Authorization, X-Session-Token';

/**
 * CORS, answered only for origins that a registered app lists (and Tessera's own), always
 * with credentials. Any other origin gets no Access-Control-Allow-* header at all, so the
 * browser refuses to let that page read the answer or send a preflighted request (custom
 * headers such as X-Tessera-CSRF, DELETE). Requests without an Origin header — servers, the
 * whoami hot path — skip all of this.
 *
 * @example
 * ```ts
 * installCors(app, { issuer, isRegisteredOrigin: (o) => apps.isRegisteredOrigin(o) });
 * ```
 */
export function installCors(app: FastifyInstance, options: { issuer: string; isRegisteredOrigin(origin: string): Promise<boolean> }): void {
  const own = new URL(options.issuer).origin;
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin === undefined) return;
    // Caches must keep answers for different origins apart.
    reply.header('vary', 'Origin');
    if (origin !== own && !(await options.isRegisteredOrigin(origin))) return;
    reply.header('access-control-allow-origin', origin);
    reply.header('access-control-allow-credentials', 'true');
  });
  // Preflights: 204, with the allowed methods and headers only when the origin was allowed.
  app.options('*', { schema: { hide: true } }, async (request, reply) => {
    if (reply.hasHeader('access-control-allow-origin')) {
      reply.header('access-control-allow-methods', ALLOW_METHODS);
      reply.header('access-control-allow-headers', ALLOW_HEADERS);
      reply.header('access-control-max-age', '600');
    }
    return reply.status(204).send();
  });
}
