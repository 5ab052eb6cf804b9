/**
 * The `fetch` signature the helpers call. Pass your own to add headers, instrument calls or
 * run outside a browser; by default the page's global `fetch` is used.
 *
 * @example
 * ```ts
 * const traced: FetchLike = (input, init) => {
 *   console.debug('tessera', init?.method ?? 'GET', String(input));
 *   return fetch(input, init);
 * };
 * await logout({ issuer: 'https://auth.example.com', fetch: traced });
 * ```
 */
export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/**
 * The global `fetch`, looked up at call time (so polyfills and test doubles installed later
 * are seen) and always called as a plain function: browsers throw "Illegal invocation" when
 * `fetch` is called as a method of another object, e.g. `options.fetch(…)`.
 */
export const globalFetch: FetchLike = (input, init) => globalThis.fetch(input, init);
