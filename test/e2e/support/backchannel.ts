// Shared pieces of the back-channel logout end-to-end tests: a Tessera node over real HTTP,
// logout receivers on node:http, and a relying party's check of a logout token.
import { createPublicKey, verify as verifySignature, type JsonWebKey as NodeJwk } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { loadConfig } from '@tessera/core';
import { startServer, type RunningServer } from '@tessera/server';
import { findFreePort } from './free-port.js';

export const ADMIN_TOKEN = `e2e-backchannel-admin-${'b'.repeat(40)}`;
export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A JSON answer of Tessera. */
export interface Answer<T> {
  status: number;
  body: T;
}

/** One delivery as the admin API shows it. */
export interface DeliveryJson {
  id: number;
  client_id: string;
  channel: 'backchannel' | 'webhook';
  status: 'pending' | 'delivered' | 'dead';
  scope: 'session' | 'user';
  sub: string;
  sid: string | null;
  sessions: number;
  reason: string;
  cursor: number;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  delivered_at: string | null;
  last_status: number | null;
  last_error: string | null;
}

/** What `GET /admin/api/sessions/:handle/deliveries` answers. */
export interface SessionDeliveries {
  handle: string;
  active: boolean;
  ended_at: string | null;
  deliveries: DeliveryJson[];
  pull_only: string[];
}

/** A registered app, with the secrets shown once at registration. */
export interface RegisteredApp {
  clientId: string;
  clientSecret: string;
  webhookSecret: string | null;
  /** `Authorization` header value for HTTP Basic client authentication. */
  basic: string;
}

/** A Tessera node started in this process by {@link startTesseraNode}. */
export interface TesseraNode {
  url: string;
  dataDir: string;
  server: RunningServer;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<Answer<T>>;
  close(): Promise<void>;
}

/** Calls Tessera's admin API at `url` with the test admin token. */
export async function callAdmin<T>(url: string, method: string, path: string, body?: unknown): Promise<Answer<T>> {
  const response = await fetch(`${url}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

/**
 * Starts a real Tessera node (startServer: HTTP on a free port, the expiry sweeper and the
 * delivery worker) on SQLite in a temp dir. `file` is the config file's object (the outbox
 * and sweeper settings have no environment variables).
 */
export async function startTesseraNode(file: Record<string, unknown> = {}): Promise<TesseraNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bcl-'));
  const port = await findFreePort();
  const config = loadConfig({
    env: { TESSERA_PORT: String(port), TESSERA_DATA_DIR: dataDir, TESSERA_COOKIE_SECURE: 'false', TESSERA_ADMIN_TOKEN: ADMIN_TOKEN, TESSERA_LOG_LEVEL: 'error', TESSERA_RATE_LIMIT: 'false' },
    file,
  });
  const server = await startServer(config, { print: () => {} });
  return {
    url: server.url,
    dataDir,
    server,
    admin: (method, path, body) => callAdmin(server.url, method, path, body),
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Registers an app through the admin API. */
export async function registerApp(url: string, body: Record<string, unknown>): Promise<RegisteredApp> {
  const { status, body: created } = await callAdmin<{ app: { client_id: string }; client_secret: string; webhook_secret?: string; error?: string }>(url, 'POST', '/apps', body);
  if (status !== 201) throw new Error(`POST /admin/api/apps answered ${status}: ${JSON.stringify(created)}`);
  const clientId = created.app.client_id;
  return {
    clientId,
    clientSecret: created.client_secret,
    webhookSecret: created.webhook_secret ?? null,
    // RFC 6749 §2.3.1: each part form-encoded before joining.
    basic: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(created.client_secret)}`).toString('base64')}`,
  };
}

/** Creates a user through the admin API; returns its id. */
export async function createUser(url: string, username: string, password = 'correct horse battery staple'): Promise<string> {
  const { status, body } = await callAdmin<{ user: { id: string } }>(url, 'POST', '/users', { username, email: `${username}@example.test`, password });
  if (status !== 201) throw new Error(`POST /admin/api/users answered ${status}: ${JSON.stringify(body)}`);
  return body.user.id;
}

/** A session started by a trusted app (which joins it): its handle and token. */
export async function startSession(url: string, trusted: RegisteredApp, userId: string, userAgent = 'e2e-device'): Promise<{ handle: string; token: string }> {
  const response = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: trusted.basic, 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId, device: { user_agent: userAgent } }),
  });
  const body = (await response.json()) as { session: { handle: string }; session_token: string };
  if (response.status !== 201) throw new Error(`POST /v1/sessions answered ${response.status}: ${JSON.stringify(body)}`);
  return { handle: body.session.handle, token: body.session_token };
}

/** An app joins a session the way apps do server-side: whoami with its client credentials. */
export async function joinSession(url: string, app: RegisteredApp, sessionToken: string): Promise<void> {
  const response = await fetch(`${url}/v1/whoami`, { headers: { authorization: app.basic, 'x-session-token': sessionToken } });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`whoami as ${app.clientId} answered ${response.status}`);
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Polls `probe` until it returns a value other than undefined; fails with `what` and the
 * last value seen after `timeoutMs`. Waiting for an asynchronous outcome, not a sleep.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, options: { timeoutMs?: number; intervalMs?: number; last?: () => unknown } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${options.last ? `; last seen: ${JSON.stringify(options.last())}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
}

/** One request a receiver got. */
export interface ReceivedRequest {
  /** Arrival time (Date.now()). */
  at: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** How a receiver answers a request: a status after an optional delay, or never (until released). */
export type ReceiverAnswer = { status: number; headers?: Record<string, string>; delayMs?: number } | { hold: Promise<{ status: number }> };

/** A logout receiver on node:http, as an app would run one. */
export interface Receiver {
  port: number;
  url: string;
  received: ReceivedRequest[];
  /** Decides each answer; replaceable at any time. */
  answer: (request: ReceivedRequest, index: number) => ReceiverAnswer | Promise<ReceiverAnswer>;
  /** Opens the port (again, after close). */
  listen(): Promise<void>;
  /** Closes the port and every open connection: the app is down. */
  close(): Promise<void>;
  readonly listening: boolean;
}

/**
 * A receiver on a free port of 127.0.0.1. With `listen: false` the port is chosen but stays
 * closed (the app is down) until `listen()`.
 */
export async function createReceiver(options: { listen?: boolean; port?: number; answer?: Receiver['answer']; onRequest?: (request: ReceivedRequest) => void } = {}): Promise<Receiver> {
  const port = options.port ?? (await findFreePort());
  let server: Server | null = null;
  const pending = new Set<ServerResponse>();
  const receiver: Receiver = {
    port,
    url: `http://127.0.0.1:${port}/logout`,
    received: [],
    answer: options.answer ?? (() => ({ status: 204 })),
    get listening() {
      return server !== null;
    },
    listen() {
      if (server) return Promise.resolve();
      const created = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const request: ReceivedRequest = { at: Date.now(), method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
          const index = receiver.received.push(request) - 1;
          options.onRequest?.(request);
          pending.add(res);
          res.on('close', () => pending.delete(res));
          void (async () => {
            const decided = await receiver.answer(request, index);
            const final = 'hold' in decided ? await decided.hold : decided;
            if ('delayMs' in final && final.delayMs) await new Promise((resolve) => setTimeout(resolve, final.delayMs));
            if (res.destroyed) return;
            res.writeHead(final.status, 'headers' in final ? final.headers : undefined).end();
          })();
        });
      });
      server = created;
      return new Promise((resolve, reject) => {
        created.once('error', reject);
        created.listen(port, '127.0.0.1', () => resolve());
      });
    },
    async close() {
      const current = server;
      if (!current) return;
      server = null;
      // Down means down: pooled keep-alive connections must not keep reaching us.
      for (const res of pending) res.destroy();
      current.closeAllConnections();
      await new Promise<void>((resolve) => current.close(() => resolve()));
    },
  };
  if (options.listen !== false) await receiver.listen();
  return receiver;
}

/** The public keys of Tessera as a relying party fetches them. */
export async function fetchJwks(url: string): Promise<JSONWebKeySet> {
  const response = await fetch(`${url}/.well-known/jwks.json`);
  if (response.status !== 200) throw new Error(`JWKS answered ${response.status}`);
  return (await response.json()) as JSONWebKeySet;
}

/** The `logout_token` of a back-channel logout POST body. */
export function logoutTokenOf(request: ReceivedRequest): string {
  const token = new URLSearchParams(request.body).get('logout_token');
  if (!token) throw new Error(`no logout_token in ${request.body.slice(0, 80)}`);
  return token;
}

/** A verified logout token: its protected header and claims. */
export interface VerifiedLogoutToken {
  header: { alg: string; kid?: string; typ?: string };
  claims: JWTPayload & { sid?: string; events?: Record<string, unknown>; nonce?: unknown };
}

/**
 * Validates a logout token as OIDC Back-Channel Logout 1.0 §2.6 asks of a relying party,
 * with jose (the JOSE library openid-client itself builds on): signature against the JWKS
 * (no `none`), explicit type `logout+jwt`, `iss`, `aud`, `iat` and `exp` present, `sub` or
 * `sid`, the back-channel event as a JSON object, no `nonce`. Throws on the first failure.
 */
export async function verifyLogoutToken(token: string, jwks: JSONWebKeySet, expected: { issuer: string; audience: string }): Promise<VerifiedLogoutToken> {
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
    issuer: expected.issuer,
    audience: expected.audience,
    typ: 'logout+jwt',
    algorithms: ['EdDSA', 'ES256'],
    requiredClaims: ['iat', 'exp', 'jti'],
    // A logout token lives two minutes; allow a little clock skew, no more.
    clockTolerance: 5,
  });
  const claims = payload as VerifiedLogoutToken['claims'];
  if (typeof claims.sub !== 'string' && typeof claims.sid !== 'string') throw new Error('logout token has neither sub nor sid');
  const event = claims.events?.[BACKCHANNEL_EVENT];
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new Error('logout token lacks the back-channel logout event object');
  if ('nonce' in claims) throw new Error('logout token carries a nonce');
  return { header: protectedHeader as VerifiedLogoutToken['header'], claims };
}

/**
 * A second signature check that shares no code with jose (nor with Tessera, which signs
 * with jose): node:crypto over the JWS signing input with the JWK of the header's `kid`.
 */
export function verifySignatureWithNodeCrypto(token: string, jwks: JSONWebKeySet): boolean {
  const [h, p, s] = token.split('.');
  if (!h || !p || !s) return false;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg: string; kid?: string };
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return false;
  const key = createPublicKey({ key: jwk as NodeJwk, format: 'jwk' });
  const input = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s, 'base64url');
  if (header.alg === 'EdDSA') return verifySignature(null, input, key, signature);
  if (header.alg === 'ES256') return verifySignature('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature);
  return false;
}
