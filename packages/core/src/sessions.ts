import { isMember, requireAppMay } from './app-access.js';
import type { CoreDeps, Device } from './deps.js';
import { TesseraError } from './errors.js';
import { idleDeadline, isSessionExpired, shouldTouch } from './lifetimes.js';
import type { Actor, AppRecord, EndReason, SessionRecord, UserRecord } from './model.js';
import { commitRevocation } from './revoke.js';
import { createHandle, createSplitToken, splitToken, verifySecret, type SplitToken } from './secrets.js';

/** A session that was just started, with its token (shown once, never stored). */
export interface StartedSession {
  session: SessionRecord;
  token: string;
}

/** The result of presenting a session token. */
export interface Authenticated {
  session: SessionRecord;
  user: UserRecord;
}

/** What a revocation call ends. */
export interface RevokeOptions {
  actor: Actor;
  reason: EndReason;
  ip?: string | null;
}

/**
 * Session rules: start, authenticate (with idle/absolute expiry), list and end.
 *
 * @example
 * ```ts
 * const sessions = createSessionService(deps);
 * const { token } = await sessions.startSession(user, { ip, userAgent }, 'forum');
 * const current = await sessions.authenticate(token); // { session, user } or null
 * ```
 */
export function createSessionService(deps: CoreDeps) {
  const { store, config, clock } = deps;
  const idleMs = config.session.idleTimeoutSeconds * 1000;
  const lifetimeMs = config.session.absoluteLifetimeSeconds * 1000;
  const touchMs = config.session.touchIntervalSeconds * 1000;

  async function startSession(user: UserRecord, device: Device, clientId?: string): Promise<StartedSession> {
    if (user.disabled) throw new TesseraError('USER_DISABLED');
    const now = clock.now();
    // A fresh token id and handle on every login: a session id known before login (fixation)
    // is never promoted to an authenticated one.
    const { token, id, secretHash } = createSplitToken();
    const session = await store.transaction(async (tx) => {
      const created = await tx.createSession({
        tokenId: id,
        secretHash,
        handle: createHandle('ses'),
        userId: user.id,
        ip: device.ip,
        userAgent: device.userAgent,
        createdAt: now,
        idleTimeoutMs: idleMs,
        expiresAt: now + lifetimeMs,
        apps: clientId ? [{ clientId, joinedAt: now, leftAt: null }] : [],
      });
      await tx.appendAudit({
        at: now,
        actor: clientId ? `app:${clientId}` : 'user',
        action: 'session.started',
        userId: user.id,
        sessionHandle: created.handle,
        clientId: clientId ?? null,
        ip: device.ip,
        details: {},
      });
      return created;
    });
    return { session, token };
  }

  /**
   * What a presented token names: `unknown` (never issued, or a wrong secret), `dead` (its
   * session ended, or is past its deadline — ended on the spot, with reason `expired`), or
   * `live`. Every route that takes a session token goes through here (or `findActive` /
   * `authenticate`, which build on the same lookup), so a dead token never has any power.
   */
  async function resolveToken(token: string): Promise<ResolvedSession> {
    const parts = splitToken(token);
    if (!parts) return { state: 'unknown' };
    const session = await store.findSessionByTokenId(parts.id);
    if (!session || !verifySecret(parts.secret, session.secretHash)) return { state: 'unknown' };
    return (await isLive(session)) ? { state: 'live', session } : { state: 'dead', session };
  }

  /** Finds the active session a token belongs to, ending it on the spot if it has expired. */
  async function findActive(token: string): Promise<SessionRecord | null> {
    const parts = splitToken(token);
    return parts ? findActiveByParts(parts) : null;
  }

  async function findActiveByParts(parts: SplitToken): Promise<SessionRecord | null> {
    const session = await store.findSessionByTokenId(parts.id);
    if (!session || session.endedAt !== null) return null;
    if (!verifySecret(parts.secret, session.secretHash)) return null;
    return (await isLive(session)) ? session : null;
  }

  /**
   * Whether a stored session is still live. One past its idle or absolute deadline is ended
   * on the spot with reason `expired` (lazy expiry), so the log (and every app) hears of it
   * even before the sweeper passes.
   */
  async function isLive(session: SessionRecord): Promise<boolean> {
    if (session.endedAt !== null) return false;
    if (!isSessionExpired(session, clock.now())) return true;
    await endByHandle(session.handle, { actor: 'system', reason: 'expired' });
    return false;
  }

  /** Reads the active session and its (enabled) user from the store. */
  async function load(parts: SplitToken): Promise<Authenticated | null> {
    const session = await findActiveByParts(parts);
    if (!session) return null;
    const user = await store.findUserById(session.userId);
    return user && !user.disabled ? { session, user } : null;
  }

  async function authenticate(token: string): Promise<Authenticated | null> {
    const parts = splitToken(token);
    if (!parts) return null;
    const { cache } = deps;
    let found: Authenticated | null = null;
    const hit = cache ? await cache.get(parts.id) : null;
    if (hit && !isSessionExpired(hit.session, clock.now())) {
      if (!verifySecret(parts.secret, hit.session.secretHash)) return null;
      found = hit;
    } else {
      const ticket = cache ? await cache.ticket() : null;
      found = await load(parts);
      if (found && cache && ticket) await cache.set(parts.id, found.session, found.user, ticket);
    }
    if (!found) return null;
    const { session, user } = found;
    const now = clock.now();
    if (shouldTouch(session, now, touchMs)) {
      const idleExpiresAt = idleDeadline(now, session.idleTimeoutMs, session.expiresAt);
      await store.touchSession(session.tokenId, now, idleExpiresAt);
      session.lastSeenAt = now;
      session.idleExpiresAt = idleExpiresAt;
    }
    return { session, user };
  }

  async function endByHandle(handle: string, options: RevokeOptions, auditIfNone = true): Promise<boolean> {
    const events = await revokeSessions([handle], options, auditIfNone);
    return events.length > 0;
  }

  async function revokeSessions(handles: string[], options: RevokeOptions, auditIfNone = true): Promise<string[]> {
    const unique = [...new Set(handles)];
    const now = clock.now();
    const events = await commitRevocation(
      deps,
      (tx) => tx.endSessions(unique, { at: now, reason: options.reason, actor: options.actor }),
      { actor: options.actor, action: 'sessions.revoked', userId: null, sessionHandle: unique.length === 1 ? unique[0]! : null, clientId: null, ip: options.ip ?? null, details: { reason: options.reason } },
      { auditIfNone },
    );
    return events.map((e) => e.sid);
  }

  /**
   * Ends one session. With `ownerId`, the session must belong to that user (self-service):
   * someone else's handle is reported as not found, so handles of other users cannot be probed.
   */
  async function revokeSession(handle: string, options: RevokeOptions & { ownerId?: string }): Promise<boolean> {
    if (options.ownerId === undefined) {
      // Ended first, looked up only when nothing ended (already ended, or no such handle):
      // the common case is then one read less (on PostgreSQL a round trip) before the
      // revocation, which is the time a logout is waiting on.
      if (await endByHandle(handle, options, false)) return true;
      if (!(await store.findSessionByHandle(handle))) throw new TesseraError('SESSION_NOT_FOUND');
      return false;
    }
    const session = await store.findSessionByHandle(handle);
    if (!session || session.userId !== options.ownerId) {
      throw new TesseraError('SESSION_NOT_FOUND');
    }
    if (session.endedAt !== null) return false;
    return endByHandle(handle, options);
  }

  /**
   * Ends a user's sessions: all, all but `exceptHandle`, or — with `clientId` — only that
   * app's part of each session (the app leaves, the sessions go on for the other apps).
   * Returns the handles that changed.
   */
  async function revokeUserSessions(
    userId: string,
    selector: { exceptHandle?: string; clientId?: string },
    options: RevokeOptions,
  ): Promise<string[]> {
    const now = clock.now();
    const end = { at: now, reason: options.reason, actor: options.actor };
    const audit = { actor: options.actor, action: selector.clientId ? 'sessions.app_revoked' : 'sessions.user_revoked', userId, sessionHandle: null, clientId: selector.clientId ?? null, ip: options.ip ?? null, details: { reason: options.reason, except: selector.exceptHandle ?? null } };
    const events = await commitRevocation(
      deps,
      async (tx) => {
        if (selector.clientId === undefined) {
          return tx.endUserSessions(userId, selector.exceptHandle ? { exceptHandle: selector.exceptHandle } : {}, end);
        }
        const clientId = selector.clientId;
        const joined = (await tx.listSessionsByUser(userId))
          .filter((s) => s.handle !== selector.exceptHandle && isMember(s, clientId))
          .map((s) => s.handle);
        return tx.leaveSessions(joined, clientId, end);
      },
      audit,
      // Every session of the user ended: apps get one notice naming the user, not one per session.
      { userWide: selector.clientId === undefined && selector.exceptHandle === undefined },
    );
    return events.map((e) => e.sid);
  }

  /** Ends one app's part of a session (scope `app`). */
  async function leaveSession(handle: string, clientId: string, options: RevokeOptions): Promise<boolean> {
    const now = clock.now();
    const events = await commitRevocation(deps, (tx) => tx.leaveSessions([handle], clientId, { at: now, reason: options.reason, actor: options.actor }), {
      actor: options.actor, action: 'sessions.app_left', userId: null, sessionHandle: handle, clientId, ip: options.ip ?? null, details: { reason: options.reason },
    });
    return events.length > 0;
  }

  /** Ends every session past its deadline, in batches; returns how many ended. */
  async function sweepExpired(): Promise<number> {
    let total = 0;
    for (;;) {
      const now = clock.now();
      const events = await commitRevocation(deps, (tx) => tx.endExpiredSessions(now, config.sweeper.batchSize));
      total += events.length;
      if (events.length < config.sweeper.batchSize) break;
    }
    await store.purgeLogoutTokens(clock.now());
    // Spent refresh tokens are kept until they would have expired (a late reuse is still
    // detected as theft); after that nobody can present them.
    await store.purgeRefreshTokens(clock.now());
    // A code past its expiry cannot be redeemed, and a replay of it is refused as unknown.
    await store.purgeAuthorizationCodes(clock.now());
    return total;
  }

  async function listUserSessions(userId: string): Promise<SessionRecord[]> {
    const now = clock.now();
    // Sessions past their deadline but not yet swept are not shown as active.
    return (await store.listSessionsByUser(userId)).filter((s) => !isSessionExpired(s, now));
  }

  /**
   * Records that an app joined a session. `session` is the record just authenticated (from
   * the store, or from the exact session cache, which drops a session on every change made
   * here and empties on any foreign commit): when it already lists the app as joined and not
   * left, there is nothing to write. An app that asks whoami on every page view then costs
   * no write transaction per request.
   */
  async function joinSession(session: SessionRecord, clientId: string): Promise<void> {
    if (isMember(session, clientId)) return;
    const at = clock.now();
    if (await store.joinSession(session.handle, clientId, at)) {
      // Cached copies of this session still list the old apps.
      deps.cache?.dropSessions([session.handle]);
      session.apps = session.apps.filter((a) => a.clientId !== clientId).concat({ clientId, joinedAt: at, leftAt: null });
    }
  }

  /**
   * What a session handle names, as {@link resolveToken} does for a token: `unknown`, `dead`
   * (ended, or past its deadline — ended on the spot, with reason `expired`) or `live`. For
   * the routes that name a session without its token (the shared cookie's `sid`, activity
   * reports), so a dead session has no more power there than a dead token.
   */
  async function resolveHandle(handle: string): Promise<ResolvedSession> {
    const session = await store.findSessionByHandle(handle);
    if (!session) return { state: 'unknown' };
    return (await isLive(session)) ? { state: 'live', session } : { state: 'dead', session };
  }

  /**
   * An app reports that a session it is a member of is in use there (the forum with the
   * shared cookie never presents the session token, so without this a person who only uses
   * the forum would be signed out everywhere at the idle timeout). Moves the idle deadline
   * like a use of the session token does, written at most once per touch interval.
   * `SESSION_NOT_FOUND` when the session is unknown, ended or expired (a dead session is
   * never revived), or when `requireAppMay(app, 'report_activity')` refuses: an app may keep
   * alive only sessions it takes part in.
   */
  async function recordAppActivity(app: AppRecord, handle: string): Promise<void> {
    const found = await resolveHandle(handle);
    if (found.state !== 'live') throw new TesseraError('SESSION_NOT_FOUND');
    const { session } = found;
    requireAppMay(app, 'report_activity', session);
    const now = clock.now();
    if (shouldTouch(session, now, touchMs)) {
      await store.touchSession(session.tokenId, now, idleDeadline(now, session.idleTimeoutMs, session.expiresAt));
      // Cached copies still carry the old idle deadline.
      deps.cache?.dropSessions([session.handle]);
    }
  }

  return { startSession, authenticate, findActive, resolveToken, resolveHandle, revokeSession, revokeSessions, revokeUserSessions, leaveSession, sweepExpired, listUserSessions, joinSession, recordAppActivity };
}

/** What a presented token or handle names: never issued (or a wrong secret), an ended session, or a live one. */
export type ResolvedSession = { state: 'unknown' } | { state: 'dead'; session: SessionRecord } | { state: 'live'; session: SessionRecord };

/** The session service returned by {@link createSessionService}. */
export type SessionService = ReturnType<typeof createSessionService>;
