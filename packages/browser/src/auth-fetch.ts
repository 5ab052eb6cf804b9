import { globalFetch, type FetchLike } from './fetch-like.js';

type MaybePromise<T> = T | Promise<T>;

/** Options of {@link createAuthFetch}. */
export interface AuthFetchOptions {
  /**
   * Gets a new access token, e.g. by calling your own backend, which holds the refresh
   * token and uses the Tessera SDK's `refresh()`. Resolve with the new access token, or with
   * `null` when the session cannot be refreshed (logged out); a rejection counts as `null`.
   * It must not go through the wrapped fetch itself (it would wait for its own refresh).
   */
  refresh: () => Promise<string | null | undefined>;
  /** The current access token, or `null`/`undefined` when there is none yet. */
  getAccessToken: () => MaybePromise<string | null | undefined>;
  /**
   * Stores a token that `refresh()` returned, so `getAccessToken()` returns it from now on.
   * Leave it out when `refresh()` stores the token itself.
   */
  setAccessToken?: (token: string) => MaybePromise<void>;
  /** The fetch to wrap; defaults to the global `fetch`. */
  fetch?: FetchLike;
}

/** The wrapped fetch returned by {@link createAuthFetch}: same signature as `fetch`. */
export type AuthFetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

const isRequest = (value: unknown): value is Request => typeof Request !== 'undefined' && value instanceof Request;

// A ReadableStream body is consumed by the first send and cannot be sent again.
const isStream = (body: unknown): boolean => typeof ReadableStream !== 'undefined' && body instanceof ReadableStream;

/**
 * Wraps `fetch` for calls to your own API: each request carries
 * `Authorization: Bearer <access token>`, and when one comes back 401 the wrapper calls
 * `refresh()` and sends the request again, once, with the new token.
 *
 * - Concurrent 401s share one refresh: ten requests that fail together cause one
 *   `refresh()` call. A request that fails after another one already refreshed is resent
 *   with the newer token without refreshing again.
 * - At most one retry per request: a second 401 is returned as is, so a refresh that yields
 *   a token the API still rejects cannot loop.
 * - When `refresh()` rejects or resolves `null`, the original 401 response is returned
 *   (its body unread), so the app handles it as it would any 401 (e.g. show the login).
 * - Requests whose body is a `ReadableStream` cannot be replayed and are not retried (nor
 *   refreshed for): their 401 is returned. A `Request` object is cloned before it is sent,
 *   so it can be sent again.
 *
 * The page never sees a refresh token: `refresh()` asks your backend, which keeps it
 * (e.g. in an HttpOnly cookie). Use the wrapper only for your API's URLs: it sends the
 * access token to whatever URL it is given.
 *
 * @example
 * ```ts
 * import { createAuthFetch } from '@tessera/browser';
 *
 * let accessToken: string | null = null;
 * const api = createAuthFetch({
 *   getAccessToken: () => accessToken,
 *   setAccessToken: (token) => { accessToken = token; },
 *   // Your backend reads its HttpOnly refresh cookie and calls the SDK's refresh().
 *   refresh: async () => {
 *     const response = await fetch('/auth/refresh', { method: 'POST', credentials: 'same-origin' });
 *     return response.ok ? (await response.json()).access_token : null;
 *   },
 * });
 *
 * const response = await api('/api/orders');
 * if (response.status === 401) location.assign('/login');
 * ```
 */
export function createAuthFetch(options: AuthFetchOptions): AuthFetch {
  if (typeof options?.refresh !== 'function') throw new TypeError('createAuthFetch(): options.refresh must be a function');
  if (typeof options.getAccessToken !== 'function') throw new TypeError('createAuthFetch(): options.getAccessToken must be a function');
  if (options.setAccessToken !== undefined && typeof options.setAccessToken !== 'function') throw new TypeError('createAuthFetch(): options.setAccessToken must be a function');
  const { refresh, getAccessToken, setAccessToken } = options;
  // Kept in a local so it is never called as a method of `options` (see globalFetch).
  const doFetch = options.fetch ?? globalFetch;
  let refreshing: Promise<string | null> | null = null;

  async function currentToken(): Promise<string | null> {
    return (await getAccessToken()) || null;
  }

  async function runRefresh(): Promise<string | null> {
    try {
      const token = await refresh();
      if (typeof token !== 'string' || token === '') return null;
      await setAccessToken?.(token);
      return token;
    } catch {
      // The caller gets the original 401, which is what a failed refresh means to it.
      return null;
    }
  }

  /** Starts a refresh, or joins the one in flight. */
  function refreshOnce(): Promise<string | null> {
    // Cleared in a `then`, which always runs after this assignment, even when refresh()
    // settles synchronously; the next 401 after this one settles may refresh again.
    refreshing ??= runRefresh().then((token) => {
      refreshing = null;
      return token;
    });
    return refreshing;
  }

  /** The token to retry with after a 401 to a request sent with `used`, or `null`. */
  async function tokenAfter401(used: string | null): Promise<string | null> {
    if (refreshing) return refreshing;
    const current = await currentToken();
    // Another request refreshed while this one was in flight: its token is already newer.
    if (current !== null && current !== used) return current;
    return refreshOnce();
  }

  function send(input: RequestInfo | URL, init: RequestInit | undefined, token: string | null): Promise<Response> {
    // Headers given in `init` replace a Request's own headers (as in fetch itself).
    const headers = new Headers(init?.headers ?? (isRequest(input) ? input.headers : undefined));
    if (token !== null) headers.set('Authorization', `Bearer ${token}`);
    return doFetch(input, { ...init, headers });
  }

  return async function authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const replayable = init?.body === undefined || !isStream(init.body);
    // The first send consumes a Request's body; the clone is what a retry sends.
    const spare = replayable && isRequest(input) && init?.body === undefined ? input.clone() : null;
    const used = await currentToken();
    const first = await send(input, init, used);
    if (first.status !== 401 || !replayable) return first;
    const fresh = await tokenAfter401(used);
    if (fresh === null) return first;
    // The first response is dropped: release its connection instead of leaving it unread.
    void first.body?.cancel().catch(() => undefined);
    return send(spare ?? input, init, fresh);
  };
}
