// Security hardening, item 10 (issue 16): credentialed CORS is answered for registered
// origins on the routes listed in cors.ts (and docs/api.md, "CORS") and nowhere else.
// Walks every route of the OpenAPI document.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIALED_CORS_ROUTES, OIDC_CORS_ROUTES } from '../src/cors.js';
import { ISSUER, SITE_ORIGIN, createApp, signIn, createTestServer, type TestServer } from './support.js';

let t: TestServer;
let cookie: string;
let routes: Array<{ method: string; path: string }>;
beforeAll(async () => {
  t = await createTestServer();
  await createApp(t, { allowed_origins: [SITE_ORIGIN] });
  cookie = await signIn(t);
  const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, unknown>> }>();
  routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).filter((m) => m !== 'parameters').map((m) => ({ method: m.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'x_1') })));
});
afterAll(async () => t.close());

const listed = (method: string, path: string) => CREDENTIALED_CORS_ROUTES.some((r) => r.method === method && r.path === path);
const oidcListed = (method: string, path: string) => OIDC_CORS_ROUTES.some((r) => r.method === method && r.path === path);

describe('credentialed CORS only where docs/api.md says', () => {
  it('the list is exactly the browser logout routes', () => {
    expect(CREDENTIALED_CORS_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(['GET /v1/logout', 'GET /v1/logout/browser', 'POST /v1/logout']);
  });

  it('walks every route of the OpenAPI document: a registered origin gets Access-Control-Allow-Origin on the listed ones only (preflight and request)', async () => {
    expect(routes.length).toBeGreaterThan(25);
    for (const paths of ['/v1/sessions', '/v1/password', '/v1/whoami']) expect(routes.some((r) => r.path === paths)).toBe(true);
    for (const { method, path } of routes) {
      const preflight = await t.app.inject({ method: 'OPTIONS', url: path, headers: { origin: SITE_ORIGIN, 'access-control-request-method': method, 'access-control-request-headers': 'x-tessera-csrf' } });
      const actual = await t.app.inject({ method: method as 'GET', url: path, headers: { origin: SITE_ORIGIN }, cookies: { [t.config.cookie.name]: cookie } });
      for (const [what, res] of [['preflight', preflight], ['request', actual]] as const) {
        const allowed = res.headers['access-control-allow-origin'];
        if (listed(method, path)) {
          expect(allowed, `${what} ${method} ${path}`).toBe(SITE_ORIGIN);
          expect(res.headers['access-control-allow-credentials']).toBe('true');
        } else if (oidcListed(method, path)) {
          // The OpenID Provider's endpoints for browser-based clients: CORS without credentials.
          expect(allowed, `${what} ${method} ${path}`).toBe(SITE_ORIGIN);
          expect(res.headers['access-control-allow-credentials'], `${what} ${method} ${path}`).toBeUndefined();
        } else {
          expect(allowed, `${what} ${method} ${path} answers CORS`).toBeUndefined();
          expect(res.headers['access-control-allow-credentials'], `${what} ${method} ${path}`).toBeUndefined();
        }
      }
    }
  });

  it('a listed path with another method, a trailing slash or another case gets no CORS', async () => {
    for (const [method, url] of [['DELETE', '/v1/logout'], ['PUT', '/v1/logout'], ['POST', '/v1/logout/'], ['POST', '/V1/logout'], ['POST', '/v1/logout/browser']] as const) {
      const res = await t.app.inject({ method: 'OPTIONS', url, headers: { origin: SITE_ORIGIN, 'access-control-request-method': method } });
      expect(res.headers['access-control-allow-origin'], `${method} ${url}`).toBeUndefined();
    }
  });

  it('the preflight of a listed path names only its methods and the headers it needs', async () => {
    const res = await t.app.inject({ method: 'OPTIONS', url: '/v1/logout', headers: { origin: SITE_ORIGIN, 'access-control-request-method': 'POST' } });
    expect(String(res.headers['access-control-allow-methods']).split(/,\s*/).sort()).toEqual(['GET', 'POST']);
    expect(String(res.headers['access-control-allow-headers']).toLowerCase().split(/,\s*/).sort()).toEqual(['content-type', 'x-tessera-csrf']);
  });

  it('the OpenID Provider\'s endpoints for browser-based clients: exactly discovery, token and userinfo, without credentials, for registered origins only', async () => {
    expect(OIDC_CORS_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(['GET /.well-known/openid-configuration', 'GET /oidc/userinfo', 'POST /oidc/token', 'POST /oidc/userinfo']);
    for (const r of OIDC_CORS_ROUTES) expect(routes.some((x) => x.method === r.method && x.path === r.path), `${r.method} ${r.path} is a route`).toBe(true);
    const preflight = await t.app.inject({ method: 'OPTIONS', url: '/oidc/userinfo', headers: { origin: SITE_ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    expect(preflight.headers['access-control-allow-origin']).toBe(SITE_ORIGIN);
    expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
    expect(preflight.headers['access-control-allow-methods']).toBe('GET, POST');
    expect(String(preflight.headers['access-control-allow-headers']).toLowerCase().split(/,\s*/).sort()).toEqual(['authorization', 'content-type']);
    for (const [method, url] of [['GET', '/oidc/token'], ['POST', '/oidc/authorize'], ['GET', '/oidc/logout'], ['POST', '/oidc/consent']] as const) {
      const res = await t.app.inject({ method: 'OPTIONS', url, headers: { origin: SITE_ORIGIN, 'access-control-request-method': method } });
      expect(res.headers['access-control-allow-origin'], `${method} ${url}`).toBeUndefined();
    }
    const evil = await t.app.inject({ method: 'OPTIONS', url: '/oidc/token', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('Tessera\'s own origin is answered on the listed routes too, an unregistered one never', async () => {
    const own = await t.app.inject({ method: 'OPTIONS', url: '/v1/logout/browser', headers: { origin: new URL(ISSUER).origin, 'access-control-request-method': 'GET' } });
    expect(own.headers['access-control-allow-origin']).toBe(new URL(ISSUER).origin);
    const evil = await t.app.inject({ method: 'OPTIONS', url: '/v1/logout/browser', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });
});
