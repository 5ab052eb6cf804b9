import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { revocationMattersMs } from './lifetimes.js';

const Seconds = (def: number, description: string) => Type.Integer({ minimum: 1, default: def, description });
const Nullable = <T extends Type.TSchema>(t: T, description: string) =>
  Type.Union([t, Type.Null()], { default: null, description });

// A JWT claim name as the session-sharing plugin reads it: a plain property name.
const CLAIM_PATTERN = '^[A-Za-z_$][A-Za-z0-9_$:.-]{0,63}$';
const ClaimName = (def: string, description: string) => Type.String({ pattern: CLAIM_PATTERN, default: def, description });

/**
 * The one configuration schema of Tessera: validation, defaults and the source of
 * docs/configuration.md. Loaded once at boot by {@link loadConfig}, then frozen and passed
 * down; nothing reads `process.env` after that.
 */
export const ConfigSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 4000, description: 'TCP port to listen on (0 = any free port).' }),
    host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Interface to bind.' }),
    issuer: Nullable(Type.String({ pattern: '^https?://[^/?#]+(/[^?#]*)?$' }), 'Public base URL of Tessera (no query). Defaults to http://<host>:<port>.'),
    dataDir: Type.String({ minLength: 1, default: './data', description: 'Directory holding the SQLite database (tessera.db).' }),
    databaseUrl: Nullable(Type.String({ pattern: '^postgres(ql)?://' }), 'postgres:// URL; switches the store to PostgreSQL.'),
    databasePoolSize: Type.Integer({ minimum: 1, maximum: 200, default: 10, description: 'PostgreSQL connections this node keeps open at most (every node has its own pool; the database server must allow the sum of them, plus the CLI\'s).' }),
    redisUrl: Nullable(Type.String({ pattern: '^rediss?://' }), 'redis:// URL (used by multi-node deployments).'),
    adminToken: Nullable(Type.String({ minLength: 32, maxLength: 256 }), 'Bootstrap admin bearer token (at least 32 characters).'),
    logLevel: Type.Union(
      [Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('silent')],
      { default: 'info', description: 'Log level.' },
    ),
    trustProxy: Type.Boolean({ default: false, description: 'Trust X-Forwarded-* headers (only behind your own proxy).' }),
    bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 10_485_760, default: 65_536, description: 'Largest accepted request body.' }),
    allowedReturnUrls: Type.Array(Type.String({ pattern: '^https?://' }), {
      default: [],
      description: 'Return URLs allowed in addition to every registered app’s return_urls (exact match).',
    }),
    cookie: Type.Object(
      {
        name: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'tessera_session', description: 'Session cookie name.' }),
        domain: Nullable(Type.String({ pattern: '^\\.?[A-Za-z0-9.-]+$' }), 'Cookie Domain (parent domain for sharing across subdomains).'),
        secure: Type.Boolean({ default: true, description: 'Secure cookies; false only for local http.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    sharedCookie: Type.Object(
      {
        enabled: Type.Boolean({ default: false, description: 'Also set a parent-domain JWT cookie for apps that read a shared session cookie (nodebb-plugin-session-sharing); set at login, cleared on every logout that reaches the browser.' }),
        name: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'token', description: 'Shared cookie name (the plugin\'s "cookie name" setting; its default is `token`).' }),
        domain: Nullable(Type.String({ pattern: '^\\.?[A-Za-z0-9.-]+$' }), 'Shared cookie Domain, the parent domain of the apps (e.g. `.example.com`); default: cookie.domain.'),
        secret: Nullable(Type.String({ minLength: 32, maxLength: 512 }), 'HS256 key the JWT is signed with (at least 32 characters); the same secret goes into the plugin\'s settings. Required when enabled.'),
        claims: Type.Object(
          {
            id: ClaimName('id', 'Claim holding the Tessera user id (the plugin\'s payload:id).'),
            username: ClaimName('username', 'Claim holding the username.'),
            email: ClaimName('email', 'Claim holding the email (omitted when the user has none).'),
            firstName: ClaimName('firstName', 'Claim holding the first name (omitted when unset).'),
            lastName: ClaimName('lastName', 'Claim holding the last name (omitted when unset).'),
            picture: ClaimName('picture', 'Claim holding the picture URL (omitted when unset).'),
          },
          { default: {}, additionalProperties: false },
        ),
        parentKey: Nullable(Type.String({ pattern: CLAIM_PATTERN }), 'Nest the user claims under this key (the plugin\'s "parent key" setting); sid, iat and exp stay at the top.'),
        clientId: Nullable(Type.String({ minLength: 1, maxLength: 128 }), 'Client id of the app that reads the shared cookie (e.g. the forum, with nodebb-plugin-tessera): recorded as joined in every session the cookie is issued for, so that the session\'s back-channel logout reaches it.'),
      },
      { default: {}, additionalProperties: false },
    ),
    session: Type.Object(
      {
        idleTimeoutSeconds: Seconds(14 * 86_400, 'A session unused for this long ends (reason expired).'),
        absoluteLifetimeSeconds: Seconds(30 * 86_400, 'A session ends this long after login, used or not.'),
        touchIntervalSeconds: Type.Integer({ minimum: 0, default: 60, description: 'Write last-seen at most this often per session.' }),
        cacheSeconds: Type.Integer({ minimum: 0, maximum: 300, default: 30, description: 'Keep authenticated sessions in memory this long for whoami (0 = off). Used only with a store that reports foreign commits (SQLite); every end made by this process drops its entries at once.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    logout: Type.Object(
      {
        tokenTtlSeconds: Seconds(3_600, 'Lifetime of a browser logout token.'),
        defaultReturnUrl: Nullable(Type.String({ pattern: '^https?://' }), 'Where the browser goes after logout without return_to (default: the login page).'),
      },
      { default: {}, additionalProperties: false },
    ),
    oidc: Type.Object(
      {
        codeTtlSeconds: Type.Integer({ minimum: 10, maximum: 600, default: 60, description: 'Lifetime of an OIDC authorization code (one use). RFC 6749 recommends at most 10 minutes; a client redeems it within seconds.' }),
        idTokenTtlSeconds: Type.Integer({ minimum: 60, maximum: 86_400, default: 300, description: 'Lifetime of an ID token.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    rateLimit: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Limit FAILED attempts (sign-ins, logouts, admin tokens, client secrets) per address, account and client id; successes are never counted nor refused. Counts are kept per node, in memory.' }),
        loginMax: Type.Integer({ minimum: 1, default: 30, description: 'Failed sign-ins (POST /login, wrong current password on POST /v1/password) per client address per window; past it that address\'s sign-ins get 429 before the password is checked.' }),
        loginAccountMax: Type.Integer({ minimum: 1, default: 10, description: 'Failed sign-ins per account name (username or email as typed, case-folded) per window, from any address; past it that account\'s sign-ins get 429 until the window ends.' }),
        logoutMax: Type.Integer({ minimum: 1, default: 60, description: 'Failed logouts (unknown or malformed session token, wrong logout token, failed CSRF or origin check) per client address per window; past it further failures get 429. A logout with a valid session, session token or logout token is never refused.' }),
        credentialMax: Type.Integer({ minimum: 1, default: 30, description: 'Wrong admin tokens and client secrets per client address per window; past it further failures get 429. A right token or secret is never refused.' }),
        clientMax: Type.Integer({ minimum: 1, default: 30, description: 'Wrong client secrets per client id per window, from any address; past it further failures get 429. The right secret is never refused.' }),
        windowSeconds: Seconds(60, 'Window of every failure limit: a key\'s count starts with its first failure and is forgotten when the window ends.'),
      },
      { default: {}, additionalProperties: false },
    ),
    tokens: Type.Object(
      {
        accessTokenTtlSeconds: Type.Integer({ minimum: 10, maximum: 86_400, default: 300, description: 'Lifetime of access tokens (JWT).' }),
        algorithm: Type.Union([Type.Literal('EdDSA'), Type.Literal('ES256')], { default: 'EdDSA', description: 'Signing algorithm of new keys (Ed25519 or P-256).' }),
        keyRotationSeconds: Type.Integer({ minimum: 60, default: 7 * 86_400, description: 'A new signing key every this long; retired keys stay published until their tokens expired.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    feed: Type.Object(
      {
        heartbeatSeconds: Seconds(15, 'Heartbeat comment interval on the revocation stream.'),
        pollIntervalMs: Type.Integer({ minimum: 50, default: 1000, description: 'How often each node re-reads the revocation log for ends written elsewhere (CLI, other nodes).' }),
      },
      { default: {}, additionalProperties: false },
    ),
    outbox: Type.Object(
      {
        horizonSeconds: Type.Integer({ minimum: 60, default: 86_400, description: 'Keep retrying a logout delivery this long, then mark it dead.' }),
        timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 5_000, description: 'Timeout of one delivery attempt (no redirects are followed).' }),
        concurrencyPerApp: Type.Integer({ minimum: 1, maximum: 256, default: 8, description: 'Deliveries in flight to one app at once, per node.' }),
        maxInFlight: Type.Integer({ minimum: 1, maximum: 4096, default: 128, description: 'Deliveries in flight at once, per node.' }),
        leaseSeconds: Seconds(60, 'A claimed delivery is held this long; a crashed node\'s claims are taken again after it.'),
        backoffBaseMs: Type.Integer({ minimum: 10, default: 1_000, description: 'First retry delay; doubles per attempt (with jitter).' }),
        backoffMaxMs: Type.Integer({ minimum: 100, default: 600_000, description: 'Longest retry delay.' }),
        pollIntervalMs: Type.Integer({ minimum: 10, default: 1_000, description: 'How often a node looks for due deliveries (besides wake-ups after local commits).' }),
        enabled: Type.Boolean({ default: true, description: 'Run the delivery worker on this node.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    ssf: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Serve the Shared Signals (SSF 1.0) transmitter: /.well-known/ssf-configuration, stream management, push and poll delivery of CAEP and RISC events.' }),
        horizonSeconds: Type.Integer({ minimum: 60, default: 7 * 86_400, description: 'Keep an SSF event this long for its receiver (push: retried; poll: kept until acknowledged; paused stream: held), then mark it dead.' }),
        accessTokenTtlSeconds: Type.Integer({ minimum: 60, maximum: 86_400, default: 3_600, description: 'Lifetime of the client_credentials access tokens (scopes ssf.manage, ssf.read) of receiver clients.' }),
        minVerificationIntervalSeconds: Type.Integer({ minimum: 0, maximum: 86_400, default: 15, description: 'min_verification_interval of new streams: a verification request sooner than this after the last one gets 429.' }),
        maxStreamsPerClient: Type.Integer({ minimum: 1, maximum: 1_000, default: 10, description: 'Streams one receiver client may hold.' }),
        pollRedeliverSeconds: Type.Integer({ minimum: 1, maximum: 3_600, default: 30, description: 'A polled SET not acknowledged within this long is returned again by a later poll.' }),
        longPollSeconds: Type.Integer({ minimum: 1, maximum: 300, default: 30, description: 'How long a poll without returnImmediately waits for an event before answering with none.' }),
        pushConcurrency: Type.Integer({ minimum: 1, maximum: 1_024, default: 256, description: 'Push attempts in flight at once, per node.' }),
        upstreams: Type.Array(
          Type.Object(
            {
              name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' }),
              issuer: Type.String({ minLength: 1, maxLength: 512 }),
              jwksUri: Type.String({ pattern: '^https?://', maxLength: 2048 }),
              audience: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
              authorizationHeader: Type.Optional(Type.String({ minLength: 16, maxLength: 1024 })),
              issSubIsUserId: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          {
            default: [],
            maxItems: 32,
            description: 'Upstream SSF transmitters whose pushed session-revoked and credential-change events end sessions here (Tessera as an RFC 8935 receiver, at POST /ssf/receive/<name>). Each: `name` (the URL segment), `issuer` and `jwksUri` (the SETs\' iss and signing keys), `audience` (the aud expected; default <issuer>/ssf/receive/<name>), `authorizationHeader` (the exact Authorization header every push must carry; strongly advised), `issSubIsUserId` (an iss_sub subject\'s sub is a Tessera user id; default false: only email subjects, matched against verified emails, name users). File only. See docs/ssf.md.',
          },
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    sweeper: Type.Object(
      {
        intervalSeconds: Seconds(30, 'How often expired sessions are ended and written to the log.'),
        batchSize: Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: 'Sessions ended per sweep transaction.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    adminConsole: Type.Object(
      {
        sessionSeconds: Type.Integer({ minimum: 60, maximum: 86_400, default: 28_800, description: 'A sign-in to the admin console (/admin) lasts this long, then the admin token is asked for again.' }),
      },
      { default: {}, additionalProperties: false },
    ),
    retention: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Run the retention job on this node (deletes what the settings below let go; harmless on several nodes at once).' }),
        intervalSeconds: Seconds(3_600, 'How often the retention job runs.'),
        batchSize: Type.Integer({ minimum: 1, maximum: 10_000, default: 5_000, description: 'Rows deleted per statement; the job repeats until a table has nothing left to delete.' }),
        endedSessionsDays: Type.Integer({ minimum: 0, default: 35, description: 'Delete sessions this many days after they ended (their history in session lists and audits goes with them); 0 keeps them forever.' }),
        revocationLogDays: Type.Integer({ minimum: 0, default: 7, description: 'Delete revocation-log entries this many days after they were written (the oldest first, so the log stays gapless); 0 keeps them forever. Must outlive access tokens.' }),
        deliveredDays: Type.Integer({ minimum: 0, default: 7, description: 'Delete delivered logout deliveries and delivered (acknowledged) SSF events this many days after they were created; pending and dead ones are never deleted. 0 keeps them forever.' }),
        auditDays: Type.Integer({ minimum: 0, default: 0, description: 'Delete audit events this many days after they were written; 0 (the default) keeps them forever: how long to keep an audit trail is your policy.' }),
      },
      { default: {}, additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** The validated, frozen configuration (issuer always filled in). */
export type Config = Readonly<Omit<Static<typeof ConfigSchema>, 'issuer'> & { issuer: string }>;

/** An invalid configuration; `key` names the offending setting. */
export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`Invalid configuration ${key}: ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}

/** Environment variables and the config key each one sets. */
export const ENV_KEYS: Readonly<Record<string, string>> = {
  TESSERA_PORT: 'port',
  TESSERA_HOST: 'host',
  TESSERA_ISSUER: 'issuer',
  TESSERA_DATA_DIR: 'dataDir',
  TESSERA_DATABASE_URL: 'databaseUrl',
  TESSERA_DATABASE_POOL_SIZE: 'databasePoolSize',
  TESSERA_REDIS_URL: 'redisUrl',
  TESSERA_ADMIN_TOKEN: 'adminToken',
  TESSERA_LOG_LEVEL: 'logLevel',
  TESSERA_TRUST_PROXY: 'trustProxy',
  TESSERA_COOKIE_DOMAIN: 'cookie.domain',
  TESSERA_COOKIE_SECURE: 'cookie.secure',
  TESSERA_COOKIE_NAME: 'cookie.name',
  TESSERA_SHARED_COOKIE: 'sharedCookie.enabled',
  TESSERA_SHARED_COOKIE_NAME: 'sharedCookie.name',
  TESSERA_SHARED_COOKIE_DOMAIN: 'sharedCookie.domain',
  TESSERA_SHARED_COOKIE_SECRET: 'sharedCookie.secret',
  TESSERA_SHARED_COOKIE_CLIENT_ID: 'sharedCookie.clientId',
  TESSERA_SESSION_IDLE_TIMEOUT: 'session.idleTimeoutSeconds',
  TESSERA_SESSION_LIFETIME: 'session.absoluteLifetimeSeconds',
  TESSERA_RATE_LIMIT: 'rateLimit.enabled',
  TESSERA_ACCESS_TOKEN_TTL: 'tokens.accessTokenTtlSeconds',
  TESSERA_KEY_ROTATION: 'tokens.keyRotationSeconds',
};

type Json = Record<string, unknown>;

function setPath(target: Json, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    node = (node[part] = typeof next === 'object' && next !== null ? { ...(next as Json) } : {}) as Json;
  }
  node[parts[parts.length - 1]!] = value;
}

function keyName(instancePath: string): string {
  const path = instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
  const env = Object.entries(ENV_KEYS).find(([, key]) => key === path)?.[0];
  return env ? `${path} (${env})` : path || '(root)';
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Builds the configuration from a config file's object and the environment (environment
 * wins), validates it, fills defaults, and freezes it.
 *
 * @throws ConfigError naming the first bad key.
 * @example
 * ```ts
 * const config = loadConfig({ env: process.env, file: JSON.parse(text) });
 * ```
 */
export function loadConfig(sources: { env?: Record<string, string | undefined>; file?: unknown } = {}): Config {
  const file = sources.file ?? {};
  if (typeof file !== 'object' || file === null || Array.isArray(file)) {
    throw new ConfigError('(file)', 'the config file must hold a JSON object');
  }
  let raw: Json = structuredClone(file as Json);
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = sources.env?.[name];
    if (value !== undefined && value !== '') setPath(raw, key, value);
  }
  raw = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, raw)) as Json;
  const first = [...Value.Errors(ConfigSchema, raw)].find((e) => e.keyword !== 'boolean') ?? [...Value.Errors(ConfigSchema, raw)][0];
  if (first) {
    const extra = first.keyword === 'additionalProperties' ? ` (${JSON.stringify((first.params as { additionalProperties?: unknown }).additionalProperties)})` : '';
    throw new ConfigError(keyName(first.instancePath), `${first.message}${extra}`);
  }
  const parsed = raw as Static<typeof ConfigSchema>;
  const issuer = (parsed.issuer ?? `http://${parsed.host.includes(':') ? `[${parsed.host}]` : parsed.host}:${parsed.port}`).replace(/\/$/, '');
  if (!parsed.cookie.secure && !LOOPBACK.has(new URL(issuer).hostname)) {
    // Cookies without Secure travel in clear text over http; only acceptable on loopback.
    throw new ConfigError('cookie.secure (TESSERA_COOKIE_SECURE)', `false is only allowed when the issuer is a loopback http URL, not ${issuer}`);
  }
  checkSharedCookie(parsed);
  checkUpstreams(parsed);
  if (parsed.outbox.timeoutMs >= parsed.outbox.leaseSeconds * 1000) {
    // A lease that ends before its attempt can would let the same delivery be sent twice at once.
    throw new ConfigError('outbox.timeoutMs', `must be shorter than outbox.leaseSeconds (${parsed.outbox.leaseSeconds} s)`);
  }
  const logDays = parsed.retention.revocationLogDays;
  if (logDays > 0 && logDays * 86_400_000 < revocationMattersMs(parsed.tokens.accessTokenTtlSeconds * 1000)) {
    // An entry must outlive every access token it revokes: a verifier that starts pages the
    // log for the revocations whose tokens may still be presented.
    throw new ConfigError('retention.revocationLogDays', `must cover tokens.accessTokenTtlSeconds (${parsed.tokens.accessTokenTtlSeconds} s) plus a minute`);
  }
  return deepFreeze({ ...parsed, issuer });
}

/** `ssf.upstreams`: names are URL segments of their own; keys come over TLS except on loopback. */
function checkUpstreams(parsed: Static<typeof ConfigSchema>): void {
  const names = new Set<string>();
  for (const [i, upstream] of parsed.ssf.upstreams.entries()) {
    if (names.has(upstream.name)) throw new ConfigError(`ssf.upstreams[${i}].name`, `"${upstream.name}" is used twice`);
    names.add(upstream.name);
    const jwks = new URL(upstream.jwksUri);
    // The keys decide whose SETs end sessions here: fetched in clear text, anyone on the path
    // could swap them. Plain http only for a transmitter on this machine.
    if (jwks.protocol !== 'https:' && !LOOPBACK.has(jwks.hostname)) throw new ConfigError(`ssf.upstreams[${i}].jwksUri`, `must be https (http only on loopback), not ${upstream.jwksUri}`);
  }
}

// Claims the shared cookie's JWT sets itself; a user claim of the same name would be lost.
const REGISTERED_CLAIMS = new Set(['sid', 'iat', 'exp', 'nbf']);

/** Rules of the shared cookie that the schema alone cannot say. */
function checkSharedCookie(parsed: Static<typeof ConfigSchema>): void {
  const shared = parsed.sharedCookie;
  if (!shared.enabled) return;
  if (shared.secret === null) throw new ConfigError(keyName('/sharedCookie/secret'), 'is required when sharedCookie.enabled is true (an HS256 key of at least 32 characters)');
  if (shared.name === parsed.cookie.name) throw new ConfigError(keyName('/sharedCookie/name'), `must differ from cookie.name ("${parsed.cookie.name}"): one cookie would overwrite the other`);
  const seen = new Map<string, string>();
  for (const field of ['id', 'username', 'email', 'firstName', 'lastName', 'picture'] as const) {
    const claim = shared.claims[field];
    const other = seen.get(claim);
    if (other !== undefined) throw new ConfigError(`sharedCookie.claims.${field}`, `"${claim}" is already the claim of ${other}`);
    seen.set(claim, field);
    if (shared.parentKey === null && REGISTERED_CLAIMS.has(claim)) throw new ConfigError(`sharedCookie.claims.${field}`, `"${claim}" is set by Tessera itself; pick another name or set sharedCookie.parentKey`);
  }
  if (shared.parentKey !== null && REGISTERED_CLAIMS.has(shared.parentKey)) throw new ConfigError('sharedCookie.parentKey', `"${shared.parentKey}" is set by Tessera itself`);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Lists every setting with its default and description; used to write docs/configuration.md. */
export function describeConfig(): Array<{ key: string; env: string | null; default: unknown; description: string }> {
  const rows: Array<{ key: string; env: string | null; default: unknown; description: string }> = [];
  const walk = (schema: Type.TSchema, prefix: string) => {
    const props = (schema as { properties?: Record<string, Type.TSchema> }).properties ?? {};
    for (const [name, child] of Object.entries(props)) {
      const key = prefix + name;
      if ((child as { type?: string }).type === 'object') walk(child, `${key}.`);
      else {
        const env = Object.entries(ENV_KEYS).find(([, k]) => k === key)?.[0] ?? null;
        const c = child as { default?: unknown; description?: string };
        rows.push({ key, env, default: c.default, description: c.description ?? '' });
      }
    }
  };
  walk(ConfigSchema, '');
  return rows;
}
