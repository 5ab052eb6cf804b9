import type { FetchLike } from './internal/api-client.js';
import { DEFAULT_MAX_TOKEN_BYTES } from './internal/verify-jwt.js';

/**
 * Where the SDK writes what an operator should know (feed down, odd feed entries). Console
 * fits, and so does a pino or winston logger. Nothing is logged when it is absent.
 *
 * @example
 * ```ts
 * createTessera({ ...credentials, logger: console });
 * ```
 */
export interface TesseraLogger {
  warn(message: string, details?: Record<string, unknown>): void;
  info?(message: string, details?: Record<string, unknown>): void;
  debug?(message: string, details?: Record<string, unknown>): void;
}

/**
 * What `verify` does while the revocation feed has been unreachable for longer than
 * `maxStalenessMs` (or before it ever caught up): `'fail-closed'` rejects with
 * `FEED_UNAVAILABLE`; `'introspect'` asks Tessera about each token (`POST /v1/introspect`,
 * microcached for `introspectCacheMs`).
 *
 * @example
 * ```ts
 * const policy: UnavailableFeedPolicy = 'introspect';
 * createTessera({ ...credentials, feed: { onUnavailable: policy } });
 * ```
 */
export type UnavailableFeedPolicy = 'fail-closed' | 'introspect';

/**
 * Options of the revocation feed follower.
 *
 * @example
 * ```ts
 * createTessera({ ...credentials, feed: { maxStalenessMs: 10_000, onUnavailable: 'introspect' } });
 * ```
 */
export interface FeedOptions {
  /** Follow the feed (default true). Off: `verify` never learns of revocations before `exp`. */
  enabled?: boolean;
  /** First reconnect delay, and the floor of every later one (default 250 ms). */
  reconnectMinMs?: number;
  /** Ceiling of the exponential reconnect delay (default 30 s). */
  reconnectMaxMs?: number;
  /** No bytes (events or the server's 15 s heartbeats) for this long: reconnect (default 45 s). */
  heartbeatTimeoutMs?: number;
  /** How long `verify` keeps trusting the set after the feed was last heard from (default 30 s). */
  maxStalenessMs?: number;
  /** How long `verify` waits for the first catch-up when it starts the feed itself (default 5 s). */
  startupWaitMs?: number;
  /** See {@link UnavailableFeedPolicy} (default `'fail-closed'`). */
  onUnavailable?: UnavailableFeedPolicy;
  /** Microcache of introspection answers, for the `'introspect'` policy and strict mode (default 1 s). */
  introspectCacheMs?: number;
  /** Page size of the initial catch-up (default 1000, the server's maximum). */
  pageSize?: number;
}

/**
 * Options of {@link createTessera}.
 *
 * @example
 * ```ts
 * const tessera = createTessera({
 *   issuer: 'https://auth.example.com',
 *   clientId: process.env.TESSERA_CLIENT_ID!,
 *   clientSecret: process.env.TESSERA_CLIENT_SECRET!,
 * });
 * ```
 */
export interface TesseraOptions {
  /** Tessera's public base URL: the `iss` of its tokens. */
  issuer: string;
  /** This app's client id: the `aud` its access tokens must carry. */
  clientId: string;
  clientSecret: string;
  /** Where to reach the API when it differs from `issuer` (e.g. an internal address). */
  url?: string;
  /** The key set URL (default `<url>/.well-known/jwks.json`). */
  jwksUri?: string;
  /** A fetch implementation (default: the global `fetch`). */
  fetch?: FetchLike;
  /** Leeway for `exp`/`nbf`, for clock drift between hosts (default 5 s). */
  clockToleranceSeconds?: number;
  /** Tokens longer than this are rejected before any parsing (default 8192). */
  maxTokenBytes?: number;
  /** Timeout of each API call and key set fetch (default 5 s). */
  requestTimeoutMs?: number;
  /** Verified-token cache (default 10,000 entries; each also drops at its token's `exp`). */
  cache?: { maxEntries?: number };
  /** Key set caching: refetch at most this often when a token names an unknown `kid` (default 5 s). */
  jwks?: { cooldownMs?: number; maxAgeMs?: number };
  feed?: FeedOptions;
  logger?: TesseraLogger;
  /** The clock, epoch ms (default `Date.now`); tests pass a fake one. */
  now?: () => number;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  url: string;
  jwksUri: string;
  fetch: FetchLike;
  clockToleranceSeconds: number;
  maxTokenBytes: number;
  requestTimeoutMs: number;
  cacheMaxEntries: number;
  jwksCooldownMs: number;
  jwksMaxAgeMs: number;
  feed: Required<FeedOptions>;
  logger: TesseraLogger | null;
  now: () => number;
}

function requireString(options: object, key: string): string {
  const value = (options as Record<string, unknown>)[key];
  if (typeof value !== 'string' || value === '') throw new TypeError(`createTessera: ${key} must be a non-empty string`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`createTessera: ${name} must be a non-negative number`);
  return value;
}

function httpUrl(value: string, name: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new TypeError(`createTessera: ${name} must be an absolute URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError(`createTessera: ${name} must be an http(s) URL`);
  return value.replace(/\/+$/, '');
}

/** Validates the options (misuse throws `TypeError`) and fills in the defaults. */
export function resolveOptions(options: TesseraOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('createTessera: options are required');
  // Tessera's issuer never ends with '/'; stripping it here avoids a confusing iss mismatch.
  const issuer = httpUrl(requireString(options, 'issuer'), 'issuer');
  const url = options.url === undefined ? issuer : httpUrl(options.url, 'url');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw new TypeError('createTessera: no fetch available; pass options.fetch');
  const feed = options.feed ?? {};
  if (feed.onUnavailable !== undefined && feed.onUnavailable !== 'fail-closed' && feed.onUnavailable !== 'introspect') {
    throw new TypeError("createTessera: feed.onUnavailable must be 'fail-closed' or 'introspect'");
  }
  const reconnectMinMs = nonNegative(feed.reconnectMinMs, 250, 'feed.reconnectMinMs');
  return {
    issuer,
    clientId: requireString(options, 'clientId'),
    clientSecret: requireString(options, 'clientSecret'),
    url,
    jwksUri: options.jwksUri === undefined ? `${url}/.well-known/jwks.json` : httpUrl(options.jwksUri, 'jwksUri'),
    fetch: fetchImpl,
    clockToleranceSeconds: nonNegative(options.clockToleranceSeconds, 5, 'clockToleranceSeconds'),
    maxTokenBytes: nonNegative(options.maxTokenBytes, DEFAULT_MAX_TOKEN_BYTES, 'maxTokenBytes'),
    requestTimeoutMs: nonNegative(options.requestTimeoutMs, 5000, 'requestTimeoutMs'),
    cacheMaxEntries: Math.floor(nonNegative(options.cache?.maxEntries, 10_000, 'cache.maxEntries')),
    jwksCooldownMs: nonNegative(options.jwks?.cooldownMs, 5000, 'jwks.cooldownMs'),
    jwksMaxAgeMs: nonNegative(options.jwks?.maxAgeMs, 10 * 60_000, 'jwks.maxAgeMs'),
    feed: {
      enabled: feed.enabled ?? true,
      reconnectMinMs,
      reconnectMaxMs: Math.max(reconnectMinMs, nonNegative(feed.reconnectMaxMs, 30_000, 'feed.reconnectMaxMs')),
      heartbeatTimeoutMs: nonNegative(feed.heartbeatTimeoutMs, 45_000, 'feed.heartbeatTimeoutMs'),
      maxStalenessMs: nonNegative(feed.maxStalenessMs, 30_000, 'feed.maxStalenessMs'),
      startupWaitMs: nonNegative(feed.startupWaitMs, 5000, 'feed.startupWaitMs'),
      onUnavailable: feed.onUnavailable ?? 'fail-closed',
      introspectCacheMs: nonNegative(feed.introspectCacheMs, 1000, 'feed.introspectCacheMs'),
      pageSize: Math.min(1000, Math.max(1, Math.floor(nonNegative(feed.pageSize, 1000, 'feed.pageSize')))),
    },
    logger: options.logger ?? null,
    now: options.now ?? Date.now,
  };
}
