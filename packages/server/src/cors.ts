import type { FastifyInstance, FastifyRequest } from 'fastify';

const ALLOW_HEADERS = 'Content-Type, X-Tessera-CSRF';

/**
 * The routes a page on a registered origin may call with credentials (the browser sends the
 * Tessera session cookie and may read the answer). Written down in docs/api.md ("CORS"), and
 * nothing else gets a credentialed CORS answer:
 *
 * - `POST /v1/logout`: the XHR logout that `allowed_origins` exists for (and that
 *   @tessera/browser's `logout()` calls).
 * - `GET /v1/logout/browser`: fetching a one-time logout token/URL for the current session,
 *   to pass to `POST /v1/logout` or to navigate to.
 * - `GET /v1/logout`: that logout URL opened by XHR with `Accept: application/json` (204,
 *   the Kratos-style flow). It acts only with its one-time logout token, which a page
 *   gets from the route above, so CORS adds no power to it; without CORS the browser
 *   reports the 204 as a network error and the app cannot tell the logout happened.
 *
 * Everything else stays same-origin only (the OpenID Provider's endpoints of
 * {@link OIDC_CORS_ROUTES} get CORS without credentials). An app's own pages cannot, for example, list the
 * user's devices (`GET /v1/sessions`), end them (`DELETE /v1/sessions`) or change the
 * password (`POST /v1/password`) from another origin with the cookie: those are Tessera's
 * own pages' business, and a script injected into any registered app (XSS on a forum) would
 * otherwise inherit them. Apps that need the session ask server-side (whoami with their
 * client credentials), which CORS does not govern.
 */
export const CREDENTIALED_CORS_ROUTES: ReadonlyArray<{ method: 'GET' | 'POST'; path: string }> = Object.freeze([
  { method: 'POST', path: '/v1/logout' },
  { method: 'GET', path: '/v1/logout' },
  { method: 'GET', path: '/v1/logout/browser' },
]);

/**
 * The OpenID Provider's endpoints that a browser-based client (an SPA registered with
 * `token_endpoint_auth_method: none` and PKCE, its origin in `allowed_origins`) calls
 * cross-origin: discovery, the token endpoint and userinfo (docs/oidc.md). They are answered
 * WITHOUT credentials: no Access-Control-Allow-Credentials, so the browser neither sends the
 * Tessera cookie nor lets the page read an answer to a request that carried it. None of them
 * reads the cookie anyway: the token endpoint authenticates the code, verifier or client,
 * userinfo its Bearer token, and discovery is public. So an injected script on a registered
 * origin gains nothing the session cookie would give.
 */
export const OIDC_CORS_ROUTES: ReadonlyArray<{ method: 'GET' | 'POST'; path: string }> = Object.freeze([
  { method: 'GET', path: '/.well-known/openid-configuration' },
  { method: 'POST', path: '/oidc/token' },
  { method: 'GET', path: '/oidc/userinfo' },
  { method: 'POST', path: '/oidc/userinfo' },
]);
// Userinfo takes `Authorization: Bearer`; the token endpoint a form body.
const OIDC_ALLOW_HEADERS = 'Authorization, Content-Type';

function methodsFor(path: string): string[] {
  return CREDENTIALED_CORS_ROUTES.filter((r) => r.path === path).map((r) => r.method);
}

function oidcMethodsFor(path: string): string[] {
  return OIDC_CORS_ROUTES.filter((r) => r.path === path).map((r) => r.method);
}

/** The path of a request, without its query. */
function pathOf(request: FastifyRequest): string {
  const url = request.url;
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * CORS, answered only on {@link CREDENTIALED_CORS_ROUTES} and only for origins that a
 * registered app lists (and Tessera's own), always with credentials, never `*`. Any other
 * route or origin gets no Access-Control-Allow-* header at all, so the browser neither lets
 * that page read the answer nor sends a preflighted request (custom headers such as
 * X-Tessera-CSRF, DELETE, JSON bodies). Requests without an Origin header — servers, the
 * whoami hot path — skip all of this.
 *
 * @example
 * ```ts
 * installCors(app, { issuer, isRegisteredOrigin: (o) => apps.isRegisteredOrigin(o) });
 * ```
 */
export function installCors(app: FastifyInstance, options: { issuer: string; isRegisteredOrigin(origin: string): Promise<boolean> }): void {
  const own = new URL(options.issuer).origin;
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin === undefined) return;
    // Caches must keep answers for different origins apart.
    reply.header('vary', 'Origin');
    // A preflight asks for the method it will send; a real request is what it is. The path
    // is matched exactly (no trailing slash, no case folding): anything else fails closed.
    const wanted = request.method === 'OPTIONS' ? String(request.headers['access-control-request-method'] ?? '').toUpperCase() : request.method;
    const path = pathOf(request);
    const credentialed = methodsFor(path).includes(wanted);
    if (!credentialed && !oidcMethodsFor(path).includes(wanted)) return;
    if (origin !== own && !(await options.isRegisteredOrigin(origin))) return;
    reply.header('access-control-allow-origin', origin);
    if (credentialed) reply.header('access-control-allow-credentials', 'true');
  });
  // Preflights: 204, with the allowed methods and headers only when the route and origin were allowed.
  app.options('*', { schema: { hide: true } }, async (request, reply) => {
    if (reply.hasHeader('access-control-allow-origin')) {
      const credentialed = reply.hasHeader('access-control-allow-credentials');
      const path = pathOf(request);
      reply.header('access-control-allow-methods', (credentialed ? methodsFor(path) : oidcMethodsFor(path)).join(', '));
      reply.header('access-control-allow-headers', credentialed ? ALLOW_HEADERS : OIDC_ALLOW_HEADERS);
      reply.header('access-control-max-age', '600');
    }
    return reply.status(204).send();
  });
}
