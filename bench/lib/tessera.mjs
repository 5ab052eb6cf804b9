// A real Tessera node for the benchmarks (the built server, in a process of its own, on
// SQLite in a temp dir unless told otherwise) and the real flows that give apps their tokens:
// admin API for users and apps, POST /v1/sessions (trusted app) and POST /v1/token.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectStatus, mapLimit, request, startChild, stopChild } from './children.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Starts a Tessera node. `env` adds TESSERA_* settings; `dataDir` reuses a prepared
 * directory (its tessera.db), otherwise a temp one is made and removed on `stop()`.
 *
 * @example
 * ```js
 * const tessera = await startTessera({ env: { TESSERA_ACCESS_TOKEN_TTL: '3600' } });
 * const app = await tessera.createApp({ trusted: true });
 * await tessera.stop();
 * ```
 */
export async function startTessera({ env: extra = {}, dataDir, execArgv = [] } = {}) {
  const ownDir = dataDir === undefined;
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  const adminToken = randomBytes(30).toString('base64url');
  // Only the settings below reach the node: a TESSERA_DATABASE_URL in the caller's
  // environment must not turn a SQLite benchmark into a PostgreSQL one.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TESSERA_')));
  Object.assign(env, {
    TESSERA_PORT: '0',
    TESSERA_HOST: '127.0.0.1',
    TESSERA_DATA_DIR: dir,
    TESSERA_LOG_LEVEL: 'warn',
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_RATE_LIMIT: 'false',
    TESSERA_ADMIN_TOKEN: adminToken,
    ...extra,
  });
  const { child, url } = await startChild(join(here, '..', 'servers', 'tessera.mjs'), { env, execArgv });
  const adminHeaders = { authorization: `Bearer ${adminToken}` };

  const tessera = {
    url,
    child,
    dataDir: dir,
    /** The admin API's Authorization header value. */
    adminAuthorization: adminHeaders.authorization,
    /** Calls the admin API and returns the parsed answer (null for 204). */
    async admin(method, path, body, status) {
      const response = await expectStatus(`${method} /admin/api${path}`, request(`${url}/admin/api${path}`, { method, headers: adminHeaders, body }), status);
      return response.bytes.length ? response.json() : null;
    },
    /** Registers an app; returns { clientId, clientSecret, basic } (basic: the Authorization header value). */
    async createApp({ name = `bench-app-${randomBytes(4).toString('hex')}`, trusted = true } = {}) {
      const created = await tessera.admin('POST', '/apps', { name, trusted }, 201);
      const clientId = created.app.client_id;
      const clientSecret = created.client_secret;
      // RFC 6749 §2.3.1: form-encode each part before joining them for HTTP Basic.
      const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
      return { clientId, clientSecret, basic };
    },
    /**
     * Creates `count` users, starts one session for each (the trusted `app` starts it) and
     * exchanges it for the app's access token: [{ userId, sid, accessToken, refreshToken }].
     */
    async createUsersWithTokens(app, count, { concurrency = 8, prefix = 'bench' } = {}) {
      const tag = randomBytes(3).toString('hex');
      return mapLimit(Array.from({ length: count }, (_, i) => i), concurrency, async (i) => {
        const name = `${prefix}-${tag}-${i}`;
        const { user } = await tessera.admin('POST', '/users', { username: name, email: `${name}@example.test`, first_name: 'Bench', last_name: `User ${i}` }, 201);
        const started = (await expectStatus('POST /v1/sessions', request(`${url}/v1/sessions`, { method: 'POST', headers: { authorization: app.basic }, body: { user_id: user.id, device: { ip: '127.0.0.1', user_agent: 'bench' } } }), 201)).json();
        const tokens = (await expectStatus('POST /v1/token', request(`${url}/v1/token`, { method: 'POST', headers: { authorization: app.basic }, form: { grant_type: 'session_token', session_token: started.session_token } }), 200)).json();
        return { userId: user.id, sid: tokens.sid, accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
      });
    },
    async stop() {
      await stopChild(child);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return tessera;
}
