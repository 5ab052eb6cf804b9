import Fastify, { type FastifyServerOptions } from 'fastify';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { TesseraError, createAuthority, systemClock, type Authority, type Clock, type Config, type RevocationEvent, type Store } from '@tessera/core';
import type { ServerContext, TesseraApp } from './context.js';
import { createFailureLimits } from './failure-limits.js';
import { installRequestShaping, sendClientError } from './request-shape.js';
import { installCors } from './cors.js';
import { installErrorHandling, sendError } from './error-handler.js';
import { adminRoutes } from './routes/admin.js';
import { adminSsfRoutes } from './routes/admin-ssf.js';
import { appApiRoutes } from './routes/app-api.js';
import { feedRoutes } from './routes/feed.js';
import { tokenRoutes } from './routes/tokens.js';
import { createFeedHub } from './feed-hub.js';
import { createCredentialGuard, type CredentialGuard } from './credential-guard.js';
import { createOutboxWorker, type OutboxWorker } from './outbox-worker.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createRevocationSignal, type RevocationSignal } from './revocation-signal.js';
import { requireAdmin, requireApp } from './http-auth.js';
import { createValidatorCompiler } from './validation.js';
import { createLoggerOptions } from './redaction.js';
import { loginRoutes } from './routes/login.js';
import { accountRoutes, stylesheetRoutes } from './pages/index.js';
import { adminConsoleRoutes } from './console/index.js';
import { oidcRoutes } from './oidc/index.js';
import { createSsfPushWorker, createSsfWakeup, ssfRoutes, type SsfPushWorker } from './ssf/index.js';
import { logoutRoutes } from './routes/logout.js';
import { selfRoutes } from './routes/self.js';
import { requestIdOf, SECURITY_HEADERS } from './request-id.js';
import { createLeanWhoami, leanServerFactory } from './whoami-lean.js';
import { ErrorBody, UserView, SessionView, AppView, DeliveryView, errors } from './schemas.js';
import { TESSERA_VERSION } from './version.js';

// Fastify logs every request at info: at these levels each request gets its log lines.
const REQUEST_LOG_LEVELS = new Set(['trace', 'debug', 'info']);

/** Options of {@link buildServer}. */
export interface BuildOptions {
  config: Config;
  store: Store;
  clock?: Clock;
  /** A pino logger config, a pino-compatible stream, or false (tests). */
  logger?: FastifyServerOptions['logger'];
  /** Called after every committed revocation (feeds, outbox wake-ups). */
  onRevoked?: (events: RevocationEvent[]) => void;
  /** Run the logout delivery worker (startServer does; in-process tests may start it themselves). */
  startWorker?: boolean;
}

// The one redaction list of every logger lives in redaction.ts.
export { redactUrl } from './redaction.js';

/**
 * Whatever logger configuration a caller passes, the request and error serializers and the
 * message hook of the one redaction list are applied (they win over the caller's own), so
 * no way of building a server logs a secret query value.
 */
function withRedaction(logger: NonNullable<BuildOptions['logger']>): BuildOptions['logger'] {
  if (logger === false) return false;
  if (logger === true) return createLoggerOptions('info');
  const given = logger as { level?: string; serializers?: Record<string, unknown>; hooks?: Record<string, unknown> };
  const safe = createLoggerOptions((given.level ?? 'info') as Parameters<typeof createLoggerOptions>[0]);
  return { ...given, serializers: { ...given.serializers, ...safe.serializers }, hooks: { ...given.hooks, ...safe.hooks } } as BuildOptions['logger'];
}

/**
 * Builds the Tessera HTTP server (not listening yet): public routes, the admin context,
 * the server-to-server routes, the error envelope and the OpenAPI document.
 *
 * @example
 * ```ts
 * const { app } = await buildServer({ config, store });
 * const res = await app.inject({ method: 'GET', url: '/health' });
 * ```
 */
export async function buildServer(options: BuildOptions): Promise<{ app: TesseraApp; authority: Authority; worker: OutboxWorker; ssfWorker: SsfPushWorker; metrics: Metrics }> {
  const { config, store } = options;
  // The feed hub reads the log back after every local commit (and on a timer for ends
  // written elsewhere), so followers get every entry in order.
  const hub = createFeedHub(store, { pollIntervalMs: config.feed.pollIntervalMs, onError: (error) => app.log.error({ err: error }, 'revocation feed read failed') });
  let worker: OutboxWorker | undefined;
  let signal: RevocationSignal | undefined;
  let metrics: Metrics | undefined;
  const onRevoked = (events: RevocationEvent[], written: { deliveries: number }) => {
    void hub.wake();
    // Only when this commit gave the outbox something to send: most revocations (sessions no
    // app with a back-channel URI joined) would otherwise cost a claim query each.
    if (written.deliveries > 0) void worker?.wake();
    signal?.publish(events[events.length - 1]!.cursor);
    metrics?.recordRevocations(events);
    options.onRevoked?.(events);
  };
  // Streams bound to app credentials; re-checked when an app changes here or elsewhere.
  let guard: CredentialGuard | undefined;
  // New SETs in the Shared Signals outbox wake the push worker and the waiting long polls.
  const ssfWakeup = createSsfWakeup();
  const authority = createAuthority({ store, config, clock: options.clock ?? systemClock, onRevoked, onSecurityEvents: () => ssfWakeup.wake(), onAppChanged: (clientId) => void guard?.check(clientId) });
  guard = createCredentialGuard({ authority, pollIntervalMs: config.feed.pollIntervalMs, onError: (error) => app.log.error({ err: error }, 'credential re-check failed') });
  const app = Fastify({
    logger: withRedaction(options.logger ?? false),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    frameworkErrors: sendError,
    // Requests Node's parser rejects (headers too large, a broken request line) get the envelope too.
    clientErrorHandler: sendClientError,
    // `/v1/sessions/` is `/v1/sessions`: clients that join a base URL and a path often leave a
    // trailing slash, and a 404 there would read as "no such session" to some of them.
    routerOptions: { ignoreTrailingSlash: true },
    genReqId: (request) => requestIdOf(request.headers),
    // GET /v1/whoami, the route every app calls on every page view, is answered in front of
    // Fastify when it can be answered exactly as the route below would (docs/decisions/0004).
    serverFactory: leanServerFactory(createLeanWhoami({
      authority,
      logsRequests: (): boolean => REQUEST_LOG_LEVELS.has(app.log.level),
      closing: (): boolean => closing,
      observe: (route, method, status, seconds) => metrics?.observeRequest(route, method, status, seconds),
    })),
  }).withTypeProvider<TypeBoxTypeProvider>();
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // The request id and the security headers (see SECURITY_HEADERS) on every response, set
  // before the handler runs so that error responses carry them too.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    reply.headers(SECURITY_HEADERS);
    done();
  });
  // Unknown fields are an error, not silently dropped (a typo in a security setting such as
  // "allowed_orgins" must not pass unnoticed), and bodies are not type-coerced.
  app.setValidatorCompiler(createValidatorCompiler());
  installErrorHandling(app);
  installRequestShaping(app);
  // The worker only wakes on commits; it never runs inside a user's request.
  worker = createOutboxWorker({ store, authority, config, log: app.log, now: () => (options.clock ?? systemClock).now(), onAttempt: (outcome) => metrics?.recordAttempt(outcome) });
  if (options.startWorker && config.outbox.enabled) worker.start();
  const ssfWorker = createSsfPushWorker({ store, authority, config, log: app.log, wakeup: ssfWakeup, now: () => (options.clock ?? systemClock).now(), onAttempt: (outcome) => metrics?.recordSsfAttempt(outcome) });
  if (options.startWorker && config.outbox.enabled && config.ssf.enabled) ssfWorker.start();
  metrics = createMetrics({
    store,
    feedSubscribers: () => hub.size,
    deliveriesInFlight: () => worker?.inFlight ?? 0,
    ssfPushesInFlight: () => ssfWorker.inFlight,
    ssfPollsWaiting: () => ssfWakeup.waiting,
    signalsUp: () => ({ ...(config.databaseUrl ? { postgres: signal?.health.postgres ?? false } : {}), ...(config.redisUrl ? { redis: signal?.health.redis ?? false } : {}) }),
  });
  metrics.instrument(app);
  // Other nodes' commits wake this node's feed and worker (PostgreSQL NOTIFY, Redis).
  if (config.databaseUrl || config.redisUrl) {
    signal = createRevocationSignal({ databaseUrl: config.databaseUrl, redisUrl: config.redisUrl, log: app.log, onSignal: (source) => {
      metrics?.recordSignal(source);
      void hub.wake();
      void worker?.wake();
      ssfWakeup.wake();
    }, onSsfSignal: () => ssfWakeup.wake(), onCredentialSignal: (clientId) => void guard?.check(clientId), isOwn: (processId) => store.isOwnNotification(processId) });
    app.addHook('onReady', async () => signal!.start());
  }
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: config.bodyLimitBytes });
  installCors(app, { issuer: config.issuer, isRegisteredOrigin: (origin) => authority.apps.isRegisteredOrigin(origin) });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Tessera', version: TESSERA_VERSION, description: 'Session authority: one login, one session, logout everywhere.' },
      servers: [{ url: config.issuer }],
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer', description: 'Admin token' },
          client: { type: 'http', scheme: 'basic', description: 'client_id:client_secret' },
          sessionBearer: { type: 'http', scheme: 'bearer', description: 'Session token' },
          sessionHeader: { type: 'apiKey', in: 'header', name: 'X-Session-Token' },
          sessionCookie: { type: 'apiKey', in: 'cookie', name: config.cookie.name },
          adminConsole: { type: 'apiKey', in: 'cookie', name: 'tessera_admin', description: 'The admin console\'s sign-in (POST /admin/login with an admin token); its forms also need their CSRF token (cookie tessera_admin_csrf and field csrf).' },
          ssfBearer: { type: 'http', scheme: 'bearer', description: 'Access token of a Shared Signals receiver client (client_credentials at /oidc/token; header only, never the query)' },
        },
      },
    },
  });
  for (const schema of [ErrorBody, UserView, SessionView, AppView, DeliveryView]) app.addSchema(schema);

  // Only failed attempts are counted (sign-ins, logouts, admin tokens, client secrets): a
  // limit per request would refuse valid logouts from a busy address (docs/security.md).
  const limits = createFailureLimits(config, options.clock ?? systemClock);
  const context: ServerContext = { authority, config, limits };

  app.get('/health', { schema: { tags: ['meta'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // Readiness for load balancers: this node can reach its database (liveness is /health).
  app.get('/health/ready', { schema: { tags: ['meta'], description: '200 when this node can reach its store, else 503 UNAVAILABLE.', response: { 200: Type.Object({ status: Type.Literal('ok') }), ...errors(503) } } }, async () => {
    try {
      await store.revocationHead();
    } catch (error) {
      throw new TesseraError('UNAVAILABLE', 'The store is unreachable.', { cause: error });
    }
    return { status: 'ok' as const };
  });
  app.get('/.well-known/jwks.json', {
    schema: { tags: ['tokens'], description: 'Public keys that sign access tokens (and back-channel logout tokens). The next period\'s key is published a whole period before it signs.', response: { 200: Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) }) } },
  }, async (_request, reply) => {
    // Safe to cache briefly: keys are published long before they sign, and verifiers
    // refetch on an unknown kid anyway.
    reply.header('cache-control', 'public, max-age=300');
    return authority.keys.publicJwks();
  });
  // Streams never end by themselves: end them first so close() does not wait forever.
  app.addHook('preClose', async () => {
    await hub.close();
    guard?.close();
    await signal?.close();
    // Finish in-flight deliveries (bounded) and give back the leases of the rest.
    ssfWakeup.wake();
    await worker?.stop();
    await ssfWorker.stop();
  });
  // Prometheus metrics, behind the admin token (Prometheus sends it as a bearer credential).
  app.get('/metrics', { schema: { tags: ['meta'], description: 'Prometheus metrics of this node (admin token required).', produces: ['text/plain'] } }, async (request, reply) => {
    await requireAdmin(request, authority, limits);
    return reply.type(metrics!.registry.contentType).send(await metrics!.registry.metrics());
  });
  app.decorateRequest('client', null);

  await app.register(async (scope) => {
    await loginRoutes(scope, context);
    await accountRoutes(scope, context);
    await selfRoutes(scope, context);
    await logoutRoutes(scope, context);
  });
  // The app context: every route here is authenticated with HTTP Basic client credentials
  // before anything else runs.
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      request.client = await requireApp(request, reply, authority, limits);
    });
    await appApiRoutes(scope, context);
    await tokenRoutes(scope, context);
    await feedRoutes(scope, context, hub, guard);
  });
  await app.register(async (scope) => {
    await adminRoutes(scope, context, () => void worker?.wake());
    await adminSsfRoutes(scope, context);
  }, { prefix: '/admin/api' });
  // The admin console (pages under /admin): its own context, its own sign-in and cookie
  // (console/auth.ts), separate from user sessions and from the bearer-token API above.
  await app.register(async (scope) => adminConsoleRoutes(scope, context, () => void worker?.wake()), { prefix: '/admin' });
  await app.register(async (scope) => stylesheetRoutes(scope));
  // The OpenID Provider: its own context, because its token endpoint authenticates clients
  // in three ways (not only Basic) and answers in OAuth's error format.
  await app.register(async (scope) => oidcRoutes(scope, context));
  // The Shared Signals transmitter: its own context, authenticated by receiver access tokens.
  if (config.ssf.enabled) {
    await app.register(async (scope) => ssfRoutes(scope, context, ssfWakeup, () => closing));
    // The RS256 key series SETs are signed with is published before the first SET.
    app.addHook('onReady', async () => authority.ssf.ready());
  }

  return { app, authority, worker, ssfWorker, metrics };
}
