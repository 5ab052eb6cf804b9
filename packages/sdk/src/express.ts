import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuthenticateOptions } from './authenticate-request.js';
import type { Tessera } from './create-tessera.js';
import type { TesseraSession } from './session.js';

declare global {
  namespace Express {
    interface Request {
      /** The verified Tessera session, set by `authenticate` from `@tessera/sdk/express`. */
      tessera?: TesseraSession;
    }
  }
}

/**
 * Express middleware: verifies the request's access token (`Authorization: Bearer`, or the
 * `cookie` option), puts the session on `req.tessera` and calls `next()`; otherwise answers
 * 401 (503 when Tessera cannot vouch for it) with `{ "error": CODE, "message" }`.
 *
 * @example
 * ```ts
 * import { authenticate } from '@tessera/sdk/express';
 *
 * app.get('/me', authenticate(tessera), (req, res) => res.json({ user: req.tessera!.sub }));
 * ```
 */
export function authenticate(tessera: Tessera, options?: AuthenticateOptions): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    tessera.authenticateRequest({ headers: req.headers }, options).then((result) => {
      if (result.ok) {
        req.tessera = result.session;
        next();
      } else {
        res.status(result.status).set(result.headers).json(result.body);
      }
    }, next);
  };
}
