import { readResponseError, TesseraBrowserError } from './errors.js';
import { globalFetch, type FetchLike } from './fetch-like.js';

/** Options of {@link logout}. */
export interface LogoutOptions {
  /** Tessera's public base URL, e.g. `https://auth.example.com` (a trailing slash is fine). */
  issuer: string;
  /**
   * A one-time logout token from `GET /v1/logout/browser`. When given, it is sent as
   * `{"logout_token"}` and proves the request on its own (no session cookie needed, so it
   * also works where third-party cookies are blocked). Without it, the session cookie and
   * the `X-Tessera-CSRF` header are used.
   */
  logoutToken?: string;
  /** The fetch to use; defaults to the global `fetch`. */
  fetch?: FetchLike;
}

/** What {@link logout} resolves to. */
export interface LogoutResult {
  /** Always `true`: after a resolved `logout()` the browser holds no live Tessera session. */
  loggedOut: true;
  /** `true` when Tessera answered 401: there was no session to end (already logged out). */
  alreadyLoggedOut: boolean;
}

/**
 * Logs the browser's Tessera session out everywhere, by XHR (`POST <issuer>/v1/logout`),
 * from a page whose origin is registered in the app's `allowed_origins`.
 *
 * The request carries the session cookie (`credentials: 'include'`) and the
 * `X-Tessera-CSRF: 1` header, or the one-time `logoutToken` when given. It resolves on
 * 204 (the session ended) and also on 401 (there was no session: already logged out is
 * the outcome the user asked for). Anything else throws a {@link TesseraBrowserError}
 * with the server's stable code: `ORIGIN_NOT_ALLOWED`, `CSRF_FAILED`,
 * `LOGOUT_TOKEN_INVALID` (403), `RATE_LIMITED` (429), …, or `NETWORK_ERROR` when no
 * response arrived. In a real browser a page whose origin is not registered gets
 * `NETWORK_ERROR`: Tessera answers its CORS preflight without `Access-Control-Allow-*`
 * headers, so the browser never lets the page see the 403.
 *
 * End your app's own session (cookie, in-memory access token) as well; this call ends the
 * Tessera session, and Tessera tells the other apps that joined it.
 *
 * @example
 * ```ts
 * import { logout } from '@tessera/browser';
 *
 * logoutButton.addEventListener('click', async () => {
 *   await logout({ issuer: 'https://auth.example.com' });
 *   location.assign('/');
 * });
 * ```
 *
 * @example With a logout token fetched earlier from `GET /v1/logout/browser`
 * ```ts
 * const { logout_token } = await (await fetch(`${issuer}/v1/logout/browser`, { credentials: 'include' })).json();
 * await logout({ issuer, logoutToken: logout_token });
 * ```
 */
export async function logout(options: LogoutOptions): Promise<LogoutResult> {
  if (typeof options?.issuer !== 'string' || options.issuer === '') throw new TypeError('logout(): options.issuer must be the Tessera base URL');
  if (options.logoutToken !== undefined && typeof options.logoutToken !== 'string') throw new TypeError('logout(): options.logoutToken must be a string');
  // Kept in a local so it is never called as a method of `options` (see globalFetch).
  const doFetch = options.fetch ?? globalFetch;
  const url = `${options.issuer.replace(/\/+$/, '')}/v1/logout`;
  const init: RequestInit = options.logoutToken === undefined
    // The custom header forces a CORS preflight, which Tessera passes only for registered
    // origins: a cross-site form or image cannot send it (CSRF protection).
    ? { method: 'POST', credentials: 'include', headers: { 'X-Tessera-CSRF': '1' } }
    // The cookie still goes along so Tessera can clear it when it belongs to the ended session.
    : { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ logout_token: options.logoutToken }) };

  let response: Response;
  try {
    response = await doFetch(url, init);
  } catch (cause) {
    throw new TesseraBrowserError('NETWORK_ERROR', `Could not reach Tessera at ${url}.`, null, { cause });
  }
  // Exactly 204 and 401, not any 2xx: a wrong issuer URL that serves a page with 200 (an SPA
  // fallback, a captive portal) must not be mistaken for a logout that happened.
  if (response.status === 204 || response.status === 401) {
    void response.body?.cancel().catch(() => undefined);
    return { loggedOut: true, alreadyLoggedOut: response.status === 401 };
  }
  throw await readResponseError(response);
}
