import { jwtVerify } from 'jose';
import { appMay, requireAppMay } from './app-access.js';
import type { AppService } from './apps.js';
import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import type { AppRecord, SessionRecord } from './model.js';
import { isAllowedReturnUrl } from './redirects.js';
import { hashSecret, randomToken } from './secrets.js';
import type { ResolvedSession, SessionService } from './sessions.js';

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

  /**
   * What a shared parent-domain cookie (config `sharedCookie`) names, resolved as a session
   * token is: `unknown` when the cookie does not verify (wrong key, not HS256, expired,
   * no `sid`) or names no session; `dead` when its session has ended or is past its
   * deadline; `live` otherwise. The cookie's reader app (`sharedCookie.clientId`, e.g. the
   * forum with nodebb-plugin-tessera) never holds the session token, only this cookie, so
   * this is how it logs the user out everywhere when they log out of it. Whether the app
   * presenting it may use it is not decided here but by `requireAppMay(app,
   * 'end_by_shared_cookie')`, with every other decision of what an app may do.
   */
  async function resolveSharedCookie(token: string): Promise<ResolvedSession> {
    const shared = config.sharedCookie;
    if (!shared.enabled || !shared.secret) return { state: 'unknown' };
    let sid: unknown;
    try {
      // HS256 only (the algorithm Tessera signs the cookie with), and exp is checked.
      ({ payload: { sid } } = await jwtVerify(token, new TextEncoder().encode(shared.secret), { algorithms: ['HS256'], currentDate: new Date(clock.now()) }));
    } catch {
      return { state: 'unknown' };
    }
    if (typeof sid !== 'string') return { state: 'unknown' };
    return sessions.resolveHandle(sid);
  }

  /**
   * The API flow: ends the session of `token`. Idempotent — an already ended session is
   * fine — but an unknown token is `TOKEN_INVALID`.
   */
  async function logoutWithSessionToken(token: string, ip: string | null): Promise<'ended' | 'already_ended'> {
    const found = await sessions.resolveToken(token);
    if (found.state === 'unknown') throw new TesseraError('TOKEN_INVALID');
    if (found.state === 'dead') return 'already_ended';
    const ended = await sessions.revokeSessions([found.session.handle], { actor: 'user', reason: 'logout', ip });
    return ended.length > 0 ? 'ended' : 'already_ended';
  }

  /**
   * The server-to-server flow: an authenticated app posts the user's session token.
   * `app` ends only this app's part, `session` the whole session everywhere, `user` every
   * session of that user.
   *
   * The token is resolved to a live session before anything else: a dead token (ended, or
   * past its deadline) has no power left, whatever the scope — it is a no-op, as a logout
   * of an ended session is. What the app may end is decided by `requireAppMay`, as on every
   * other route: `user` needs a trusted app, exactly as `DELETE /api/v1/users/:id/sessions`
   * does. An untrusted app asking for `user` still ends the session whose token it holds
   * (a logout is never refused), then hears `APP_NOT_TRUSTED` for the rest.
   *
   * The shared cookie's reader app may post that cookie instead of the token (see
   * {@link resolveSharedCookie}): the same resolution (a dead session behind a valid cookie
   * is a no-op too) and the same scope decisions, once `requireAppMay(app,
   * 'end_by_shared_cookie')` has accepted the cookie from this app for this session.
   */
  async function logoutForApp(app: AppRecord, token: string, scope: LogoutScope, ip: string | null): Promise<string[]> {
    // A shared cookie (a JWS, two dots) or a session token (one dot); either is resolved to
    // a live session before anything else.
    const byCookie = SHARED_COOKIE_SHAPE.test(token);
    const found = byCookie ? await resolveSharedCookie(token) : await sessions.resolveToken(token);
    if (found.state === 'unknown') throw new TesseraError('TOKEN_INVALID');
    if (found.state === 'dead') return [];
    const { session } = found;
    // The cookie is the reader's own word, not the user's token: only the reader may use it,
    // only for a session it is a member of (TOKEN_INVALID otherwise, as for a token Tessera
    // never issued). Scope user is then the same decision as for a token, below.
    if (byCookie) requireAppMay(app, 'end_by_shared_cookie', session, { sharedCookieReader: config.sharedCookie.enabled ? config.sharedCookie.clientId : null });
    const options = { actor: `app:${app.clientId}` as const, reason: 'logout' as const, ip };
    if (scope === 'app') {
      requireAppMay(app, 'leave');
      return (await sessions.leaveSession(session.handle, app.clientId, options)) ? [session.handle] : [];
    }
    if (scope === 'user') {
      if (!appMay(app, 'end_user_sessions')) {
        await sessions.revokeSessions([session.handle], options);
        throw new TesseraError('APP_NOT_TRUSTED', 'The session of this token was ended; ending every session of the user needs a trusted app.');
      }
      return sessions.revokeUserSessions(session.userId, {}, options);
    }
    requireAppMay(app, 'end_session');
    return sessions.revokeSessions([session.handle], options);
  }

  return { issueLogoutToken, resolveReturnUrl, logoutWithLogoutToken, logoutWithSessionToken, logoutForApp, defaultReturnUrl };
}

/** The logout service returned by {@link createLogoutService}. */
export type LogoutService = ReturnType<typeof createLogoutService>;
