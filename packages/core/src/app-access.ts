import { TesseraError } from './errors.js';
import type { AppRecord, SessionRecord } from './model.js';

/**
 * What an app may do to sessions, decided here once for every route (server-to-server
 * logout, `DELETE /api/v1/sessions/:handle`, `DELETE /api/v1/users/:id/sessions`,
 * `POST /v1/sessions`, the token endpoint and introspection). A route asks; it never
 * decides on its own, so two routes can no longer grant the same app different powers.
 *
 * - `leave`: end the app's own part of a session whose live token it holds — any app.
 * - `end_session`: end a whole session whose live token it holds — any app (holding the
 *   token is the proof: the user gave it to this app, and could end the session with it).
 * - `end_session_by_handle`: end a session named only by its handle — a trusted app, or an
 *   app that is a current member of that session (joined and not left).
 * - `end_user_sessions`: end every session of a user — trusted apps only.
 * - `start_session`: start a session for a user, create users from claims — trusted only.
 * - `report_activity`: move the idle deadline of a session named by its handle
 *   (`POST /api/v1/sessions/:handle/activity`) — a current member of that session only,
 *   trusted or not: an app may keep alive only sessions it takes part in.
 * - `end_by_shared_cookie`: end (its part of) the session a shared parent-domain cookie names
 *   (`POST /api/v1/logout` with that cookie) — only the cookie's reader app
 *   (`sharedCookie.clientId`), and only while it is a current member of that session. Why:
 *   the reader shares the cookie's HS256 secret, so the cookie proves no more than the
 *   reader's own word, and every app under the parent domain receives it from browsers; it is
 *   trusted only from the reader and only for sessions the reader takes part in. Whether the
 *   cookie may then end every session of the user is the `end_user_sessions` decision, as
 *   for a session token.
 */
export type AppAction =
  | 'leave'
  | 'end_session'
  | 'end_session_by_handle'
  | 'end_user_sessions'
  | 'start_session'
  | 'report_activity'
  | 'end_by_shared_cookie';

/** What a decision needs beyond the app and the session. */
export interface AppAccessContext {
  /** `sharedCookie.clientId` when the shared cookie is enabled: the one app that reads it. */
  sharedCookieReader?: string | null;
}

/**
 * True when the app has joined the session and not left it: the one membership test of
 * every app-authenticated session route. With `sinceSeconds` (a token's `iat`), the token
 * must also come from the current membership — a token issued before the app left and
 * joined again is not valid.
 *
 * @example
 * ```ts
 * if (!isMember(session, app.clientId)) throw new TesseraError('SESSION_NOT_FOUND');
 * ```
 */
export function isMember(session: Pick<SessionRecord, 'apps'>, clientId: string, sinceSeconds?: number): boolean {
  const member = session.apps.find((a) => a.clientId === clientId);
  if (!member || member.leftAt !== null) return false;
  return sinceSeconds === undefined || sinceSeconds >= Math.floor(member.joinedAt / 1000);
}

/**
 * Whether `app` may take `action` (on `session`, for the actions that name one:
 * `end_session_by_handle`, `report_activity`, `end_by_shared_cookie`; the last also needs
 * `context.sharedCookieReader`). Without the session, those actions are refused.
 *
 * @example
 * ```ts
 * appMay(untrusted, 'end_user_sessions'); // false
 * appMay(forum, 'end_by_shared_cookie', session, { sharedCookieReader: 'forum' }); // true if a member
 * ```
 */
export function appMay(app: AppRecord, action: AppAction, session?: Pick<SessionRecord, 'apps'>, context: AppAccessContext = {}): boolean {
  switch (action) {
    case 'leave':
    case 'end_session':
      return true;
    case 'end_session_by_handle':
      return app.trusted || (session !== undefined && isMember(session, app.clientId));
    case 'report_activity':
      // Not even a trusted app keeps alive a session it is not part of: activity is a claim
      // that the user is using this app now, which only a member can make.
      return session !== undefined && isMember(session, app.clientId);
    case 'end_by_shared_cookie':
      return (
        typeof context.sharedCookieReader === 'string' &&
        context.sharedCookieReader === app.clientId &&
        session !== undefined &&
        isMember(session, app.clientId)
      );
    case 'end_user_sessions':
    case 'start_session':
      return app.trusted;
  }
}

/** The error each refused action answers with. */
function refusal(action: AppAction): TesseraError {
  switch (action) {
    // A handle the app may not touch: it cannot even learn that the session exists.
    case 'end_session_by_handle':
    case 'report_activity':
      return new TesseraError('SESSION_NOT_FOUND');
    // From any app but the reader, or for a session the reader is not in, the cookie is not
    // a credential at all: the same answer as a token Tessera never issued.
    case 'end_by_shared_cookie':
      return new TesseraError('TOKEN_INVALID');
    default:
      return new TesseraError('APP_NOT_TRUSTED');
  }
}

/**
 * Throws unless `app` may take `action`: `APP_NOT_TRUSTED` for the trusted-only actions;
 * `SESSION_NOT_FOUND` for a handle the app may not touch (`end_session_by_handle`,
 * `report_activity`) — an app that never joined, or has left, cannot even learn that the
 * session exists; `TOKEN_INVALID` for a shared cookie the app may not use.
 *
 * @example
 * ```ts
 * requireAppMay(app, 'end_session_by_handle', session);
 * ```
 */
export function requireAppMay(app: AppRecord, action: AppAction, session?: Pick<SessionRecord, 'apps'>, context: AppAccessContext = {}): void {
  if (appMay(app, action, session, context)) return;
  throw refusal(action);
}
