import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthenticateOptions, AuthenticateResult } from './authenticate-request.js';
import type { Tessera } from './create-tessera.js';
import type { TesseraSession } from './session.js';

/**
 * A node:http request that `withSession` has authenticated.
 *
 * @example
 * ```ts
 * function handle(req: AuthenticatedRequest, res: ServerResponse) { res.end(req.tessera.sub); }
 * ```
 */
export type AuthenticatedRequest = IncomingMessage & { tessera: TesseraSession };

/**
 * Checks a node:http request: resolves with the verified session (also set on
 * `req.tessera`), or answers 401 (503 when Tessera cannot vouch for it) with
 * `{ "error": CODE, "message" }` and resolves null.
 *
 * @example
 * ```ts
 * import { authenticate } from '@tessera/sdk/node';
 *
 * const guard = authenticate(tessera);
 * createServer(async (req, res) => {
 *   const session = await guard(req, res);
 *   if (!session) return;
 *   res.end(JSON.stringify({ user: session.sub }));
 * });
 * ```
 */
export function authenticate(tessera: Tessera, options?: AuthenticateOptions) {
  return async function tesseraAuthenticate(req: IncomingMessage, res: ServerResponse): Promise<TesseraSession | null> {
    const result = await tessera.authenticateRequest({ headers: req.headers }, options);
    if (result.ok) {
      (req as AuthenticatedRequest).tessera = result.session;
      return result.session;
    }
    sendFailure(res, result);
    return null;
  };
}

/**
 * Wraps a node:http handler so that it only runs for authenticated requests, with the
 * session on `req.tessera`. An error thrown (or rejected) by the handler becomes a 500 when
 * nothing was sent yet, and is passed to `options.onError` (default `console.error`).
 *
 * @example
 * ```ts
 * import { withSession } from '@tessera/sdk/node';
 *
 * createServer(withSession(tessera, (req, res) => res.end(req.tessera.sub))).listen(3000);
 * ```
 */
export function withSession(
  tessera: Tessera,
  handler: (req: AuthenticatedRequest, res: ServerResponse) => unknown,
  options: AuthenticateOptions & { onError?: (error: unknown) => void } = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const guard = authenticate(tessera, options);
  const onError = options.onError ?? ((error: unknown) => console.error(error));
  const fail = (res: ServerResponse) => (error: unknown) => {
    onError(error);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' }).end('{"error":"INTERNAL","message":"An internal error occurred."}');
    else res.destroy();
  };
  /** Runs the handler; a throw or a rejection becomes a 500 (or a closed socket) and is reported. */
  const run = (req: AuthenticatedRequest, res: ServerResponse): void => {
    try {
      const out = handler(req, res) as PromiseLike<unknown> | undefined;
      if (typeof out?.then === 'function') out.then(undefined, fail(res));
    } catch (error) {
      fail(res)(error);
    }
  };
  return (req, res) => {
    // A token verified before, with a current revocation set: answered without a promise hop.
    const now = tessera.authenticateRequestNow({ headers: req.headers }, options);
    if (now === undefined) {
      guard(req, res).then((session) => {
        if (session) run(req as AuthenticatedRequest, res);
      }, fail(res));
    } else if (!now.ok) {
      sendFailure(res, now);
    } else {
      (req as AuthenticatedRequest).tessera = now.session;
      run(req as AuthenticatedRequest, res);
    }
  };
}

function sendFailure(res: ServerResponse, result: Extract<AuthenticateResult, { ok: false }>): void {
  res.writeHead(result.status, { ...result.headers, 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(result.body));
}
