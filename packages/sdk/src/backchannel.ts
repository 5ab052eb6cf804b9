import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRemoteJWKSet, customFetch, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Tessera } from './create-tessera.js';
import { TesseraSdkError, type TesseraSdkErrorCode } from './errors.js';
import type { FetchLike } from './internal/api-client.js';
import { createExpiringCache } from './internal/expiring-cache.js';
import { DEFAULT_MAX_TOKEN_BYTES, LOGOUT_TOKEN_ALGORITHMS, verifyJwt } from './internal/verify-jwt.js';

/**
 * The member of the `events` claim that makes a JWT a back-channel logout token.
 *
 * @example
 * ```ts
 * const claims = { events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, sid, iss, aud, iat, exp, jti };
 * ```
 */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * What a valid logout token asks the app to end: the session `sid`, every session of `sub`,
 * or both (at least one is present).
 *
 * A logout may arrive late — Tessera retries a failed delivery for up to a day, signing each
 * attempt afresh — so never take "now" or the token's `iat` as the moment of the logout:
 * the user may have signed in again meanwhile. `revokedAt` and `sids` describe the
 * revocation itself and are the same on every attempt; {@link BackchannelLogout.covers}
 * applies them (docs/decisions/0006-late-logouts.md).
 *
 * @example
 * ```ts
 * onLogout: async (logout) => {
 *   for (const local of await mySessions.ofUser(logout.sub!)) {
 *     if (logout.covers({ sid: local.tesseraSid, startedAt: local.createdAt })) await mySessions.end(local.id);
 *   }
 * }
 * ```
 */
export interface BackchannelLogout {
  sub?: string;
  sid?: string;
  jti: string;
  iss: string;
  /**
   * When the revocation happened, epoch ms on Tessera's clock (the `revoked_at` claim; for
   * tokens of other issuers, which lack it, `iat` × 1000). The same on every retry.
   */
  revokedAt: number;
  /**
   * For a user-wide (`sub`-only) logout: the handles of every Tessera session it ended, when
   * the token lists them (Tessera does up to 100). Sessions started later are not in it.
   */
  sids?: string[];
  /**
   * Whether a local session is one this logout ended. Give the Tessera session handle the
   * local session came from (`sid`), when it started (`startedAt`, epoch ms), or both:
   * - a logout of one session (`sid`) covers exactly the local sessions of that `sid`;
   * - a user-wide logout covers the local sessions whose `sid` is in `sids`, or — when the
   *   token lists none or the `sid` is unknown — those started at or before `revokedAt`
   *   (compare times of one clock: Tessera's session `created_at` is best; a local clock
   *   is off by its skew). A session started after the revocation is never covered.
   *
   * @throws {TypeError} when neither `sid` nor `startedAt` is given.
   */
  covers(session: { sid?: string | null; startedAt?: number | null }): boolean;
  /** Every claim of the logout token. */
  claims: JWTPayload;
}

/**
 * The decision of {@link BackchannelLogout.covers}, on its own so that the rule is stated
 * (and tested) once.
 */
function coversSession(logout: Pick<BackchannelLogout, 'sid' | 'sids' | 'revokedAt'>, session: { sid?: string | null; startedAt?: number | null }): boolean {
  const sid = typeof session?.sid === 'string' && session.sid !== '' ? session.sid : undefined;
  const startedAt = typeof session?.startedAt === 'number' && Number.isFinite(session.startedAt) ? session.startedAt : undefined;
  if (sid === undefined && startedAt === undefined) throw new TypeError('covers: give the local session\'s Tessera sid and/or startedAt');
  // One session ended: only that session's local sessions, however late the notice.
  if (logout.sid !== undefined) return sid === logout.sid;
  // All sessions of the user ended: exactly the listed ones when the list and the sid are known…
  if (sid !== undefined && logout.sids !== undefined) return logout.sids.includes(sid);
  // …otherwise those that began no later than the revocation. A session begun after it was
  // not ended by it (the user signed in again); ending it would be the late-logout bug.
  return startedAt !== undefined ? startedAt <= logout.revokedAt : true;
}

/**
 * Options of {@link createBackchannelReceiver}. Pass `tessera` to reuse its issuer, client id
 * and cached key set, or give `issuer` and `clientId` (and optionally `jwksUri` or `keys`).
 *
 * @example
 * ```ts
 * createBackchannelReceiver({ tessera, onLogout: ({ sid }) => store.endTesseraSession(sid) });
 * ```
 */
export interface BackchannelReceiverOptions {
  tessera?: Tessera;
  issuer?: string;
  clientId?: string;
  jwksUri?: string;
  /** A key resolver (e.g. `createLocalJWKSet(jwks)`); default: the issuer's remote key set. */
  keys?: JWTVerifyGetKey;
  fetch?: FetchLike;
  /** Leeway for `exp` and `iat`, for clock drift between hosts (default 30 s). */
  clockToleranceSeconds?: number;
  /** Remembered `jti`s (each until its token's `exp`) to reject replays (default 10,000). */
  replayCacheSize?: number;
  /** The clock, epoch ms (default `Date.now`). */
  now?: () => number;
  /** Ends the app's local session(s). Throwing (or rejecting) answers 400 so the sender retries. */
  onLogout(logout: BackchannelLogout): void | Promise<void>;
}

/**
 * The input of {@link BackchannelReceiver.receive}: the raw request body (form-encoded
 * `logout_token=…`), or a body a framework already parsed into an object.
 *
 * @example
 * ```ts
 * await receiver.receive({ body: 'logout_token=eyJ…', contentType: 'application/x-www-form-urlencoded' });
 * ```
 */
export interface BackchannelRequest {
  body: string | Uint8Array | Record<string, unknown> | null | undefined;
  /** The request's `Content-Type`; when given it must be `application/x-www-form-urlencoded`. */
  contentType?: string | null;
}

/**
 * The answer to send (OIDC Back-Channel Logout 1.0 §2.8): 200 with an empty body, or 400
 * with `{"error":"invalid_request","error_description"}`; always `Cache-Control: no-store`.
 * `code` says why a request was refused (for logs; not sent).
 *
 * @example
 * ```ts
 * const result = await receiver.receive({ body, contentType });
 * if (!result.ok) log.warn({ code: result.code }, 'back-channel logout refused');
 * res.writeHead(result.status, result.headers).end(result.body);
 * ```
 */
export interface BackchannelResult {
  ok: boolean;
  status: 200 | 400;
  headers: Record<string, string>;
  body: string;
  code?: TesseraSdkErrorCode;
  logout?: BackchannelLogout;
}

/**
 * A back-channel logout receiver.
 *
 * @example
 * ```ts
 * const result = await receiver.receive({ body: rawBody, contentType: req.headers['content-type'] });
 * res.writeHead(result.status, result.headers).end(result.body);
 * ```
 */
export interface BackchannelReceiver {
  receive(request: BackchannelRequest): Promise<BackchannelResult>;
}

const NO_STORE = { 'cache-control': 'no-store' } as const;
const MAX_BODY_BYTES = DEFAULT_MAX_TOKEN_BYTES + 1024;

function refuse(code: TesseraSdkErrorCode, description: string): BackchannelResult {
  return {
    ok: false,
    status: 400,
    headers: { ...NO_STORE, 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ error: 'invalid_request', error_description: description }),
    code,
  };
}

function readLogoutToken(request: BackchannelRequest): string | null {
  const { body } = request;
  if (body !== null && typeof body === 'object' && !(body instanceof Uint8Array)) {
    const value = (body as Record<string, unknown>).logout_token;
    return typeof value === 'string' && value !== '' ? value : null;
  }
  if (request.contentType != null && request.contentType.split(';')[0]!.trim().toLowerCase() !== 'application/x-www-form-urlencoded') return null;
  const text = typeof body === 'string' ? body : body instanceof Uint8Array ? Buffer.from(body).toString('utf8') : '';
  if (text.length > MAX_BODY_BYTES) return null;
  const values = new URLSearchParams(text).getAll('logout_token');
  // Exactly one: a repeated parameter is ambiguous, so refuse it (RFC 6749 §3.1 treats it alike).
  return values.length === 1 && values[0] !== '' ? values[0]! : null;
}

/**
 * Creates an OIDC Back-Channel Logout 1.0 receiver (RP side, §2.6): verifies the logout
 * token's signature with the issuer's key set, `typ: logout+jwt`, `iss`, `aud` (contains the
 * client id), `iat` and `exp` (with a small skew), the back-channel event in `events`, `sub`
 * and/or `sid`, the absence of `nonce`, and that its `jti` was not seen before; then calls
 * `onLogout` and answers 200, or 400 without calling it.
 *
 * @example
 * ```ts
 * import { createBackchannelReceiver, createBackchannelHandler } from '@tessera/sdk/backchannel';
 *
 * const receiver = createBackchannelReceiver({ tessera, onLogout: ({ sid, sub }) => sessions.end({ sid, sub }) });
 * createServer(createBackchannelHandler(receiver)).listen(3001);
 * ```
 */
export function createBackchannelReceiver(options: BackchannelReceiverOptions): BackchannelReceiver {
  if (typeof options?.onLogout !== 'function') throw new TypeError('createBackchannelReceiver: onLogout must be a function');
  const issuer = (options.issuer ?? options.tessera?.issuer)?.replace(/\/+$/, '');
  const clientId = options.clientId ?? options.tessera?.clientId;
  if (!issuer || !clientId) throw new TypeError('createBackchannelReceiver: give tessera, or issuer and clientId');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const keys =
    options.keys ??
    options.tessera?.keys ??
    createRemoteJWKSet(new URL(options.jwksUri ?? `${issuer}/.well-known/jwks.json`), { cooldownDuration: 5000, [customFetch]: (url: string, init: RequestInit) => fetchImpl(url, init) });
  const tolerance = options.clockToleranceSeconds ?? 30;
  const now = options.now ?? Date.now;
  // jti → until when a replay must be refused. Entries in flight are stored too, so two
  // concurrent deliveries of one token do not both run the handler.
  const seen = createExpiringCache<true>(options.replayCacheSize ?? 10_000);

  return {
    async receive(request) {
      const token = readLogoutToken(request);
      if (token === null) return refuse('LOGOUT_TOKEN_INVALID', 'The body must be form-encoded with exactly one logout_token.');
      let claims: JWTPayload;
      try {
        claims = await verifyJwt(token, {
          keys,
          issuer,
          audience: clientId,
          typ: 'logout+jwt',
          clockToleranceSeconds: tolerance,
          now: now(),
          maxBytes: DEFAULT_MAX_TOKEN_BYTES,
          requiredClaims: ['iat', 'exp', 'jti', 'events'],
          algorithms: LOGOUT_TOKEN_ALGORITHMS,
        });
      } catch (error) {
        if (!(error instanceof TesseraSdkError)) throw error;
        return refuse(error.code, `The logout token is not valid: ${error.message}`);
      }
      // iat must not lie in the future beyond the skew either (jose only checks exp and nbf).
      if (typeof claims.iat !== 'number' || claims.iat * 1000 > now() + tolerance * 1000) return refuse('TOKEN_NOT_YET_VALID', 'The logout token is issued in the future.');
      const events = claims.events as unknown;
      const event = events !== null && typeof events === 'object' && !Array.isArray(events) ? (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT] : undefined;
      if (event === null || typeof event !== 'object' || Array.isArray(event)) return refuse('LOGOUT_TOKEN_INVALID', 'The events claim lacks the back-channel logout event.');
      const sub = typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : undefined;
      const sid = typeof claims.sid === 'string' && claims.sid !== '' ? claims.sid : undefined;
      if (sub === undefined && sid === undefined) return refuse('LOGOUT_TOKEN_INVALID', 'The logout token names neither sub nor sid.');
      // A nonce would make it an ID token: refusing it stops ID tokens passing as logout tokens.
      if ('nonce' in claims) return refuse('LOGOUT_TOKEN_INVALID', 'A logout token must not contain a nonce.');
      // revoked_at (Tessera's claim, ms) is the time of the revocation, the same on every
      // retry; tokens of other issuers lack it and fall back to iat. It cannot lie in the
      // future (or after the token was signed): a later time would make `covers` end
      // sessions that began after the real revocation.
      let revokedAt = claims.iat * 1000;
      if (claims.revoked_at !== undefined) {
        const at = claims.revoked_at;
        if (typeof at !== 'number' || !Number.isSafeInteger(at) || at <= 0 || at > (claims.iat + tolerance) * 1000) return refuse('LOGOUT_TOKEN_INVALID', 'The revoked_at claim is invalid.');
        revokedAt = at;
      }
      let sids: string[] | undefined;
      if (claims.sids !== undefined) {
        if (!Array.isArray(claims.sids) || !claims.sids.every((x): x is string => typeof x === 'string' && x !== '')) return refuse('LOGOUT_TOKEN_INVALID', 'The sids claim is invalid.');
        sids = claims.sids;
      }
      const jti = claims.jti;
      if (typeof jti !== 'string' || jti === '') return refuse('LOGOUT_TOKEN_INVALID', 'The logout token has no jti.');
      if (seen.get(jti, now()) !== undefined) return refuse('LOGOUT_TOKEN_REPLAYED', 'This logout token was already received.');
      const keepUntil = ((claims.exp ?? 0) + tolerance) * 1000;
      seen.set(jti, true, keepUntil);
      const ended = { sid, sids, revokedAt };
      const logout: BackchannelLogout = { sub, sid, jti, iss: issuer, revokedAt, ...(sids ? { sids } : {}), covers: (session) => coversSession(ended, session), claims };
      try {
        await options.onLogout(logout);
      } catch {
        // Not done: forget the jti so that the sender's retry is accepted.
        seen.delete(jti);
        return refuse('LOGOUT_TOKEN_INVALID', 'The logout could not be completed; retry later.');
      }
      return { ok: true, status: 200, headers: { ...NO_STORE }, body: '', logout };
    },
  };
}

/** Reads a request body up to `limit` bytes; null when it is larger. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function respond(receiver: BackchannelReceiver, req: IncomingMessage & { body?: unknown }, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') {
    res.writeHead(405, { ...NO_STORE, allow: 'POST' }).end();
    return;
  }
  let body: BackchannelRequest['body'];
  if (req.body !== undefined && req.body !== null && (typeof req.body === 'string' || typeof req.body === 'object')) {
    body = req.body as BackchannelRequest['body'];
  } else {
    const raw = await readBody(req, MAX_BODY_BYTES);
    if (raw === null) {
      const refused = refuse('LOGOUT_TOKEN_INVALID', 'The body is too large.');
      res.writeHead(refused.status, refused.headers).end(refused.body);
      return;
    }
    body = raw;
  }
  const result = await receiver.receive({ body, contentType: req.headers['content-type'] ?? null });
  res.writeHead(result.status, result.headers).end(result.body);
}

/**
 * A node:http request handler around a receiver (it also works as an Express route handler:
 * a body already parsed by `express.urlencoded()` is used, otherwise the raw body is read).
 * Only `POST` is accepted (405 otherwise); bodies over 9 KB are refused with 400. An
 * unexpected error answers 500 and goes to `options.onError` (default `console.error`).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createBackchannelHandler, createBackchannelReceiver } from '@tessera/sdk/backchannel';
 *
 * const receiver = createBackchannelReceiver({ tessera, onLogout: ({ sid }) => endLocalSession(sid) });
 * createServer(createBackchannelHandler(receiver)).listen(3001);
 * ```
 */
export function createBackchannelHandler(receiver: BackchannelReceiver, options: { onError?: (error: unknown) => void } = {}) {
  const onError = options.onError ?? ((error: unknown) => console.error(error));
  return function backchannelLogout(req: IncomingMessage & { body?: unknown }, res: ServerResponse): void {
    respond(receiver, req, res).catch((error: unknown) => {
      onError(error);
      if (!res.headersSent) res.writeHead(500, { ...NO_STORE }).end();
      else res.destroy();
    });
  };
}

/**
 * The Express flavour of {@link createBackchannelHandler}: unexpected errors go to `next`.
 *
 * @example
 * ```ts
 * import { createExpressBackchannelHandler } from '@tessera/sdk/backchannel';
 *
 * app.post('/backchannel-logout', express.urlencoded({ extended: false }), createExpressBackchannelHandler(receiver));
 * ```
 */
export function createExpressBackchannelHandler(receiver: BackchannelReceiver) {
  return (req: IncomingMessage & { body?: unknown }, res: ServerResponse, next: (error?: unknown) => void): void => {
    respond(receiver, req, res).catch(next);
  };
}
