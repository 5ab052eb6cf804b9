import type { JWTPayload } from 'jose';

/**
 * A verified access token: who (`sub`), which Tessera session (`sid`), for which app
 * (`aud`), and until when. The object is frozen and shared by every request that presents
 * the same token, so treat it as read-only.
 *
 * @example
 * ```ts
 * const session = await tessera.verify(token);
 * console.log(session.sub, session.sid, new Date(session.exp * 1000));
 * ```
 */
export interface TesseraSession {
  /** The user id. */
  readonly sub: string;
  /** The session handle; the same for every app that joined the session. */
  readonly sid: string;
  /** This app's client id. */
  readonly aud: string;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  /** Issued at, seconds since the epoch. */
  readonly iat: number;
  /** The token's unique id. */
  readonly jti: string;
  /** Every claim of the token. */
  readonly claims: Readonly<JWTPayload>;
}

/**
 * An access and refresh token pair from `POST /v1/token`.
 *
 * @example
 * ```ts
 * const { accessToken, refreshToken, expiresIn } = await tessera.exchange(sessionToken);
 * ```
 */
export interface TokenSet {
  accessToken: string;
  tokenType: string;
  /** Lifetime of the access token, in seconds. */
  expiresIn: number;
  /** Single-use: `refresh()` returns a new one, and using a spent one ends the session. */
  refreshToken: string;
  /** The session handle. */
  sid: string;
}

/**
 * Tessera's answer to `POST /v1/introspect` (RFC 7662). `active: false` carries nothing else.
 *
 * @example
 * ```ts
 * const info = await tessera.introspect(token);
 * if (info.active) console.log(info.sub, info.sid);
 * ```
 */
export interface IntrospectionResult {
  active: boolean;
  sub?: string;
  sid?: string;
  client_id?: string;
  aud?: string | string[];
  iss?: string;
  exp?: number;
  iat?: number;
  token_type?: string;
  username?: string;
  [claim: string]: unknown;
}

/**
 * A session that a trusted app started with {@link Tessera.startSession}.
 *
 * @example
 * ```ts
 * const { sessionToken } = await tessera.startSession({ userId: 'u_123' });
 * ```
 */
export interface StartedSession {
  /** The session as Tessera describes it (`handle`, `user_id`, times, device, apps). */
  session: Record<string, unknown>;
  /** The Tessera session token: exchange it with {@link Tessera.exchange}. Secret. */
  sessionToken: string;
  user: Record<string, unknown>;
}
