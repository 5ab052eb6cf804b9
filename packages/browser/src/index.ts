/**
 * `@tessera/browser`: a tiny, dependency-free helper for web pages that use Tessera.
 *
 * - {@link logout}: the XHR logout, where "already logged out" (401) counts as success.
 * - {@link createAuthFetch}: a fetch wrapper that adds the access token and refreshes once on 401.
 *
 * @example
 * ```ts
 * import { createAuthFetch, logout, TesseraBrowserError } from '@tessera/browser';
 * ```
 */
export { logout, type LogoutOptions, type LogoutResult } from './logout.js';
export { createAuthFetch, type AuthFetch, type AuthFetchOptions } from './auth-fetch.js';
export { TesseraBrowserError } from './errors.js';
export type { FetchLike } from './fetch-like.js';
