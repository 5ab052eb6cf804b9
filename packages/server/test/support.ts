import { ERROR_CATALOGUE, createManualClock, loadConfig, type ErrorCode, type Authority, type Config, type ManualClock, type RevocationEvent, type Store } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { buildServer, type BuildOptions } from '../src/app.js';
import type { TesseraApp } from '../src/context.js';
import type { Metrics } from '../src/metrics.js';

/**
 * Shared harness of the HTTP API tests: a server over a fresh in-memory SQLite store, a
 * bootstrap admin token, a manual clock, and helpers that drive the API the way clients do
 * (admin calls, app calls with Basic auth, the hosted login form with its CSRF cookie).
 */

/** The bootstrap admin token every test server accepts. */
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdefghijklmnop';
/** The manual clock starts here (2030-01-01T00:00:00Z). */
export const START = Date.UTC(2030, 0, 1);
/** The default issuer of the test configuration. */
export const ISSUER = 'http://127.0.0.1:4000';
/** A return URL that every test server allow-lists through `allowedReturnUrls`. */
export const SITE_RETURN = 'https://site.example/bye';
/** An origin registered by {@link createApp} unless told otherwise. */
export const SITE_ORIGIN = 'https://site.example';

export type Response = LightMyRequestResponse;

/** A test server and what it is made of. */
export interface TestServer {
  app: TesseraApp;
  authority: Authority;
  metrics: Metrics;
  store: Store;
  clock: ManualClock;
  config: Config;
  close(): Promise<void>;
}

/** Options of {@link createTestServer}. */
export interface TestServerOptions {
  /** Environment variables on top of the defaults (admin token, cookie.secure=false). */
  env?: Record<string, string>;
  /** Config-file object; shallow-merged over the defaults (rate limits off, SITE_RETURN allowed). */
  file?: Record<string, unknown>;
  logger?: BuildOptions['logger'];
  onRevoked?: BuildOptions['onRevoked'];
  /** Called with the app before `ready()` (to add a test hook). */
  beforeReady?: (app: TesseraApp) => void;
  /** A migrated store to use instead of a fresh in-memory SQLite one (see store-kinds.ts); closed with the server. */
  store?: Store;
  /** Called after the server and its store are closed (e.g. to drop a PostgreSQL schema). */
  afterClose?: () => Promise<void>;
}

/**
 * Builds a server over a fresh `:memory:` SQLite store. Rate limits are off unless
 * `file.rateLimit` turns them on: inject sends every request from 127.0.0.1, and tests of
 * other features must not trip over the login limit.
 */
export async function createTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const config = loadConfig({
    env: { TESSERA_ADMIN_TOKEN: ADMIN_TOKEN, TESSERA_COOKIE_SECURE: 'false', ...options.env },
    file: { rateLimit: { enabled: false }, allowedReturnUrls: [SITE_RETURN], ...options.file },
  });
  const store = options.store ?? createSqliteStore(':memory:');
  await store.migrate();
  const clock = createManualClock(START);
  const { app, authority, metrics } = await buildServer({ config, store, clock, logger: options.logger ?? false, onRevoked: options.onRevoked });
  options.beforeReady?.(app);
  await app.ready();
  return {
    app,
    authority,
    metrics,
    store,
    clock,
    config,
    async close() {
      await app.close();
      await store.close();
      await options.afterClose?.();
    },
  };
}

/** `Authorization: Bearer <token>`. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** `Authorization: Basic base64(client_id:client_secret)` (RFC 6749 §2.3.1 form-encoding). */
export function basicAuth(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

/** An admin API call with the bootstrap admin token. */
export function adminRequest(t: TestServer, method: InjectOptions['method'], url: string, payload?: object): Promise<Response> {
  return t.app.inject({ method, url: `/admin/api${url}`, headers: bearer(ADMIN_TOKEN), ...(payload === undefined ? {} : { payload }) });
}

/**
 * Asserts the error envelope: the stable code first, then the status, then the shape
 * `{"error", "message"}` with a non-empty message.
 */
export function expectError(res: Response, status: number, code: string): void {
  const body = res.json<{ error: unknown; message: unknown }>();
  expect(body.error).toBe(code);
  expect(res.statusCode).toBe(status);
  // The code is one of the closed catalogue, answered with the catalogue's status.
  expect(ERROR_CATALOGUE[code as ErrorCode]?.status, `${code} is a catalogue code`).toBe(status);
  expect(typeof body.message).toBe('string');
  expect((body.message as string).length).toBeGreaterThan(0);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

let counter = 0;
/** A fresh suffix for unique usernames and app names. */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${counter}`;
}

/** A user as the API shows it. */
export interface UserJson {
  id: string;
  username: string;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  picture: string | null;
  disabled: boolean;
  created_at: string;
  updated_at: string;
}

/** Creates a user through the admin API; returns it with its password. */
export async function createUser(t: TestServer, fields: Record<string, unknown> = {}): Promise<{ user: UserJson; password: string }> {
  const password = (fields.password as string | undefined) ?? 'correct horse battery staple';
  const res = await adminRequest(t, 'POST', '/users', { username: unique('user'), password, ...fields });
  expect(res.statusCode, res.body).toBe(201);
  return { user: res.json<{ user: UserJson }>().user, password };
}

/** An app as the API shows it. */
export interface AppJson {
  client_id: string;
  name: string;
  trusted: boolean;
  allowed_origins: string[];
  return_urls: string[];
  backchannel_logout_uri: string | null;
  connectors: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

/** A registered app with its one-time secret and ready-made Basic header. */
export interface TestApp {
  app: AppJson;
  clientId: string;
  clientSecret: string;
  basic: string;
}

/** Registers an app through the admin API (trusted, with SITE_ORIGIN, unless told otherwise). */
export async function createApp(t: TestServer, fields: Record<string, unknown> = {}): Promise<TestApp> {
  const res = await adminRequest(t, 'POST', '/apps', { name: unique('app'), trusted: true, allowed_origins: [SITE_ORIGIN], ...fields });
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json<{ app: AppJson; client_secret: string }>();
  return { app: body.app, clientId: body.app.client_id, clientSecret: body.client_secret, basic: basicAuth(body.app.client_id, body.client_secret) };
}

/** A session as the API shows it. */
export interface SessionJson {
  handle: string;
  user_id: string;
  ip: string | null;
  user_agent: string | null;
  created_at: string;
  last_seen_at: string;
  idle_expires_at: string;
  expires_at: string;
  apps: Array<{ client_id: string; joined_at: string; left_at: string | null }>;
  active: boolean;
  current?: boolean;
  ended_at: string | null;
  ended_by: string | null;
  end_reason: string | null;
}

/** A session started for a test, with its token. */
export interface TestSession {
  token: string;
  handle: string;
  session: SessionJson;
}

/** A trusted app starts a session for `userId` (POST /v1/sessions). */
export async function startAppSession(t: TestServer, app: TestApp, userId: string, userAgent = 'test-agent'): Promise<TestSession> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user_id: userId, device: { user_agent: userAgent } } });
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json<{ session: SessionJson; session_token: string }>();
  return { token: body.session_token, handle: body.session.handle, session: body.session };
}

/** A user with `devices` sessions, each started by an app for a different user agent. */
export async function createUserWithSessions(t: TestServer, devices: number, app?: TestApp): Promise<{ user: UserJson; password: string; app: TestApp; sessions: TestSession[] }> {
  const { user, password } = await createUser(t);
  const starter = app ?? (await createApp(t));
  const sessions: TestSession[] = [];
  for (let i = 0; i < devices; i += 1) sessions.push(await startAppSession(t, starter, user.id, `device-${i}`));
  return { user, password, app: starter, sessions };
}

/** GET /v1/whoami with the token in the given place; returns the status code. */
export async function whoamiStatus(t: TestServer, token: string, via: 'bearer' | 'header' | 'cookie' = 'bearer'): Promise<number> {
  const res = await t.app.inject({
    method: 'GET',
    url: '/v1/whoami',
    ...(via === 'bearer' ? { headers: bearer(token) } : via === 'header' ? { headers: { 'x-session-token': token } } : { cookies: { [t.config.cookie.name]: token } }),
  });
  return res.statusCode;
}

/** The whole revocation log. */
export function revocationLog(t: TestServer): Promise<RevocationEvent[]> {
  return t.store.listRevocations(0, 10_000);
}

/** A cookie set by a response, or undefined. */
export function setCookie(res: Response, name: string): Response['cookies'][number] | undefined {
  return res.cookies.find((c) => c.name === name);
}

/** The raw Set-Cookie header line for `name` (to check attribute spelling). */
export function rawSetCookie(res: Response, name: string): string | undefined {
  const header = res.headers['set-cookie'];
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [String(header)];
  return lines.find((line) => line.startsWith(`${name}=`));
}

/** The CSRF field and cookie of a freshly opened login form. */
export interface LoginForm {
  csrf: string;
  csrfCookie: string;
  page: Response;
}

/** Opens GET /login (optionally with `return_to`) and reads the CSRF field and cookie. */
export async function openLoginForm(t: TestServer, query: Record<string, string> = {}, cookies: Record<string, string> = {}): Promise<LoginForm> {
  const page = await t.app.inject({ method: 'GET', url: '/login', query, cookies });
  expect(page.statusCode, page.body).toBe(200);
  const field = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(page.body);
  const cookie = setCookie(page, 'tessera_csrf');
  expect(field, 'login form has a csrf field').not.toBeNull();
  expect(cookie, 'login form sets the csrf cookie').toBeDefined();
  return { csrf: field![1]!, csrfCookie: cookie!.value, page };
}

/** Options of {@link loginWithForm}. */
export interface LoginInput {
  username: string;
  password: string;
  returnTo?: string;
  clientId?: string;
  /** Cookies the browser already holds (e.g. a previous session cookie). */
  cookies?: Record<string, string>;
  userAgent?: string;
  remoteAddress?: string;
}

/**
 * Signs in through the hosted form like a browser: GET /login for the CSRF field and
 * cookie, then POST the form with both. Returns the POST response and the session token
 * from its Set-Cookie (null when none was set).
 */
export async function loginWithForm(t: TestServer, input: LoginInput): Promise<{ res: Response; token: string | null }> {
  const form = await openLoginForm(t, input.returnTo ? { return_to: input.returnTo } : {}, input.cookies ?? {});
  const res = await postLogin(t, {
    fields: { username: input.username, password: input.password, csrf: form.csrf, ...(input.returnTo ? { return_to: input.returnTo } : {}), ...(input.clientId ? { client_id: input.clientId } : {}) },
    cookies: { ...input.cookies, tessera_csrf: form.csrfCookie },
    userAgent: input.userAgent,
    remoteAddress: input.remoteAddress,
  });
  const cookie = setCookie(res, t.config.cookie.name);
  return { res, token: cookie && cookie.value !== '' ? cookie.value : null };
}

/** A new user signs in through the login form; returns the browser's session token. */
export async function signIn(t: TestServer): Promise<string> {
  const { user, password } = await createUser(t);
  const { token } = await loginWithForm(t, { username: user.username, password });
  expect(token).not.toBeNull();
  return token!;
}

/** POST /login with a form-encoded body, exactly as given. */
export function postLogin(t: TestServer, input: { fields: Record<string, string>; cookies?: Record<string, string>; userAgent?: string | undefined; remoteAddress?: string | undefined }): Promise<Response> {
  return t.app.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(input.userAgent ? { 'user-agent': input.userAgent } : {}) },
    payload: new URLSearchParams(input.fields).toString(),
    cookies: input.cookies ?? {},
    ...(input.remoteAddress ? { remoteAddress: input.remoteAddress } : {}),
  });
}

/** The path and query of an absolute URL (to inject a URL the server handed out). */
export function pathOf(url: string): string {
  const parsed = new URL(url);
  return parsed.pathname + parsed.search;
}

/** GET /v1/logout/browser for a session; returns the logout URL and token. */
export async function requestLogoutUrl(t: TestServer, token: string, returnTo?: string): Promise<{ logoutUrl: string; logoutToken: string }> {
  const res = await t.app.inject({ method: 'GET', url: '/v1/logout/browser', headers: bearer(token), ...(returnTo === undefined ? {} : { query: { return_to: returnTo } }) });
  expect(res.statusCode, res.body).toBe(200);
  const body = res.json<{ logout_url: string; logout_token: string }>();
  return { logoutUrl: body.logout_url, logoutToken: body.logout_token };
}

/** The session record behind a handle, straight from the store. */
export async function storedSession(t: TestServer, handle: string) {
  const session = await t.store.findSessionByHandle(handle);
  expect(session, `session ${handle} exists`).not.toBeNull();
  return session!;
}
