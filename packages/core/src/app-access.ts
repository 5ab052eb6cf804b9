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
 */
export type AppAction = 'leave' | 'end_session' | 'end_session_by_handle' | 'end_user_sessions' | 'start_session';

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
 * Whether `app` may take `action` (on `session`, for `end_session_by_handle`).
 *
 * @example
 * ```ts
 * appMay(untrusted, 'end_user_sessions'); // false
 * ```
 */
export function appMay(app: AppRecord, action: AppAction, session?: Pick<SessionRecord, 'apps'>): boolean {
  switch (action) {
    case 'leave':
    case 'end_session':
      return true;
    case 'end_session_by_handle':
      return app.trusted || (session !== undefined && isMember(session, app.clientId));
    case 'end_user_sessions':
    case 'start_session':
      return app.trusted;
  }
}

/**
 * Throws unless `app` may take `action`: `APP_NOT_TRUSTED` for the trusted-only actions;
 * `SESSION_NOT_FOUND` for a handle the app may not touch — an app that never joined, or
 * has left, cannot even learn that the session exists.
 *
 * @example
 * ```ts
 * requireAppMay(app, 'end_session_by_handle', session);
 * ```
 */
export function requireAppMay(app: AppRecord, action: AppAction, session?: Pick<SessionRecord, 'apps'>): void {
  if (appMay(app, action, session)) return;
  throw new TesseraError(action === 'end_session_by_handle' ? 'SESSION_NOT_FOUND' : 'APP_NOT_TRUSTED');
}
