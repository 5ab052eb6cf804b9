// logout() against a real Tessera node (startServer, port 0, temp SQLite dir). Node's fetch
// has no cookie jar and sends no Origin, so each test passes a fetch that adds what a browser
// on the app's page would: `Origin` and the `tessera_session` cookie.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig, startServer, type RunningServer } from '@tessera/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logout, TesseraBrowserError, type FetchLike } from '../src/index.js';

const ADMIN_TOKEN = `browser-test-admin-${'x'.repeat(40)}`;
const APP_ORIGIN = 'http://app.example';

let server: RunningServer;
let dataDir: string;
let issuer: string;
let basic: string;
let userId: string;

async function call<T>(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${issuer}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

/** A fresh Tessera session for the test user; returns its session token. */
async function startSession(): Promise<string> {
  const started = await call<{ session_token: string }>('POST', '/v1/sessions', { authorization: basic }, { user_id: userId });
  expect(started.status).toBe(201);
  return started.body.session_token;
}

async function whoamiStatus(sessionToken: string): Promise<number> {
  return (await call('GET', '/v1/whoami', { cookie: `tessera_session=${sessionToken}` })).status;
}

interface Sent { url: string; init: RequestInit | undefined }

/** Stands in for the browser: adds Origin and (optionally) the session cookie; records what logout() sent. */
function browserFetch(options: { origin?: string; sessionToken?: string; sent?: Sent[]; dropHeader?: string } = {}): FetchLike {
  return (input, init) => {
    options.sent?.push({ url: String(input), init });
    const headers = new Headers(init?.headers);
    headers.set('origin', options.origin ?? APP_ORIGIN);
    if (options.sessionToken) headers.set('cookie', `tessera_session=${options.sessionToken}`);
    if (options.dropHeader) headers.delete(options.dropHeader);
    return fetch(input, { ...init, headers });
  };
}

async function rejection(promise: Promise<unknown>): Promise<TesseraBrowserError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(TesseraBrowserError);
  return error as TesseraBrowserError;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-browser-'));
  server = await startServer(readConfig({
    TESSERA_PORT: '0',
    TESSERA_HOST: '127.0.0.1',
    TESSERA_DATA_DIR: dataDir,
    TESSERA_ADMIN_TOKEN: ADMIN_TOKEN,
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_RATE_LIMIT: 'false',
    TESSERA_LOG_LEVEL: 'silent',
  }), { print: () => undefined });
  issuer = server.url;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const app = await call<{ app: { client_id: string }; client_secret: string }>('POST', '/admin/api/apps', admin, { name: 'site', trusted: true, allowed_origins: [APP_ORIGIN] });
  expect(app.status).toBe(201);
  basic = `Basic ${Buffer.from(`${encodeURIComponent(app.body.app.client_id)}:${encodeURIComponent(app.body.client_secret)}`).toString('base64')}`;
  const user = await call<{ user: { id: string } }>('POST', '/admin/api/users', admin, { username: 'alice', email: 'alice@example.com', password: 'a long enough password' });
  expect(user.status).toBe(201);
  userId = user.body.user.id;
});

afterAll(async () => {
  await server?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('logout() with the session cookie and X-Tessera-CSRF', () => {
  it('ends the session (204), then resolves again when already logged out (401)', async () => {
    const token = await startSession();
    expect(await whoamiStatus(token)).toBe(200);
    const sent: Sent[] = [];

    await expect(logout({ issuer, fetch: browserFetch({ sessionToken: token, sent }) })).resolves.toEqual({ loggedOut: true, alreadyLoggedOut: false });
    expect(await whoamiStatus(token)).toBe(401);

    // The same page clicking "log out" again: the cookie names an ended session, Tessera
    // answers 401, and that is still a successful logout.
    await expect(logout({ issuer, fetch: browserFetch({ sessionToken: token, sent }) })).resolves.toEqual({ loggedOut: true, alreadyLoggedOut: true });
    // No cookie at all (it was cleared): also already logged out.
    await expect(logout({ issuer, fetch: browserFetch({ sent }) })).resolves.toEqual({ loggedOut: true, alreadyLoggedOut: true });

    // What a browser needs that the server cannot check here: the cookie must be sent cross-origin.
    expect(sent[0]?.url).toBe(`${issuer}/v1/logout`);
    expect(sent[0]?.init?.method).toBe('POST');
    expect(sent[0]?.init?.credentials).toBe('include');
    expect(new Headers(sent[0]?.init?.headers).get('x-tessera-csrf')).toBe('1');
  });

  it('accepts an issuer with a trailing slash', async () => {
    const token = await startSession();
    await expect(logout({ issuer: `${issuer}/`, fetch: browserFetch({ sessionToken: token }) })).resolves.toEqual({ loggedOut: true, alreadyLoggedOut: false });
    expect(await whoamiStatus(token)).toBe(401);
  });

  it('throws ORIGIN_NOT_ALLOWED (403) from an unregistered origin and leaves the session alone', async () => {
    const token = await startSession();
    const error = await rejection(logout({ issuer, fetch: browserFetch({ origin: 'http://evil.example', sessionToken: token }) }));
    expect(error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(error.status).toBe(403);
    expect(await whoamiStatus(token)).toBe(200);
  });

  it('throws ORIGIN_NOT_ALLOWED when no Origin is sent at all', async () => {
    const token = await startSession();
    const noOrigin: FetchLike = (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('cookie', `tessera_session=${token}`);
      return fetch(input, { ...init, headers });
    };
    const error = await rejection(logout({ issuer, fetch: noOrigin }));
    expect(error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(await whoamiStatus(token)).toBe(200);
  });

  it('surfaces CSRF_FAILED (403) when the CSRF header is stripped on the way', async () => {
    const token = await startSession();
    const error = await rejection(logout({ issuer, fetch: browserFetch({ sessionToken: token, dropHeader: 'x-tessera-csrf' }) }));
    expect(error.code).toBe('CSRF_FAILED');
    expect(error.status).toBe(403);
    expect(await whoamiStatus(token)).toBe(200);
  });
});

describe('logout() with a logout token', () => {
  async function logoutTokenFor(sessionToken: string): Promise<string> {
    const issued = await call<{ logout_token: string }>('GET', '/v1/logout/browser', { cookie: `tessera_session=${sessionToken}` });
    expect(issued.status).toBe(200);
    return issued.body.logout_token;
  }

  it('ends the session without any cookie (third-party cookies blocked), sending the token as JSON', async () => {
    const token = await startSession();
    const logoutToken = await logoutTokenFor(token);
    const sent: Sent[] = [];
    await expect(logout({ issuer, logoutToken, fetch: browserFetch({ sent }) })).resolves.toEqual({ loggedOut: true, alreadyLoggedOut: false });
    expect(await whoamiStatus(token)).toBe(401);
    expect(sent[0]?.init?.credentials).toBe('include');
    expect(new Headers(sent[0]?.init?.headers).get('content-type')).toBe('application/json');
    expect(JSON.parse(String(sent[0]?.init?.body))).toEqual({ logout_token: logoutToken });
  });

  it('throws LOGOUT_TOKEN_INVALID (403) for a spent or unknown token', async () => {
    const token = await startSession();
    const logoutToken = await logoutTokenFor(token);
    await logout({ issuer, logoutToken, fetch: browserFetch() });
    const spent = await rejection(logout({ issuer, logoutToken, fetch: browserFetch() }));
    expect(spent.code).toBe('LOGOUT_TOKEN_INVALID');
    expect(spent.status).toBe(403);

    const other = await startSession();
    const unknown = await rejection(logout({ issuer, logoutToken: 'not-a-logout-token', fetch: browserFetch({ sessionToken: other }) }));
    expect(unknown.code).toBe('LOGOUT_TOKEN_INVALID');
    // A bad logout token never falls back to the cookie.
    expect(await whoamiStatus(other)).toBe(200);
  });

  it('throws ORIGIN_NOT_ALLOWED from an unregistered origin even with a valid token', async () => {
    const token = await startSession();
    const logoutToken = await logoutTokenFor(token);
    const error = await rejection(logout({ issuer, logoutToken, fetch: browserFetch({ origin: 'http://evil.example' }) }));
    expect(error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(await whoamiStatus(token)).toBe(200);
  });
});

describe('logout() failures without a Tessera answer', () => {
  it('throws NETWORK_ERROR when nothing listens at the issuer', async () => {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
      });
    });
    const error = await rejection(logout({ issuer: `http://127.0.0.1:${port}`, fetch: browserFetch() }));
    expect(error.code).toBe('NETWORK_ERROR');
    expect(error.status).toBeNull();
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('passes through the stable code of other errors (429 RATE_LIMITED)', async () => {
    const limited: FetchLike = async () => Response.json({ statusCode: 429, error: 'RATE_LIMITED', message: 'Too many requests; retry in 60 s.' }, { status: 429 });
    const error = await rejection(logout({ issuer, fetch: limited }));
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.status).toBe(429);
    expect(error.message).toBe('Too many requests; retry in 60 s.');
  });

  it('throws UNEXPECTED_RESPONSE for a body that is not a Tessera error, and for a 200 (wrong issuer URL)', async () => {
    const proxyPage: FetchLike = async () => new Response('<h1>Bad gateway</h1>', { status: 502, headers: { 'content-type': 'text/html' } });
    const bad = await rejection(logout({ issuer, fetch: proxyPage }));
    expect(bad.code).toBe('UNEXPECTED_RESPONSE');
    expect(bad.status).toBe(502);

    const foreign: FetchLike = async () => Response.json({ error: 'free text from somewhere else' }, { status: 500 });
    expect((await rejection(logout({ issuer, fetch: foreign }))).code).toBe('UNEXPECTED_RESPONSE');

    const spaFallback: FetchLike = async () => new Response('<!doctype html><title>app</title>', { status: 200 });
    const ok200 = await rejection(logout({ issuer, fetch: spaFallback }));
    expect(ok200.code).toBe('UNEXPECTED_RESPONSE');
    expect(ok200.status).toBe(200);
  });

  it('rejects a missing issuer with a TypeError (programmer error), before any request', async () => {
    let calls = 0;
    const counting: FetchLike = async () => {
      calls++;
      return new Response(null, { status: 204 });
    };
    await expect(logout({ issuer: '', fetch: counting })).rejects.toBeInstanceOf(TypeError);
    await expect(logout(undefined as unknown as { issuer: string })).rejects.toBeInstanceOf(TypeError);
    expect(calls).toBe(0);
  });
});
