import { jwtVerify } from 'jose';
import type { AppService } from './apps.js';
import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import type { AppRecord, SessionRecord } from './model.js';
import { isAllowedReturnUrl } from './redirects.js';
import { hashSecret, randomToken, splitToken, verifySecret } from './secrets.js';
import type { SessionService } from './sessions.js';

// A compact JWS (the shared cookie); session tokens are `<id>.<secret>` with one dot.
const SHARED_COOKIE_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** What an app's server-to-server logout ends. */
export type LogoutScope = 'app' | 'session' | 'user';

/**
 * Every logout flow, each with one meaning: the browser flow with a one-time logout token,
 * the API flow with the session token, and the server-to-server flow with app credentials.
 *
 * @example
 * ```ts
 * const logout = createLogoutService(deps, sessions, apps);
 * const { logoutUrl } = await logout.issueLogoutToken(session);
 * ```
 */
export function createLogoutService(deps: CoreDeps, sessions: SessionService, apps: AppService) {
  const { store, config, clock } = deps;
  const defaultReturnUrl = config.logout.defaultReturnUrl ?? `${config.issuer}/login`;

  /**
   * A one-time logout token bound to the session. A cross-site page cannot obtain it (it
   * is only returned to a caller holding the session), so a forged link or image cannot end
   * the user's session (logout CSRF). Only its hash is stored.
   */
  async function issueLogoutToken(session: SessionRecord): Promise<{ logoutToken: string; logoutUrl: string }> {
    const logoutToken = randomToken(32);
    await store.createLogoutToken(hashSecret(logoutToken), session.handle, clock.now() + config.logout.tokenTtlSeconds * 1000);
    return { logoutToken, logoutUrl: `${config.issuer}/v1/logout?token=${encodeURIComponent(logoutToken)}` };
  }

  /** Where to send the browser: the exact allow-listed `returnTo`, or the default. */
  async function resolveReturnUrl(returnTo: string | undefined): Promise<string> {
    if (returnTo === undefined || returnTo === '') return defaultReturnUrl;
    const allowed = await apps.returnUrlAllowList();
    allowed.add(defaultReturnUrl);
    if (!isAllowedReturnUrl(returnTo, allowed)) throw new TesseraError('RETURN_URL_NOT_ALLOWED');
    return returnTo;
  }

  /** Ends the session a logout token was issued for; the token is spent either way. */
  async function logoutWithLogoutToken(logoutToken: string, ip: string | null): Promise<string> {
    if (logoutToken.length < 16 || logoutToken.length > 128) throw new TesseraError('LOGOUT_TOKEN_INVALID');
    const handle = await store.consumeLogoutToken(hashSecret(logoutToken), clock.now());
    if (!handle) throw new TesseraError('LOGOUT_TOKEN_INVALID');
    await sessions.revokeSessions([handle], { actor: 'user', reason: 'logout', ip });
    return handle;
  }

  /** The session a token names (active or ended), if its secret matches. */
  async function findByToken(token: string): Promise<SessionRecord | null> {
    const parts = splitToken(token);
    if (!parts) return null;
    const session = await store.findSessionByTokenId(parts.id);
    if (!session || !verifySecret(parts.secret, session.secretHash)) return null;
    return session;
  }

  /**
   * The session a shared parent-domain cookie (config `sharedCookie`) names, when the app
   * presenting it is the cookie's reader (`sharedCookie.clientId`, e.g. the forum with
   * nodebb-plugin-tessera) and a member of that session. The reader never holds the session
   * token, only this cookie, so this is how it logs the user out everywhere when they log
   * out of it. Why only the reader: it is the one app that shares the HS256 secret, so the
   * cookie proves nothing more than its own word, and that word is only trusted for
   * sessions it takes part in (as `DELETE /api/v1/sessions/:handle` already allows); it is
   * never trusted for a user-wide end (the caller refuses scope `user`).
   */
  async function findBySharedCookie(app: AppRecord, token: string): Promise<SessionRecord | null> {
    const shared = config.sharedCookie;
    if (!shared.enabled || !shared.secret || shared.clientId !== app.clientId) return null;
    let sid: unknown;
    try {
      // HS256 only (the algorithm Tessera signs the cookie with), and exp is checked.
      ({ payload: { sid } } = await jwtVerify(token, new TextEncoder().encode(shared.secret), { algorithms: ['HS256'], currentDate: new Date(clock.now()) }));
    } catch {
      return null;
    }
    if (typeof sid !== 'string') return null;
    const session = await store.findSessionByHandle(sid);
    return session && session.apps.some((a) => a.clientId === app.clientId) ? session : null;
  }

  /**
   * The API flow: ends the session of `token`. Idempotent — an already ended session is
   * fine — but an unknown token is `TOKEN_INVALID`.
   */
  async function logoutWithSessionToken(token: string, ip: string | null): Promise<'ended' | 'already_ended'> {
    const session = await findByToken(token);
    if (!session) throw new TesseraError('TOKEN_INVALID');
    if (session.endedAt !== null) return 'already_ended';
    const ended = await sessions.revokeSessions([session.handle], { actor: 'user', reason: 'logout', ip });
    return ended.length > 0 ? 'ended' : 'already_ended';
  }

  /**
   * The server-to-server flow: an authenticated app posts the user's session token.
   * `app` ends only this app's part, `session` the whole session everywhere, `user` every
   * session of that user.
   */
  async function logoutForApp(app: AppRecord, token: string, scope: LogoutScope, ip: string | null): Promise<string[]> {
    const cookie = SHARED_COOKIE_SHAPE.test(token) ? await findBySharedCookie(app, token) : null;
    const session = cookie ?? (await findByToken(token));
    if (!session) throw new TesseraError('TOKEN_INVALID');
    // A shared cookie is the reader app's word, not the user's token: never enough to end
    // sessions the app has no part in.
    if (cookie && scope === 'user' && !app.trusted) throw new TesseraError('FORBIDDEN', 'A shared cookie can end its own session (scope app or session), not every session of the user.');
    const options = { actor: `app:${app.clientId}` as const, reason: 'logout' as const, ip };
    if (scope === 'user') return sessions.revokeUserSessions(session.userId, {}, options);
    if (session.endedAt !== null) return [];
    if (scope === 'app') return (await sessions.leaveSession(session.handle, app.clientId, options)) ? [session.handle] : [];
    return sessions.revokeSessions([session.handle], options);
  }

  return { issueLogoutToken, resolveReturnUrl, logoutWithLogoutToken, logoutWithSessionToken, logoutForApp, defaultReturnUrl };
}

/** The logout service returned by {@link createLogoutService}. */
export type LogoutService = ReturnType<typeof createLogoutService>;
