import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { isMember } from './app-access.js';
import { signCompactJwsForRequest, signCompactJwsInPool } from './compact-jws.js';
import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import { isSessionExpired } from './lifetimes.js';
import type { AppRecord, RefreshTokenRecord, SessionRecord, SigningAlgorithm, UserRecord } from './model.js';
import { createSplitToken, randomToken, splitToken, verifySecret } from './secrets.js';
import type { SessionService } from './sessions.js';
import type { KeyManager } from './signing-keys.js';

/** A token response of `POST /v1/token`. */
export interface TokenPair {
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  sid: string;
  /** The OAuth scope of an OIDC grant (null for `grant_type=session_token`). */
  scope: string | null;
}

/** An RFC 7662 introspection answer. */
export type Introspection =
  | { active: false }
  | {
      active: true;
      tokenType: 'access_token' | 'refresh_token' | 'session_token';
      sub: string;
      sid: string;
      clientId: string | null;
      exp: number;
      iat: number;
      username: string;
    };

const MAX_JWT_LENGTH = 8192;
/** The event member that marks a JWT as a back-channel logout token. */
export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/**
 * The most session handles a user-wide logout token lists in `sids`: about 40 bytes each
 * once encoded, so the token stays near 4.5 KB at most, within what receivers accept (8 KB
 * in Tessera's SDK and plugins).
 */
export const MAX_LOGOUT_TOKEN_SIDS = 100;

/**
 * Tokens for apps: the exchange of a session token for an access + refresh token pair, the
 * rotation of refresh tokens with reuse detection, and introspection.
 *
 * @example
 * ```ts
 * const tokens = createTokenService(deps, sessions, keys);
 * const pair = await tokens.exchange(app, sessionToken);
 * const next = await tokens.refresh(app, pair.refreshToken); // the old one is now spent
 * ```
 */
export function createTokenService(deps: CoreDeps, sessions: SessionService, keys: KeyManager) {
  const { store, clock, config } = deps;
  const ttlSeconds = config.tokens.accessTokenTtlSeconds;

  async function signAccessToken(session: SessionRecord, clientId: string, scope: string | null = null): Promise<{ token: string; expiresIn: number }> {
    const key = await keys.signingKey();
    const now = Math.floor(clock.now() / 1000);
    // Never outlives the session's absolute end.
    const exp = Math.min(now + ttlSeconds, Math.floor(session.expiresAt / 1000));
    // node:crypto (compact-jws.ts says where and why); the claims in the order jose's SignJWT
    // wrote them, so the tokens are the same as before.
    const token = await signCompactJwsForRequest(key, 'at+jwt', {
      sid: session.handle,
      client_id: clientId,
      ...(scope ? { scope } : {}),
      iss: config.issuer,
      sub: session.userId,
      aud: clientId,
      iat: now,
      exp,
      jti: randomToken(16),
    });
    return { token, expiresIn: exp - now };
  }

  /** A new refresh token for the session, and the record that stores its hash. */
  function newRefreshToken(session: SessionRecord, clientId: string, scope: string | null): { token: string; record: RefreshTokenRecord } {
    const refresh = createSplitToken('rt');
    return { token: refresh.token, record: { id: refresh.id, secretHash: refresh.secretHash, handle: session.handle, clientId, createdAt: clock.now(), expiresAt: session.expiresAt, usedAt: null, scope } };
  }

  /** The pair of a stored refresh token and a new access token. */
  async function pairWith(session: SessionRecord, clientId: string, scope: string | null, refreshToken: string): Promise<TokenPair> {
    const access = await signAccessToken(session, clientId, scope);
    return { accessToken: access.token, expiresIn: access.expiresIn, refreshToken, sid: session.handle, scope };
  }

  async function issuePair(session: SessionRecord, clientId: string, scope: string | null = null): Promise<TokenPair> {
    const refresh = newRefreshToken(session, clientId, scope);
    await store.createRefreshToken(refresh.record);
    return pairWith(session, clientId, scope, refresh.token);
  }

  async function activeUser(session: SessionRecord) {
    const user = await store.findUserById(session.userId);
    return user && !user.disabled ? user : null;
  }

  /** `grant_type=session_token`: the app joins the session and gets its own token pair. */
  async function exchange(app: AppRecord, sessionToken: string): Promise<TokenPair> {
    const session = await sessions.findActive(sessionToken);
    if (!session || !(await activeUser(session))) throw new TesseraError('INVALID_GRANT');
    await sessions.joinSession(session, app.clientId);
    return issuePair(session, app.clientId);
  }

  /**
   * `grant_type=refresh_token`: spends the refresh token and issues a new pair. A spent
   * token presented again means two parties hold it — the legitimate app and a thief — and
   * Tessera cannot tell which is which, so it ends the whole session (reason `token_theft`).
   */
  async function refresh(app: AppRecord, refreshToken: string): Promise<TokenPair> {
    return (await refreshGrant(app, refreshToken, 'any')).pair;
  }

  /**
   * {@link refresh}, with the session and user it read, so the caller need not read them
   * again. With `oidc`, only a pair issued by the OpenID Provider (it has a scope) is
   * refreshed; a pair of `POST /v1/token` is refused with INVALID_GRANT before anything is
   * spent, so it stays valid where it belongs.
   */
  async function refreshGrant(app: AppRecord, refreshToken: string, kind: 'oidc' | 'any'): Promise<{ pair: TokenPair; session: SessionRecord; user: UserRecord }> {
    const parts = splitToken(refreshToken);
    const record = parts && parts.id.startsWith('rt') ? await store.findRefreshToken(parts.id) : null;
    if (!parts || !record || !verifySecret(parts.secret, record.secretHash) || record.clientId !== app.clientId) throw new TesseraError('INVALID_GRANT');
    if (kind === 'oidc' && (record.scope ?? null) === null) throw new TesseraError('INVALID_GRANT', 'This refresh token was not issued by the OpenID Provider.');
    const now = clock.now();
    const theft = async () => {
      await sessions.revokeSessions([record.handle], { actor: `app:${app.clientId}`, reason: 'token_theft' });
      return new TesseraError('REFRESH_TOKEN_REUSED');
    };
    const session = await store.findSessionByHandle(record.handle);
    // Membership first, even before reuse detection: an app that left the session (or a
    // token from an earlier membership) has no power over it any more — not even to end it
    // for every app by presenting a spent token. Its tokens are simply invalid.
    if (!session || !isMember(session, app.clientId, Math.floor(record.createdAt / 1000))) throw new TesseraError('INVALID_GRANT');
    if (record.usedAt !== null) throw await theft();
    if (now >= record.expiresAt) throw new TesseraError('INVALID_GRANT');
    const user = session.endedAt !== null || isSessionExpired(session, now) ? null : await activeUser(session);
    if (!user) throw new TesseraError('INVALID_GRANT');
    // One store call (one transaction) spends the old token and stores the new one: one
    // write to the database instead of two, and never a spent token without its successor.
    // Of two concurrent refreshes with one token exactly one spends it; the other is reuse.
    const scope = record.scope ?? null;
    const next = newRefreshToken(session, app.clientId, scope);
    if (!(await store.rotateRefreshToken(record.id, now, next.record))) throw await theft();
    return { pair: await pairWith(session, app.clientId, scope, next.token), session, user };
  }

  async function activeSession(handle: string): Promise<SessionRecord | null> {
    const session = await store.findSessionByHandle(handle);
    return session && session.endedAt === null && !isSessionExpired(session, clock.now()) ? session : null;
  }

  /**
   * Verifies an access token's signature, issuer and lifetime (not its revocation), and its
   * audience when one is named (a Shared Signals receiver's token is for `<issuer>/ssf`).
   */
  async function verifyAccessToken(token: string, audience?: string): Promise<JWTPayload | null> {
    if (token.length > MAX_JWT_LENGTH) return null;
    try {
      const header = decodeProtectedHeader(token);
      if (typeof header.kid !== 'string' || header.typ !== 'at+jwt') return null;
      const found = await keys.verificationKey(header.kid);
      if (!found) return null;
      const { payload } = await jwtVerify(token, found.key, { issuer: config.issuer, ...(audience === undefined ? {} : { audience }), algorithms: [found.alg], typ: 'at+jwt', currentDate: new Date(clock.now()) });
      return payload;
    } catch {
      return null;
    }
  }

  /**
   * RFC 7662 introspection for the calling app: its own access and refresh tokens, and
   * session tokens. Every answer reads the session from the store, so a revocation shows at
   * once. Tokens issued to another app are reported inactive.
   */
  async function introspect(app: AppRecord, token: string, hint?: string): Promise<Introspection> {
    const inactive = { active: false } as const;
    const looksJwt = token.split('.').length === 3;
    if (looksJwt || hint === 'access_token') {
      const claims = looksJwt ? await verifyAccessToken(token) : null;
      if (claims) {
        if (claims.aud !== app.clientId || typeof claims.sid !== 'string' || typeof claims.sub !== 'string') return inactive;
        const session = await activeSession(claims.sid);
        const user = session && isMember(session, app.clientId, claims.iat) ? await activeUser(session) : null;
        if (!session || !user) return inactive;
        return { active: true, tokenType: 'access_token', sub: claims.sub, sid: claims.sid, clientId: app.clientId, exp: claims.exp!, iat: claims.iat!, username: user.username };
      }
      if (looksJwt) return inactive;
    }
    const parts = splitToken(token);
    if (!parts) return inactive;
    if (parts.id.startsWith('rt')) {
      const record = await store.findRefreshToken(parts.id);
      if (!record || !verifySecret(parts.secret, record.secretHash) || record.clientId !== app.clientId || record.usedAt !== null || clock.now() >= record.expiresAt) return inactive;
      const session = await activeSession(record.handle);
      const user = session && isMember(session, app.clientId) ? await activeUser(session) : null;
      if (!session || !user) return inactive;
      return { active: true, tokenType: 'refresh_token', sub: session.userId, sid: session.handle, clientId: app.clientId, exp: Math.floor(record.expiresAt / 1000), iat: Math.floor(record.createdAt / 1000), username: user.username };
    }
    const session = await sessions.findActive(token);
    const user = session ? await activeUser(session) : null;
    if (!session || !user) return inactive;
    return { active: true, tokenType: 'session_token', sub: session.userId, sid: session.handle, clientId: null, exp: Math.floor(Math.min(session.idleExpiresAt, session.expiresAt) / 1000), iat: Math.floor(session.createdAt / 1000), username: user.username };
  }

  /**
   * An OIDC Back-Channel Logout 1.0 logout token for one app: `typ: logout+jwt`, the
   * back-channel event, `sub` and (for a session end) `sid`, never a `nonce`, a fresh `jti`
   * on every call (so a retried delivery is not rejected as a replay), valid 2 minutes.
   *
   * `iat` is the signing time, fresh on every attempt: receivers refuse logout tokens
   * issued long ago (the spec asks them to check `iat`), so a retry an hour later must be
   * signed now. That is why `iat` must never be read as the time of the logout: a retried
   * user-wide token would then end sessions the user started after the revocation
   * (docs/decisions/0006-late-logouts.md). Two Tessera claims say what the revocation
   * ended, the same on every attempt:
   * - `revoked_at`: the revocation log entry's `at`, integer milliseconds since the epoch
   *   (Tessera's clock). A receiver that ends "all sessions of `sub`" ends only those that
   *   started before it.
   * - `sids`: on a user-wide (`sub`-only) token, the handles of every session the
   *   revocation ended, so a receiver that knows the Tessera session behind each of its
   *   own sessions ends exactly those. Left out above {@link MAX_LOGOUT_TOKEN_SIDS}
   *   handles (the token must stay small); receivers then fall back to `revoked_at`.
   */
  async function signLogoutToken(input: { clientId: string; sub: string; sid: string | null; revokedAt: number; handles?: readonly string[]; alg?: SigningAlgorithm | undefined }): Promise<string> {
    const key = await keys.signingKey(input.alg);
    const now = Math.floor(clock.now() / 1000);
    const sids = input.sid === null && input.handles && input.handles.length <= MAX_LOGOUT_TOKEN_SIDS ? [...input.handles] : undefined;
    // In the thread pool: the outbox signs these in bursts (one per app per ended session, in
    // the algorithm each app chose, RS256 among them), work no request waits for.
    return signCompactJwsInPool(key, 'logout+jwt', {
      events: { [BACKCHANNEL_EVENT]: {} },
      ...(input.sid ? { sid: input.sid } : {}),
      revoked_at: Math.floor(input.revokedAt),
      ...(sids ? { sids } : {}),
      iss: config.issuer,
      sub: input.sub,
      aud: input.clientId,
      iat: now,
      exp: now + 120,
      jti: randomToken(16),
    });
  }

  return { exchange, refresh, refreshGrant, introspect, verifyAccessToken, signAccessToken, signLogoutToken, issuePair, activeSession, isMember };
}

/** The token service returned by {@link createTokenService}. */
export type TokenService = ReturnType<typeof createTokenService>;
