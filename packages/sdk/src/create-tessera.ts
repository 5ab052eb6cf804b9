import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from 'jose';
import { authenticateWith, authenticateNowWith, type AuthenticateOptions, type AuthenticateRequestInput, type AuthenticateResult } from './authenticate-request.js';
import { TesseraSdkError } from './errors.js';
import { createApiClient } from './internal/api-client.js';
import { createEmitter } from './internal/emitter.js';
import { createExpiringCache } from './internal/expiring-cache.js';
import { createFeedFollower, type FeedStatus, type RevocationEvent } from './internal/feed-follower.js';
import { createRevocationSet } from './internal/revocation-set.js';
import { verifyJwt } from './internal/verify-jwt.js';
import { resolveOptions, type TesseraOptions } from './options.js';
import type { IntrospectionResult, StartedSession, TesseraSession, TokenSet } from './session.js';

/**
 * The events a {@link Tessera} client emits.
 *
 * @example
 * ```ts
 * tessera.on('revoked', (e) => sockets.closeSession(e.sid));
 * tessera.on('feed:down', ({ error, retryInMs }) => log.warn({ err: error, retryInMs }, 'feed down'));
 * ```
 */
export interface TesseraEvents {
  /** A revocation log entry arrived (also for entries already past `forgetAfter`). */
  revoked: RevocationEvent;
  /** The revocation stream is open (after the catch-up, and after each reconnect). */
  'feed:up': { cursor: number };
  /** The stream dropped or could not be opened; `retryInMs` is null when the follower gave up (bad credentials). */
  'feed:down': { error: Error; attempt: number; retryInMs: number | null };
}

/**
 * Scope of a server-to-server logout: this app only, the whole session, or every session of the user.
 *
 * @example
 * ```ts
 * const scope: LogoutScope = 'user';
 * await tessera.logout(sessionToken, { scope });
 * ```
 */
export type LogoutScope = 'app' | 'session' | 'user';

/**
 * A status snapshot: the feed follower and the size of the revocation set.
 *
 * @example
 * ```ts
 * app.get('/healthz', (req, res) => res.json(tessera.feedStatus()));
 * ```
 */
export interface TesseraStatus extends FeedStatus {
  /** Sessions (or app parts of sessions) in the in-memory revocation set that still matter. */
  revokedSessions: number;
  /** Distinct verified tokens in the cache. */
  cachedTokens: number;
}

/**
 * A Tessera client for one app, made by {@link createTessera}: create one per process and
 * share it (its caches and its feed connection serve every request).
 *
 * @example
 * ```ts
 * const tessera: Tessera = createTessera({ issuer, clientId, clientSecret });
 * ```
 */
export interface Tessera {
  /** This app's client id. */
  readonly clientId: string;
  /** The issuer this client trusts. */
  readonly issuer: string;
  /** The issuer's key set (cached, refetched on an unknown `kid`); the back-channel receiver shares it. */
  readonly keys: JWTVerifyGetKey;

  /**
   * Verifies an access token locally and checks it against the revocation set. Each distinct
   * token is verified once and cached until its `exp`; later calls cost a map lookup.
   * Rejects with a {@link TesseraSdkError}: `TOKEN_MALFORMED`, `TOKEN_TOO_LARGE`,
   * `ALG_NOT_ALLOWED`, `TOKEN_WRONG_TYPE`, `TOKEN_INVALID_SIGNATURE`, `TOKEN_EXPIRED`,
   * `TOKEN_NOT_YET_VALID`, `TOKEN_WRONG_ISSUER`, `TOKEN_WRONG_AUDIENCE`,
   * `TOKEN_CLAIMS_INVALID`, `TOKEN_REVOKED`, `FEED_UNAVAILABLE`, `JWKS_UNAVAILABLE`, …
   * Starts the feed on first use if `start()` was not called.
   *
   * @example
   * ```ts
   * const { sub, sid } = await tessera.verify(accessToken);
   * ```
   */
  verify(token: string): Promise<TesseraSession>;

  /**
   * The framework-neutral request check every adapter uses: reads `Authorization: Bearer`
   * (or the configured cookie), verifies, optionally introspects (`strict`), and returns the
   * session or the 401/503 answer to send.
   *
   * @example
   * ```ts
   * const result = await tessera.authenticateRequest({ headers: req.headers }, { cookie: 'app_at' });
   * if (result.ok) handle(result.session);
   * else res.writeHead(result.status, result.headers).end(JSON.stringify(result.body));
   * ```
   */
  authenticateRequest(input: AuthenticateRequestInput, options?: AuthenticateOptions): Promise<AuthenticateResult>;

  /**
   * The same check answered at once when it needs no I/O and no waiting: no token, or a
   * token this client verified before, checked against a revocation set that is current
   * (the stream is open, or the feed is off). Returns `undefined` otherwise (a new token, a
   * feed that is catching up or stale, `strict`); call {@link authenticateRequest} then.
   * The node:http and Express adapters use it so that the common request skips the promise
   * hops; the verdict is the one `authenticateRequest` would give.
   *
   * @example
   * ```ts
   * const result = tessera.authenticateRequestNow({ headers: req.headers }) ?? (await tessera.authenticateRequest({ headers: req.headers }));
   * ```
   */
  authenticateRequestNow(input: AuthenticateRequestInput, options?: AuthenticateOptions): AuthenticateResult | undefined;

  /**
   * Starts following the revocation feed. Resolves once every log entry up to now is in the
   * set and the stream is open; keeps reconnecting (with backoff) in the background after
   * that. Rejects only when the app's credentials are refused or on `close()`. Idempotent.
   *
   * @example
   * ```ts
   * await tessera.start();
   * server.listen(3000);
   * ```
   */
  start(): Promise<void>;

  /**
   * Stops the feed and timers and empties the caches; later `verify` calls reject with `CLOSED`.
   *
   * @example
   * ```ts
   * process.on('SIGTERM', () => tessera.close().then(() => server.close()));
   * ```
   */
  close(): Promise<void>;

  /**
   * Subscribes to an event; returns the unsubscribe function.
   *
   * @example
   * ```ts
   * const off = tessera.on('revoked', (e) => console.log('ended', e.sid, e.reason));
   * ```
   */
  on<K extends keyof TesseraEvents>(event: K, listener: (payload: TesseraEvents[K]) => void): () => void;

  /**
   * Removes a listener added with `on`.
   *
   * @example
   * ```ts
   * tessera.off('revoked', listener);
   * ```
   */
  off<K extends keyof TesseraEvents>(event: K, listener: (payload: TesseraEvents[K]) => void): void;

  /**
   * Where the feed is and how much is cached (entries no token can need any more are
   * dropped first, so the counts are current; O(entries), meant for health checks).
   *
   * @example
   * ```ts
   * tessera.feedStatus().state; // 'connected'
   * ```
   */
  feedStatus(): TesseraStatus;

  /**
   * Exchanges a Tessera session token for this app's access and refresh tokens
   * (`POST /v1/token`, `grant_type=session_token`); the app joins the session.
   * Rejects with `INVALID_GRANT` when the session is unknown or ended.
   *
   * @example
   * ```ts
   * const tokens = await tessera.exchange(req.cookies.tessera_session);
   * ```
   */
  exchange(sessionToken: string): Promise<TokenSet>;

  /**
   * Rotates a refresh token (`grant_type=refresh_token`). A spent refresh token rejects with
   * `REFRESH_TOKEN_REUSED` and ends the whole session (theft detection).
   *
   * @example
   * ```ts
   * const tokens = await tessera.refresh(stored.refreshToken);
   * ```
   */
  refresh(refreshToken: string): Promise<TokenSet>;

  /**
   * Asks Tessera about a token (RFC 7662). Reflects revocation at once; costs a network call.
   *
   * @example
   * ```ts
   * const { active } = await tessera.introspect(accessToken);
   * ```
   */
  introspect(token: string, options?: { hint?: 'access_token' | 'refresh_token' | 'session_token' }): Promise<IntrospectionResult>;

  /**
   * Server-to-server logout with the user's Tessera session token (`POST /api/v1/logout`):
   * scope `app` (leave the session), `session` (default: end it everywhere) or `user`
   * (end every session of the user; trusted apps only — another app's session still ends,
   * then the call rejects with `APP_NOT_TRUSTED`). Resolves also when it had already ended:
   * an ended token is a no-op for every scope.
   *
   * @example
   * ```ts
   * await tessera.logout(sessionToken, { scope: 'session' });
   * ```
   */
  logout(sessionToken: string, options?: { scope?: LogoutScope }): Promise<void>;

  /**
   * Ends one session by its handle (`DELETE /api/v1/sessions/:handle`). A trusted app may end
   * any session; another app only sessions it joined. Resolves `false` when Tessera answers
   * `SESSION_NOT_FOUND`.
   *
   * @example
   * ```ts
   * await tessera.revokeSession(session.sid);
   * ```
   */
  revokeSession(handle: string): Promise<boolean>;

  /**
   * Ends the sessions of a user (trusted apps only): all of them, only their `app` part, or
   * all but `except`. Resolves with the handles ended.
   *
   * @example
   * ```ts
   * const ended = await tessera.revokeUserSessions(userId, { except: currentSid });
   * ```
   */
  revokeUserSessions(userId: string, options?: { app?: string; except?: string }): Promise<string[]>;

  /**
   * Starts a session for a user the app has authenticated itself (trusted apps only,
   * `POST /v1/sessions`): by id, or by claims (creating the user when allowed). Claims may
   * say `email_verified: true` when the app verified the email itself; names with control,
   * bidirectional or invisible characters are refused (`INVALID_NAME`).
   *
   * @example
   * ```ts
   * const { sessionToken } = await tessera.startSession({ userId: 'u_123' });
   * const tokens = await tessera.exchange(sessionToken);
   * ```
   */
  startSession(input: { userId: string } | { user: Record<string, unknown> }, device?: { ip?: string; userAgent?: string }): Promise<StartedSession>;
}

function requireToken(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${name} must be a non-empty string`);
  return value;
}

function toTokenSet(body: unknown): TokenSet {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.access_token !== 'string' || typeof b.refresh_token !== 'string') {
    throw new TesseraSdkError('TESSERA_RESPONSE_INVALID', 'POST /v1/token did not return an access and a refresh token.');
  }
  return {
    accessToken: b.access_token,
    tokenType: typeof b.token_type === 'string' ? b.token_type : 'Bearer',
    expiresIn: typeof b.expires_in === 'number' ? b.expires_in : 0,
    refreshToken: b.refresh_token,
    sid: typeof b.sid === 'string' ? b.sid : '',
  };
}

/**
 * Creates a Tessera client for one app: local token verification with a revocation set kept
 * current by the revocation feed, the token and session API, and the data the framework
 * adapters and the back-channel receiver share.
 *
 * Feed semantics: on `start()` the client pages the whole revocation log once
 * (`GET /v1/revocations?after=0`, 1000 per page), keeping only entries whose `forget_after`
 * lies ahead, then follows `GET /v1/revocations/stream` from the last cursor, resuming with
 * `Last-Event-ID` after any drop. While the feed has been silent for longer than
 * `feed.maxStalenessMs` (or never caught up), `verify` applies `feed.onUnavailable`.
 *
 * @example
 * ```ts
 * import { createTessera } from '@tessera/sdk';
 *
 * const tessera = createTessera({
 *   issuer: 'https://auth.example.com',
 *   clientId: process.env.TESSERA_CLIENT_ID!,
 *   clientSecret: process.env.TESSERA_CLIENT_SECRET!,
 *   feed: { onUnavailable: 'introspect' },
 * });
 * await tessera.start();
 * const session = await tessera.verify(accessToken);
 * ```
 */
export function createTessera(options: TesseraOptions): Tessera {
  const o = resolveOptions(options);
  const log = o.logger;
  const warn = (message: string, details?: Record<string, unknown>) => log?.warn(message, details);
  const api = createApiClient({ baseUrl: o.url, clientId: o.clientId, clientSecret: o.clientSecret, fetch: o.fetch, timeoutMs: o.requestTimeoutMs });
  const keys = createRemoteJWKSet(new URL(o.jwksUri), {
    cooldownDuration: o.jwksCooldownMs,
    cacheMaxAge: o.jwksMaxAgeMs,
    timeoutDuration: o.requestTimeoutMs,
    [customFetch]: (url: string, init: RequestInit) => o.fetch(url, init),
  });
  const tokens = createExpiringCache<TesseraSession>(o.cacheMaxEntries);
  const inflight = new Map<string, Promise<TesseraSession>>();
  const introspections = createExpiringCache<boolean>(Math.max(1000, o.cacheMaxEntries));
  // Keep entries as long as verification could still accept a token of the session.
  const revocations = createRevocationSet(o.clientId, o.clockToleranceSeconds * 1000);
  const emitter = createEmitter<TesseraEvents>((error) => warn('tessera: an event listener threw', { error: String(error) }));
  let closed = false;
  let startedAt: number | null = null;

  const follower = createFeedFollower({
    api,
    fetch: o.fetch,
    pageSize: o.feed.pageSize,
    reconnectMinMs: o.feed.reconnectMinMs,
    reconnectMaxMs: o.feed.reconnectMaxMs,
    heartbeatTimeoutMs: o.feed.heartbeatTimeoutMs,
    now: o.now,
    random: Math.random,
    apply(event) {
      revocations.add({ sid: event.sid, app: event.app, atMs: event.at.getTime(), forgetAfterMs: event.forgetAfter.getTime() }, o.now());
      if (emitter.has('revoked')) emitter.emit('revoked', event);
    },
    onUp(info) {
      log?.info?.('tessera: revocation feed connected', info);
      emitter.emit('feed:up', info);
    },
    onDown(info) {
      warn('tessera: revocation feed down', { error: info.error.message, attempt: info.attempt, retryInMs: info.retryInMs });
      emitter.emit('feed:down', info);
    },
    warn,
  });

  // Expired tokens and forgotten revocations also leave on their own when looked up; the sweep
  // bounds memory for entries nobody asks about again.
  const sweep = setInterval(() => {
    const now = o.now();
    tokens.prune(now);
    introspections.prune(now);
    revocations.prune(now);
  }, 30_000);
  sweep.unref();

  async function verifyUncached(token: string): Promise<TesseraSession> {
    const payload = await verifyJwt(token, {
      keys,
      issuer: o.issuer,
      audience: o.clientId,
      typ: 'at+jwt',
      clockToleranceSeconds: o.clockToleranceSeconds,
      now: o.now(),
      maxBytes: o.maxTokenBytes,
      requiredClaims: ['sub', 'sid', 'exp', 'iat', 'jti'],
    });
    const { sub, sid, jti, exp, iat } = payload as Record<string, unknown>;
    if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string' || sid === '' || typeof exp !== 'number' || typeof iat !== 'number') {
      throw new TesseraSdkError('TOKEN_CLAIMS_INVALID');
    }
    const session: TesseraSession = Object.freeze({ sub, sid, aud: o.clientId, exp, iat, jti, claims: Object.freeze({ ...payload }) });
    tokens.set(token, session, (exp + o.clockToleranceSeconds) * 1000);
    return session;
  }

  function verifyOnce(token: string): Promise<TesseraSession> {
    let pending = inflight.get(token);
    if (!pending) {
      pending = verifyUncached(token).finally(() => inflight.delete(token));
      inflight.set(token, pending);
    }
    return pending;
  }

  async function isActive(token: string, cacheMs: number): Promise<boolean> {
    const cached = introspections.get(token, o.now());
    if (cached !== undefined) return cached;
    const result = await introspect(token, { hint: 'access_token' });
    if (cacheMs > 0) introspections.set(token, result.active, o.now() + cacheMs);
    return result.active;
  }

  function waitForCatchUp(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      start().then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        () => {
          clearTimeout(timer);
          resolve();
        },
      );
    });
  }

  /** True when the set can be trusted: the stream is open, or was heard from recently enough. */
  function feedIsFresh(): boolean {
    if (follower.connected) return true;
    const s = follower.status();
    return s.state !== 'failed' && s.caughtUp && s.lastContactAt !== null && o.now() - s.lastContactAt <= o.feed.maxStalenessMs;
  }

  /**
   * verify's answer when it is already known: a cached token, and a revocation set that
   * needs no waiting and no policy (feed off or stream open). Undefined: ask verify.
   */
  function verifyNow(token: string): TesseraSession | TesseraSdkError | undefined {
    if (closed) return undefined;
    const session = tokens.get(token, o.now());
    if (!session) return undefined;
    if (revocations.isRevoked(session.sid, session.iat, o.now())) return new TesseraSdkError('TOKEN_REVOKED');
    return !o.feed.enabled || follower.connected ? session : undefined;
  }

  async function verify(token: string): Promise<TesseraSession> {
    if (closed) throw new TesseraSdkError('CLOSED');
    const session = tokens.get(token, o.now()) ?? (await verifyOnce(token));
    if (revocations.isRevoked(session.sid, session.iat, o.now())) throw new TesseraSdkError('TOKEN_REVOKED');
    if (!o.feed.enabled || follower.connected) return session;

    const status = follower.status();
    if (!status.caughtUp && status.state !== 'failed') {
      // Only the first moments after start are worth waiting for; after that, the policy.
      if (startedAt === null) void start();
      const left = (startedAt ?? o.now()) + o.feed.startupWaitMs - o.now();
      if (left > 0) await waitForCatchUp(left);
      // The catch-up may just have brought this very session's revocation.
      if (revocations.isRevoked(session.sid, session.iat, o.now())) throw new TesseraSdkError('TOKEN_REVOKED');
    }
    if (feedIsFresh()) return session;
    // The set may be missing revocations: never accept on it alone.
    if (o.feed.onUnavailable === 'fail-closed') throw new TesseraSdkError('FEED_UNAVAILABLE');
    if (!(await isActive(token, o.feed.introspectCacheMs))) throw new TesseraSdkError('TOKEN_REVOKED');
    return session;
  }

  function start(): Promise<void> {
    if (closed) return Promise.reject(new TesseraSdkError('CLOSED'));
    if (!o.feed.enabled) return Promise.resolve();
    startedAt ??= o.now();
    return follower.start();
  }

  async function introspect(token: string, opts: { hint?: 'access_token' | 'refresh_token' | 'session_token' } = {}): Promise<IntrospectionResult> {
    requireToken(token, 'token');
    const { body } = await api.request({ method: 'POST', path: '/v1/introspect', form: { token, token_type_hint: opts.hint } });
    const result = body as IntrospectionResult | null;
    if (!result || typeof result.active !== 'boolean') throw new TesseraSdkError('TESSERA_RESPONSE_INVALID', 'POST /v1/introspect did not return "active".');
    return result;
  }

  return {
    clientId: o.clientId,
    issuer: o.issuer,
    keys,
    verify,
    authenticateRequest: (input, opts) => authenticateWith({ verify, isActive, defaultStrictCacheMs: o.feed.introspectCacheMs }, input, opts),
    authenticateRequestNow: (input, opts) => authenticateNowWith(verifyNow, input, opts),
    start,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sweep);
      await follower.close();
      tokens.clear();
      introspections.clear();
      revocations.clear();
    },
    on: emitter.on,
    off: emitter.off,
    feedStatus() {
      const now = o.now();
      revocations.prune(now);
      tokens.prune(now);
      return { ...follower.status(), revokedSessions: revocations.size, cachedTokens: tokens.size };
    },
    async exchange(sessionToken) {
      requireToken(sessionToken, 'sessionToken');
      const { body } = await api.request({ method: 'POST', path: '/v1/token', form: { grant_type: 'session_token', session_token: sessionToken } });
      return toTokenSet(body);
    },
    async refresh(refreshToken) {
      requireToken(refreshToken, 'refreshToken');
      const { body } = await api.request({ method: 'POST', path: '/v1/token', form: { grant_type: 'refresh_token', refresh_token: refreshToken } });
      return toTokenSet(body);
    },
    introspect,
    async logout(sessionToken, opts = {}) {
      requireToken(sessionToken, 'sessionToken');
      await api.request({ method: 'POST', path: '/api/v1/logout', json: { token: sessionToken, scope: opts.scope ?? 'session' } });
    },
    async revokeSession(handle) {
      requireToken(handle, 'handle');
      try {
        await api.request({ method: 'DELETE', path: `/api/v1/sessions/${encodeURIComponent(handle)}` });
        return true;
      } catch (error) {
        if (error instanceof TesseraSdkError && error.code === 'SESSION_NOT_FOUND') return false;
        throw error;
      }
    },
    async revokeUserSessions(userId, opts = {}) {
      requireToken(userId, 'userId');
      const { body } = await api.request({ method: 'DELETE', path: `/api/v1/users/${encodeURIComponent(userId)}/sessions`, query: { app: opts.app, except: opts.except } });
      const revoked = (body as { revoked?: unknown } | null)?.revoked;
      if (!Array.isArray(revoked)) throw new TesseraSdkError('TESSERA_RESPONSE_INVALID', 'DELETE /api/v1/users/:id/sessions did not return "revoked".');
      return revoked.filter((h): h is string => typeof h === 'string');
    },
    async startSession(input, device) {
      const body: Record<string, unknown> = 'userId' in input ? { user_id: requireToken(input.userId, 'userId') } : { user: input.user };
      if (device) body.device = { ip: device.ip, user_agent: device.userAgent };
      const { body: answer } = await api.request({ method: 'POST', path: '/v1/sessions', json: body });
      const a = (answer ?? {}) as Record<string, unknown>;
      if (typeof a.session_token !== 'string') throw new TesseraSdkError('TESSERA_RESPONSE_INVALID', 'POST /v1/sessions did not return a session token.');
      return { session: (a.session ?? {}) as Record<string, unknown>, sessionToken: a.session_token, user: (a.user ?? {}) as Record<string, unknown> };
    },
  };
}
