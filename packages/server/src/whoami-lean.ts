import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Authority } from '@tessera/core';
import { readBasicCredentials, readHeaderToken } from './http-auth.js';
import { requestIdOf, SECURITY_HEADERS } from './request-id.js';
import { WHOAMI_CONTENT_TYPE, whoamiBody } from './routes/self.js';

/**
 * The lean path of `GET /v1/whoami`: the one route every app calls on every page view
 * answered straight from Node's HTTP server, without Fastify's per-request machinery
 * (routing, hook chains, reply object, child logger). See docs/decisions/0004.
 *
 * It serves only the case it can serve exactly like the Fastify route and hands everything
 * else to Fastify untouched, so Fastify stays the one reference for behaviour:
 * - only `GET /v1/whoami` with no query, no body, no `Origin` (no CORS to answer) and a
 *   token in `Authorization: Bearer` or `X-Session-Token` — the latter also with an app's
 *   Basic credentials, which are checked first and make the app join the session, as on the
 *   route (cookies take the Fastify route);
 * - with Basic credentials, only when they are right (a wrong secret goes to the route,
 *   which answers 401 INVALID_CLIENT);
 * - only a 200: a missing, malformed, wrong, ended or expired token, a disabled user or a
 *   store error goes to the Fastify route, which answers it with the error envelope (the
 *   session check runs there again, which costs nothing on a failure path);
 * - never while request logging is on (level info or lower), so every request keeps its log
 *   lines, and never once the server is closing (Fastify answers 503 then).
 * The checks are the same core calls as the route's (`apps.authenticateApp`,
 * `sessions.authenticate` with its cache, touch and lazy expiry, `sessions.joinSession`);
 * the body and headers are the route's, byte for byte apart from `date` and the request id
 * (a test compares the two paths).
 */
export interface LeanWhoami {
  /** Whether this request may take the lean path (cheap checks on the request line and headers). */
  accepts(req: IncomingMessage): boolean;
  /** Answers with 200 and returns true, or writes nothing and returns false (Fastify takes over). */
  serve(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

export function createLeanWhoami(deps: {
  authority: Authority;
  /** Whether request logging is on (Fastify logs every request at info). */
  logsRequests: () => boolean;
  /** Whether the server is closing. */
  closing: () => boolean;
  /** Records the request in the latency histogram, as Fastify's onResponse hook does. */
  observe: (route: string, method: string, status: number, seconds: number) => void;
}): LeanWhoami {
  return {
    accepts(req) {
      const { headers } = req;
      const auth = headers.authorization;
      return (
        req.method === 'GET' &&
        req.url === '/v1/whoami' &&
        // The session token comes in X-Session-Token when an app authenticates with Basic.
        (auth === undefined || /^(bearer|basic) /i.test(auth)) &&
        headers.origin === undefined &&
        headers['content-length'] === undefined &&
        headers['transfer-encoding'] === undefined &&
        !deps.closing() &&
        !deps.logsRequests()
      );
    },

    async serve(req, res) {
      const started = performance.now();
      const presented = readHeaderToken(req.headers);
      if (!presented) return false;
      // As on the route, an app's Basic credentials are checked before the session: a wrong
      // secret never gets as far as the session (the route then answers INVALID_CLIENT).
      const basic = readBasicCredentials(req);
      const caller = basic ? await deps.authority.apps.authenticateApp(basic.clientId, basic.clientSecret) : null;
      if (basic && !caller) return false;
      const current = await deps.authority.sessions.authenticate(presented.token);
      if (!current) return false;
      // The app joins the session (the same core call; no write once it has joined).
      if (caller) await deps.authority.sessions.joinSession(current.session, caller.clientId);
      // The socket may have gone while the store was read: nothing to answer then.
      if (res.headersSent || req.socket.destroyed) return false;
      const body = whoamiBody(current.session, current.user);
      res.writeHead(200, {
        'x-request-id': requestIdOf(req.headers),
        ...SECURITY_HEADERS,
        'content-type': WHOAMI_CONTENT_TYPE,
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      deps.observe('/v1/whoami', 'GET', 200, (performance.now() - started) / 1000);
      return true;
    },
  };
}

/**
 * A Fastify `serverFactory` that puts the lean whoami path in front of Fastify's handler.
 * The server gets the timeouts Fastify would give its own (keep-alive, request, connection).
 */
export function leanServerFactory(lean: LeanWhoami) {
  return (handler: RequestListener, options: { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number }): Server => {
    const server = createServer((req, res) => {
      if (!lean.accepts(req)) {
        handler(req, res);
        return;
      }
      lean.serve(req, res).then(
        (served) => {
          if (!served) handler(req, res);
        },
        // A store error: the Fastify route meets it again and answers with the envelope.
        () => handler(req, res),
      );
    });
    if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout;
    if (options.requestTimeout !== undefined) server.requestTimeout = options.requestTimeout;
    if (options.connectionTimeout !== undefined) server.setTimeout(options.connectionTimeout);
    return server;
  };
}
