/**
 * The one redaction list of Tessera's logs. Every logger the server builds — the request
 * serializer, the error serializer and the message hook of {@link createLoggerOptions} —
 * redacts the values of these query parameters wherever they appear, so that no credential
 * a client puts in a URL (by design, like a logout URL, or by mistake) reaches a log line.
 * Header and body values are never logged at all (see createLoggerOptions).
 */
export const SECRET_QUERY_PARAMS: readonly string[] = Object.freeze([
  // Tessera's own: session and logout tokens, client secrets.
  'token',
  'session_token',
  'logout_token',
  'client_secret',
  // OAuth 2.0 / OpenID Connect: bearer and refresh tokens, ID tokens, authorization codes
  // and their PKCE verifiers, JWT client assertions; an ID token sent back as
  // end_session's id_token_hint is as much a credential as the ID token itself.
  'access_token',
  'refresh_token',
  'id_token',
  'id_token_hint',
  'code',
  'code_verifier',
  'client_assertion',
  // Anything a form might have put in a URL.
  'password',
]);

const SECRET = new Set(SECRET_QUERY_PARAMS);
const REDACTED = '[redacted]';

function decodedName(raw: string): string {
  try {
    // A name may be percent-encoded (`acc%65ss_token`) or use `+`: the server decodes it so.
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

/**
 * The request URL with the value of every secret query parameter replaced by `[redacted]`.
 * Names are compared after percent-decoding and case-insensitively, so an encoded or
 * upper-cased name cannot slip a value past the list.
 *
 * @example
 * ```ts
 * redactUrl('/v1/logout?token=abc&return_to=x'); // '/v1/logout?token=[redacted]&return_to=x'
 * ```
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  const query = hash < 0 ? url.slice(q + 1) : url.slice(q + 1, hash);
  // `;` too: Fastify splits on `&` only, but other readers of the URL (proxies, old CGI
  // conventions) take `;` as a separator, so a value behind it is redacted as well.
  const redacted = query.split(/([&;])/).map((pair, i) => {
    if (i % 2 === 1) return pair;
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    return SECRET.has(decodedName(name)) && eq >= 0 ? `${name}=${REDACTED}` : pair;
  });
  return `${url.slice(0, q + 1)}${redacted.join('')}${hash < 0 ? '' : url.slice(hash)}`;
}

// `name=value` pairs inside free text (an error message quoting a URL or a form body).
const IN_TEXT = new RegExp(`((?:^|[?&\\s"'(;,])(?:${SECRET_QUERY_PARAMS.join('|')})=)[^&\\s"'),;]*`, 'gi');

/**
 * Free text (a log message, an error's message or stack) with secret `name=value` pairs
 * redacted, for messages that quote a URL.
 *
 * @example
 * ```ts
 * redactText('GET https://x/cb?code=abc failed'); // 'GET https://x/cb?code=[redacted] failed'
 * ```
 */
export function redactText(text: string): string {
  return text.replace(IN_TEXT, `$1${REDACTED}`);
}

/** A log call argument with secret values redacted: strings, and the string fields of a plain object (one level). */
function redactArg(arg: unknown): unknown {
  if (typeof arg === 'string') return redactText(arg);
  if (arg === null || typeof arg !== 'object' || Array.isArray(arg) || Object.getPrototypeOf(arg) !== Object.prototype) return arg;
  let copy: Record<string, unknown> | null = null;
  for (const [key, value] of Object.entries(arg)) {
    if (typeof value !== 'string') continue;
    const clean = redactText(value);
    if (clean === value) continue;
    copy ??= { ...(arg as Record<string, unknown>) };
    copy[key] = clean;
  }
  return copy ?? arg;
}

/** The log level names of the configuration. */
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

interface SerializedError {
  type: string;
  message: string;
  stack: string;
  [key: string]: unknown;
}

/**
 * The logger options of a Tessera node: the level, and serializers and a message hook that
 * apply {@link SECRET_QUERY_PARAMS} everywhere. A request is logged as its method, its URL
 * with secret query values redacted, and the client IP — never headers (cookies,
 * Authorization) and never bodies, which carry tokens, secrets and passwords. Errors are
 * logged with their messages and stacks redacted. Used by `startServer`; pass it (with a
 * stream) to `buildServer` to get the same redaction.
 *
 * @example
 * ```ts
 * const { app } = await buildServer({ config, store, logger: { ...createLoggerOptions('info'), stream } });
 * ```
 */
export function createLoggerOptions(level: Level) {
  return {
    level,
    serializers: {
      // The default request serializer would log the full URL: logout URLs carry tokens.
      req: (req: { method: string; url: string; ip?: string }) => ({ method: req.method, url: redactUrl(req.url), ip: req.ip }),
      err: (err: Error): SerializedError => {
        const fields = err as unknown as Record<string, unknown>;
        const out: SerializedError = { type: err?.constructor?.name ?? 'Error', message: redactText(String(err?.message ?? '')), stack: redactText(String(err?.stack ?? '')) };
        for (const key of ['code', 'statusCode', 'status']) if (typeof fields?.[key] === 'string' || typeof fields?.[key] === 'number') out[key] = fields[key];
        return out;
      },
    },
    hooks: {
      // Messages logged by Tessera's own code (and plugins) may quote a URL.
      // Messages logged by Tessera's own code (and plugins) may quote a URL, and so may the
      // string fields of the object logged with them (a delivery error, say).
      logMethod(this: unknown, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map(redactArg));
      },
    },
  };
}
