import type { Middleware } from 'koa';
import type { AuthenticateOptions } from './authenticate-request.js';
import type { Tessera } from './create-tessera.js';
import type { TesseraSession } from './session.js';

/**
 * The Koa state `authenticate` fills in.
 *
 * @example
 * ```ts
 * const app = new Koa<TesseraState>();
 * ```
 */
export interface TesseraState {
  tessera: TesseraSession;
}

/**
 * Koa middleware: verifies the request's access token (`Authorization: Bearer`, or the
 * `cookie` option), puts the session on `ctx.state.tessera` and calls `next()`; otherwise
 * answers 401 (503 when Tessera cannot vouch for it) with `{ "error": CODE, "message" }`.
 *
 * @example
 * ```ts
 * import { authenticate } from '@tessera/sdk/koa';
 *
 * router.get('/me', authenticate(tessera), (ctx) => { ctx.body = { user: ctx.state.tessera.sub }; });
 * ```
 */
export function authenticate(tessera: Tessera, options?: AuthenticateOptions): Middleware<TesseraState> {
  return async (ctx, next) => {
    const result = await tessera.authenticateRequest({ headers: ctx.headers }, options);
    if (!result.ok) {
      ctx.status = result.status;
      ctx.set(result.headers);
      ctx.body = result.body;
      return;
    }
    ctx.state.tessera = result.session;
    await next();
  };
}
