import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuthenticateOptions, AuthenticateResult } from './authenticate-request.js';
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
  const answer = (req: Request, res: Response, next: NextFunction, result: AuthenticateResult) => {
    if (result.ok) {
      req.tessera = result.session;
      next();
    } else {
      res.status(result.status).set(result.headers).json(result.body);
    }
  };
  return (req: Request, res: Response, next: NextFunction) => {
    // A token verified before, with a current revocation set: answered without a promise hop.
    const now = tessera.authenticateRequestNow({ headers: req.headers }, options);
    if (now !== undefined) return answer(req, res, next, now);
    tessera.authenticateRequest({ headers: req.headers }, options).then((result) => answer(req, res, next, result), next);
  };
}
