import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLoggerOptions } from '../src/start.js';
import { SECRET_QUERY_PARAMS, redactUrl } from '../src/redaction.js';
import {
  ADMIN_TOKEN,
  SITE_ORIGIN,
  SITE_RETURN,
  basicAuth,
  bearer,
  createApp,
  createTestServer,
  createUser,
  loginWithForm,
  pathOf,
  requestLogoutUrl,
  startAppSession,
  whoamiStatus,
} from './support.js';

/** A writable stream that keeps every log line in memory. */
function createMemoryStream(): { stream: Writable; text(): string; lines(): Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const text = () => chunks.join('');
  return { stream, text, lines: () => text().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('logging', () => {
  for (const level of ['info', 'debug'] as const) {
    it(`at level ${level}, no session token, logout token, client secret, admin token or password appears in the log`, async () => {
      const memory = createMemoryStream();
      const t = await createTestServer({ logger: { ...createLoggerOptions(level), stream: memory.stream } });
      try {
        const secrets: Record<string, string> = { admin_token: ADMIN_TOKEN };
        const app = await createApp(t, { return_urls: [SITE_RETURN] });
        secrets.client_secret = app.clientSecret;
        const { user, password } = await createUser(t, { password: 'hunter2-but-longer' });
        secrets.password = password;

        // Hosted login, including a failed attempt.
        const failed = await loginWithForm(t, { username: user.username, password: 'wrong-password-attempt' });
        expect(failed.res.statusCode).toBe(401);
        secrets.wrong_password = 'wrong-password-attempt';
        const { res, token } = await loginWithForm(t, { username: user.username, password, returnTo: SITE_RETURN });
        expect(res.statusCode).toBe(303);
        secrets.session_token = token!;

        // whoami by bearer, by header and by cookie.
        expect(await whoamiStatus(t, token!, 'bearer')).toBe(200);
        expect(await whoamiStatus(t, token!, 'header')).toBe(200);
        expect(await whoamiStatus(t, token!, 'cookie')).toBe(200);

        // The browser logout URL: the token travels in the query string.
        const { logoutUrl, logoutToken } = await requestLogoutUrl(t, token!, SITE_RETURN);
        secrets.logout_token = logoutToken;
        const opened = await t.app.inject({ method: 'GET', url: pathOf(logoutUrl) });
        expect(opened.statusCode).toBe(303);
        // A spent token again (rejected: the error path logs too).
        expect((await t.app.inject({ method: 'GET', url: pathOf(logoutUrl) })).statusCode).toBe(403);

        // Server-to-server logout, as text/plain and as JSON, and with a wrong secret.
        const s1 = await startAppSession(t, app, user.id);
        const s2 = await startAppSession(t, app, user.id);
        secrets.s2s_token_1 = s1.token;
        secrets.s2s_token_2 = s2.token;
        expect((await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic, 'content-type': 'text/plain' }, payload: s1.token })).statusCode).toBe(200);
        expect((await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic }, payload: { token: s2.token, scope: 'user' } })).statusCode).toBe(200);
        expect((await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: basicAuth(app.clientId, 'wrong-secret-value'), 'content-type': 'text/plain' }, payload: s2.token, query: { client_secret: app.clientSecret } })).statusCode).toBe(401);

        // Native-client and XHR logout, with tokens in bodies and a token in a query string.
        const s3 = await startAppSession(t, app, user.id);
        secrets.s3_token = s3.token;
        expect((await t.app.inject({ method: 'GET', url: '/v1/whoami', query: { token: s3.token, session_token: s3.token }, headers: bearer(s3.token) })).statusCode).toBe(200);
        expect((await t.app.inject({ method: 'DELETE', url: '/v1/logout/api', payload: { session_token: s3.token } })).statusCode).toBe(204);
        const s4 = await startAppSession(t, app, user.id);
        secrets.s4_token = s4.token;
        const x = await requestLogoutUrl(t, s4.token);
        secrets.xhr_logout_token = x.logoutToken;
        expect((await t.app.inject({ method: 'POST', url: '/v1/logout', headers: { origin: SITE_ORIGIN }, payload: { logout_token: x.logoutToken } })).statusCode).toBe(204);
        // A malformed body that contains a secret.
        expect((await t.app.inject({ method: 'DELETE', url: '/v1/logout/api', headers: { 'content-type': 'application/json' }, payload: `{"session_token": "${s4.token}"` })).statusCode).toBe(400);

        // OpenID Connect: a code, the tokens of its redemption and an ID token as end_session's hint.
        const rp = await createApp(t, { trusted: true, redirect_uris: ['https://rp.example/cb'] });
        secrets.rp_client_secret = rp.clientSecret;
        const s5 = (await loginWithForm(t, { username: user.username, password })).token!;
        secrets.s5_token = s5;
        const authorized = await t.app.inject({ method: 'GET', url: '/oidc/authorize', query: { client_id: rp.clientId, redirect_uri: 'https://rp.example/cb', response_type: 'code', scope: 'openid' }, cookies: { [t.config.cookie.name]: s5 } });
        const code = new URL(String(authorized.headers.location)).searchParams.get('code')!;
        secrets.code = code;
        const granted = await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: rp.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'https://rp.example/cb' }).toString() });
        const oidcTokens = granted.json<{ access_token: string; refresh_token: string; id_token: string }>();
        Object.assign(secrets, { oidc_access: oidcTokens.access_token, oidc_refresh: oidcTokens.refresh_token, id_token: oidcTokens.id_token });
        // A replay of the code (error path), userinfo, and RP-initiated logout with the hint in the query.
        expect((await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: rp.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'https://rp.example/cb' }).toString() })).statusCode).toBe(400);
        expect((await t.app.inject({ method: 'GET', url: '/oidc/userinfo', headers: bearer(oidcTokens.access_token) })).statusCode).toBe(401);
        expect((await t.app.inject({ method: 'GET', url: '/oidc/logout', query: { id_token_hint: oidcTokens.id_token } })).statusCode).toBe(200);

        await t.app.close();
        const text = memory.text();
        // The log is not empty: requests were written, with redacted URLs.
        const lines = memory.lines();
        expect(lines.length).toBeGreaterThan(20);
        const urls = lines.map((l) => (l.req as { url?: string } | undefined)?.url).filter((u): u is string => typeof u === 'string');
        expect(urls.some((u) => u.startsWith('/v1/logout?token=[redacted]'))).toBe(true);
        expect(urls).toContain('/v1/whoami');

        for (const [name, secret] of Object.entries(secrets)) {
          expect(text.includes(secret), `${name} appears in the log`).toBe(false);
          // Neither half of a split token (the id alone locates the session record).
          if (/^[\w-]+\.[\w-]+$/.test(secret)) for (const part of secret.split('.')) expect(text.includes(part), `part of ${name} appears in the log`).toBe(false);
        }
        expect(text).not.toMatch(/authorization|cookie|x-session-token/i);
        expect(text).not.toMatch(/\$argon2|secret_hash|password_hash|secretHash|passwordHash/);
      } finally {
        await t.close();
      }
    });
  }
});

// Security hardening, item 7 (issue 16): one redaction list (redaction.ts) for every logger.
describe('the one redaction list: every secret query parameter, on every kind of route and logger', () => {
  it('lists the OAuth/OIDC credentials as well as Tessera\'s own', () => {
    for (const name of ['access_token', 'refresh_token', 'id_token', 'password', 'code', 'code_verifier', 'client_assertion', 'logout_token', 'token', 'session_token', 'client_secret']) {
      expect(SECRET_QUERY_PARAMS).toContain(name);
    }
  });

  for (const how of ['createLoggerOptions', 'a plain logger config'] as const) {
    it(`with ${how}: no value of any listed parameter appears in the log, whatever the route, the status or the spelling of the name`, async () => {
      const memory = createMemoryStream();
      const logger = how === 'createLoggerOptions' ? { ...createLoggerOptions('debug'), stream: memory.stream } : { level: 'debug', stream: memory.stream };
      const t = await createTestServer({ logger });
      const values: string[] = [];
      let n = 0;
      const value = (name: string) => {
        n += 1;
        const v = `S3CRET${n}x${name.replace(/_/g, '')}x${Math.random().toString(36).slice(2)}`;
        values.push(v);
        return v;
      };
      try {
        const app = await createApp(t);
        for (const name of SECRET_QUERY_PARAMS) {
          // Plain, upper-cased, percent-encoded, repeated, and after other parameters.
          const encoded = [...name].map((c, i) => (i === 0 ? `%${c.charCodeAt(0).toString(16)}` : c)).join('');
          const queries = [`${name}=${value(name)}`, `${name.toUpperCase()}=${value(name)}`, `${encoded}=${value(name)}`, `a=1&${name}=${value(name)}&${name}=${value(name)}`, `x=y;${name}=${value(name)}`];
          for (const query of queries) {
            for (const [method, path, headers] of [
              ['GET', '/health', {}],
              ['GET', '/v1/whoami', {}],
              ['GET', '/v1/logout', {}],
              ['GET', '/no/such/route', {}],
              ['GET', '/v1/revocations', { authorization: app.basic }],
              ['POST', '/api/v1/logout', { authorization: basicAuth(app.clientId, 'wrong-secret-value'), 'content-type': 'text/plain' }],
            ] as const) {
              const res = await t.app.inject({ method, url: `${path}?${query}`, headers, ...(method === 'POST' ? { payload: 'x' } : {}) });
              expect(res.statusCode).toBeLessThan(500);
            }
          }
          // Tessera's own messages and errors that quote a URL (a failed callback, a delivery error).
          t.app.log.warn(`callback https://app.example/cb?state=1&${name}=${value(name)} failed`);
          t.app.log.error({ err: new Error(`GET https://app.example/cb?${name}=${value(name)} answered 500`) }, 'delivery failed');
          t.app.log.warn({ delivery: 1, error: `POST https://app.example/hook?${name}=${value(name)}: ECONNREFUSED` }, 'logout delivery gave up');
        }
        await t.app.close();
        const text = memory.text();
        expect(text).toContain('[redacted]');
        expect(text).toContain('/no/such/route?');
        for (const v of values) expect(text.includes(v), `a value appears in the log: ${v}`).toBe(false);
      } finally {
        await t.close();
      }
    });
  }

  it('redactUrl keeps everything else as it was', () => {
    expect(redactUrl('/v1/logout?return_to=https%3A%2F%2Fa.example%2F&token=abc#x')).toBe('/v1/logout?return_to=https%3A%2F%2Fa.example%2F&token=[redacted]#x');
    expect(redactUrl('/cb?codec=1&state=2&code=3')).toBe('/cb?codec=1&state=2&code=[redacted]');
    expect(redactUrl('/health')).toBe('/health');
  });
});

