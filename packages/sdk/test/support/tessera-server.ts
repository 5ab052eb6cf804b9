// A real Tessera node for the SDK tests: startServer on 127.0.0.1, a free port, a temp SQLite
// data dir, and helpers that drive it the way an operator and an app would (admin API,
// POST /v1/sessions, POST /v1/token). No part of Tessera is mocked.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig, startServer, type RunningServer } from '@tessera/server';
import { createTessera, type Tessera, type TesseraOptions } from '../../src/index.js';

export const ADMIN_TOKEN = `sdk-test-admin-${'x'.repeat(40)}`;

export interface TestApp {
  clientId: string;
  clientSecret: string;
}

export interface TesseraServer {
  url: string;
  dataDir: string;
  /** Restarts the node on the same data dir (a new port unless `port` is given); returns the new URL. */
  restart(options?: { port?: number }): Promise<string>;
  stop(): Promise<void>;
  close(): Promise<void>;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  createApp(name: string, options?: { trusted?: boolean }): Promise<TestApp>;
  createUser(username?: string): Promise<string>;
  /** Starts a session for the user (as the trusted `starter` app); returns the session token and handle. */
  startSession(starter: TestApp, userId: string): Promise<{ token: string; handle: string }>;
  /** Ends a session through the admin API. */
  revokeSession(handle: string): Promise<void>;
  /** The whole revocation log as `app` sees it. */
  revocationCursors(app: TestApp): Promise<number[]>;
}

let counter = 0;

function basic(app: TestApp): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(app.clientId)}:${encodeURIComponent(app.clientSecret)}`).toString('base64')}`;
}

export async function startTesseraServer(env: Record<string, string> = {}): Promise<TesseraServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-sdk-'));
  const baseEnv = {
    TESSERA_PORT: '0',
    TESSERA_HOST: '127.0.0.1',
    TESSERA_DATA_DIR: dataDir,
    TESSERA_ADMIN_TOKEN: ADMIN_TOKEN,
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_RATE_LIMIT: 'false',
    TESSERA_LOG_LEVEL: 'silent',
    ...env,
  };
  const quiet = { print: () => undefined };
  let running: RunningServer | null = await startServer(readConfig(baseEnv), quiet);
  let url = running.url;

  async function request<T>(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  const server: TesseraServer = {
    get url() {
      return url;
    },
    dataDir,
    async restart(options = {}) {
      await running?.close();
      running = null;
      running = await startServer(readConfig({ ...baseEnv, TESSERA_PORT: String(options.port ?? 0) }), quiet);
      url = running.url;
      return url;
    },
    async stop() {
      await running?.close();
      running = null;
    },
    async close() {
      await running?.close();
      running = null;
      rmSync(dataDir, { recursive: true, force: true });
    },
    admin: (method, path, body) => request(method, `/admin/api${path}`, { authorization: `Bearer ${ADMIN_TOKEN}` }, body),
    async createApp(name, options = {}) {
      const { status, body } = await server.admin<{ app: { client_id: string }; client_secret: string }>('POST', '/apps', { name, trusted: options.trusted ?? true });
      if (status !== 201) throw new Error(`createApp: ${status} ${JSON.stringify(body)}`);
      return { clientId: body.app.client_id, clientSecret: body.client_secret };
    },
    async createUser(username = `user${++counter}`) {
      const { status, body } = await server.admin<{ user: { id: string } }>('POST', '/users', { username, email: `${username}@example.test` });
      if (status !== 201) throw new Error(`createUser: ${status} ${JSON.stringify(body)}`);
      return body.user.id;
    },
    async startSession(starter, userId) {
      const { status, body } = await request<{ session: { handle: string }; session_token: string }>('POST', '/v1/sessions', { authorization: basic(starter) }, { user_id: userId });
      if (status !== 201) throw new Error(`startSession: ${status} ${JSON.stringify(body)}`);
      return { token: body.session_token, handle: body.session.handle };
    },
    async revokeSession(handle) {
      const { status, body } = await server.admin('DELETE', `/sessions/${handle}`);
      if (status !== 204) throw new Error(`revokeSession: ${status} ${JSON.stringify(body)}`);
    },
    async revocationCursors(app) {
      const cursors: number[] = [];
      let after = 0;
      for (;;) {
        const { status, body } = await request<{ events: Array<{ cursor: number }>; next: number }>('GET', `/v1/revocations?after=${after}&limit=1000`, { authorization: basic(app) });
        if (status !== 200) throw new Error(`revocations: ${status}`);
        cursors.push(...body.events.map((e) => e.cursor));
        if (body.next <= after) return cursors;
        after = body.next;
      }
    },
  };
  return server;
}

/** A Tessera client for `app` against `server`, with quick reconnects for tests. */
export function clientFor(server: TesseraServer, app: TestApp, options: Partial<TesseraOptions> = {}): Tessera {
  return createTessera({
    issuer: server.url,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    ...options,
    feed: { reconnectMinMs: 20, reconnectMaxMs: 200, ...options.feed },
  });
}

/**
 * Polls `check` until it returns true or `timeoutMs` passes; returns whether it did. The
 * default is generous (20 s) because it bounds a wait, not the speed expected: it returns
 * as soon as the condition holds, and a loaded CI machine may need seconds.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, intervalMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
