import type { MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AuthenticateOptions } from './authenticate-request.js';
import type { Tessera } from './create-tessera.js';
import type { TesseraSession } from './session.js';

/**
 * The Hono variables `authenticate` sets: `c.get('tessera')`.
 *
 * @example
 * ```ts
 * const app = new Hono<{ Variables: TesseraVariables }>();
 * ```
 */
export interface TesseraVariables {
  tessera: TesseraSession;
}

/**
 * Hono middleware: verifies the request's access token (`Authorization: Bearer`, or the
 * `cookie` option) and sets `c.get('tessera')`; otherwise answers 401 (503 when Tessera
 * cannot vouch for it) with `{ "error": CODE, "message" }`.
 *
 * @example
 * ```ts
 * import { authenticate } from '@tessera/sdk/hono';
 *
 * const app = new Hono<{ Variables: TesseraVariables }>();
 * app.get('/me', authenticate(tessera), (c) => c.json({ user: c.get('tessera').sub }));
 * ```
 */
export function authenticate(tessera: Tessera, options?: AuthenticateOptions): MiddlewareHandler<{ Variables: TesseraVariables }> {
  return async (c, next) => {
    const result = await tessera.authenticateRequest({ headers: c.req.raw.headers }, options);
    if (!result.ok) return c.json(result.body, result.status as ContentfulStatusCode, result.headers);
    c.set('tessera', result.session);
    await next();
  };
}
