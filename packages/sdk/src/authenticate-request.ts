import { TesseraSdkError } from './errors.js';
import type { TesseraSession } from './session.js';

/**
 * Request headers as a framework has them: Node's `IncomingHttpHeaders` (lower-case keys) or
 * a Fetch API `Headers` object (Hono, other Fetch-based runtimes).
 *
 * @example
 * ```ts
 * const headers: HeaderSource = request.headers; // or new Headers(…)
 * ```
 */
export type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

/**
 * The framework-neutral input of {@link Tessera.authenticateRequest}.
 *
 * @example
 * ```ts
 * const result = await tessera.authenticateRequest({ headers: req.headers }, { cookie: 'app_at' });
 * ```
 */
export interface AuthenticateRequestInput {
  headers: HeaderSource;
}

/**
 * Options shared by every middleware and {@link Tessera.authenticateRequest}.
 *
 * @example
 * ```ts
 * app.use(authenticate(tessera, { cookie: 'app_at', strict: true }));
 * ```
 */
export interface AuthenticateOptions {
  /**
   * Also read the access token from this cookie when there is no `Authorization: Bearer`
   * header (the header wins when both are present).
   */
  cookie?: string;
  /**
   * Also ask Tessera (`POST /v1/introspect`) on every request, microcached for `cacheMs`
   * (default 1000). Revocation then shows within that bound even without the feed, at the
   * price of a network call per token per `cacheMs`.
   */
  strict?: boolean | { cacheMs?: number };
}

/**
 * The outcome of authenticating one request: the verified session, or the answer to send.
 * `body` is Tessera's error envelope; `headers` carries `WWW-Authenticate` (RFC 6750) and
 * `Cache-Control: no-store`.
 *
 * @example
 * ```ts
 * const result = await tessera.authenticateRequest({ headers: req.headers });
 * if (!result.ok) return res.writeHead(result.status, result.headers).end(JSON.stringify(result.body));
 * ```
 */
export type AuthenticateResult =
  | { ok: true; session: TesseraSession }
  | { ok: false; status: number; body: { error: string; message: string }; headers: Record<string, string>; error: TesseraSdkError };

function headerOf(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[0] : value;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

/**
 * Reads the access token of a request: `Authorization: Bearer <token>` first, then the
 * cookie named `cookie` if given. Returns null when neither is present.
 *
 * @example
 * ```ts
 * readAccessToken(req.headers, 'app_at'); // 'eyJhbGciOi…' or null
 * ```
 */
export function readAccessToken(headers: HeaderSource, cookie?: string): string | null {
  const authorization = headerOf(headers, 'authorization');
  if (authorization !== undefined && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ') {
    const token = authorization.slice(7).trim();
    if (token !== '') return token;
  }
  if (cookie) {
    const value = readCookie(headerOf(headers, 'cookie'), cookie);
    if (value) return value;
  }
  return null;
}

/** Turns a failure into the answer a middleware sends (never echoing the token). */
export function toFailure(error: TesseraSdkError): Extract<AuthenticateResult, { ok: false }> {
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (error.status === 401) {
    // RFC 6750 §3.1: no error attribute when the request carried no token at all.
    headers['www-authenticate'] = error.code === 'TOKEN_MISSING' ? 'Bearer' : `Bearer error="invalid_token", error_description="${error.code}"`;
  }
  return { ok: false, status: error.status, body: { error: error.code, message: error.message }, headers, error };
}

/** What the neutral authenticator needs of a Tessera client. */
export interface AuthenticatorDeps {
  verify(token: string): Promise<TesseraSession>;
  isActive(token: string, cacheMs: number): Promise<boolean>;
  defaultStrictCacheMs: number;
}

/**
 * The framework-neutral core every adapter calls: read the token, verify it, optionally
 * introspect, and say what to answer. Expected failures become a result; only programming
 * errors throw.
 */
export async function authenticateWith(deps: AuthenticatorDeps, input: AuthenticateRequestInput, options: AuthenticateOptions = {}): Promise<AuthenticateResult> {
  const token = readAccessToken(input.headers, options.cookie);
  if (token === null) return toFailure(new TesseraSdkError('TOKEN_MISSING'));
  try {
    const session = await deps.verify(token);
    if (options.strict) {
      const cacheMs = typeof options.strict === 'object' && options.strict.cacheMs !== undefined ? options.strict.cacheMs : deps.defaultStrictCacheMs;
      if (!(await deps.isActive(token, cacheMs))) return toFailure(new TesseraSdkError('TOKEN_REVOKED'));
    }
    return { ok: true, session };
  } catch (error) {
    if (error instanceof TesseraSdkError) return toFailure(error);
    throw error;
  }
}

/**
 * The synchronous form of {@link authenticateWith}: the answer when `verifyNow` already knows
 * it (see `Tessera.authenticateRequestNow`), else undefined. `strict` always needs the
 * network, so it never answers here.
 */
export function authenticateNowWith(
  verifyNow: (token: string) => TesseraSession | TesseraSdkError | undefined,
  input: AuthenticateRequestInput,
  options: AuthenticateOptions = {},
): AuthenticateResult | undefined {
  if (options.strict) return undefined;
  const token = readAccessToken(input.headers, options.cookie);
  if (token === null) return toFailure(new TesseraSdkError('TOKEN_MISSING'));
  const verdict = verifyNow(token);
  if (verdict === undefined) return undefined;
  return verdict instanceof TesseraSdkError ? toFailure(verdict) : { ok: true, session: verdict };
}
