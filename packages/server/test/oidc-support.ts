// Harness of the OpenID Provider tests: a real Tessera node (startServer, SQLite file, the
// outbox worker running) on 127.0.0.1, a browser with a cookie jar that fills in the hosted
// login page, and back-channel logout receivers that check logout tokens as a relying party
// must (Back-Channel Logout 1.0 §2.6). The relying party itself is openid-client, unmocked.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer } from 'node:net';
import { createManualClock, loadConfig, type Authority, type ManualClock } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { buildServer, readConfig, startServer, type RunningServer } from '../src/index.js';

export const OIDC_ADMIN_TOKEN = `oidc-test-admin-${'y'.repeat(40)}`;

/** A running Tessera node and admin helpers. */
export interface OidcNode {
  url: string;
  close(): Promise<void>;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  createUser(username: string, password: string, extra?: Record<string, unknown>): Promise<string>;
  createClient(metadata: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string }>;
}

export async function startOidcNode(env: Record<string, string> = {}): Promise<OidcNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-oidc-'));
  const running: RunningServer = await startServer(readConfig({
    TESSERA_PORT: '0',
    TESSERA_HOST: '127.0.0.1',
    TESSERA_DATA_DIR: dataDir,
    TESSERA_ADMIN_TOKEN: OIDC_ADMIN_TOKEN,
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_RATE_LIMIT: 'false',
    TESSERA_LOG_LEVEL: 'silent',
    ...env,
  }), { print: () => undefined });
  return nodeAt(running.url, async () => {
    await running.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
}

/** A running Tessera node whose clock the test moves (expiry without waiting), and its core. */
export interface ClockedNode extends OidcNode {
  clock: ManualClock;
  authority: Authority;
}

/**
 * The same Tessera over real HTTP (the app of startServer: buildServer, a SQLite file, the
 * outbox worker running, listening on 127.0.0.1), with a manual clock that starts at the
 * real time: a test moves it past a code's expiry or a session's deadline instead of
 * waiting. The sweeper is not started; a test calls what it runs (sessions.sweepExpired).
 */
export async function startClockedNode(file: Record<string, unknown> = {}): Promise<ClockedNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-oidc-'));
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as { port: number };
      probe.close(() => resolve(free));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    env: { TESSERA_ADMIN_TOKEN: OIDC_ADMIN_TOKEN, TESSERA_COOKIE_SECURE: 'false' },
    file: { issuer: url, port, host: '127.0.0.1', rateLimit: { enabled: false }, ...file },
  });
  const store = createSqliteStore(join(dataDir, 'tessera.db'));
  await store.migrate();
  const clock = createManualClock(Date.now());
  const { app, authority } = await buildServer({ config, store, clock, logger: false, startWorker: true });
  await app.listen({ port, host: '127.0.0.1' });
  const node = nodeAt(url, async () => {
    await app.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { ...node, clock, authority };
}

function nodeAt(url: string, close: () => Promise<void>): OidcNode {
  const node: OidcNode = {
    url,
    close,
    async admin(method, path, body) {
      const response = await fetch(`${url}/admin/api${path}`, {
        method,
        headers: { authorization: `Bearer ${OIDC_ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : null) as never };
    },
    async createUser(username, password, extra = {}) {
      const { status, body } = await node.admin<{ user: { id: string } }>('POST', '/users', { username, password, ...extra });
      if (status !== 201) throw new Error(`createUser: ${status}`);
      return body.user.id;
    },
    async createClient(metadata) {
      const { status, body } = await node.admin<{ app: { client_id: string }; client_secret: string }>('POST', '/apps', metadata);
      if (status !== 201) throw new Error(`createClient: ${status} ${JSON.stringify(body)}`);
      return { clientId: body.app.client_id, clientSecret: body.client_secret };
    },
  };
  return node;
}

/** One HTTP response as a browser sees it (redirects not followed). */
export interface Hop {
  status: number;
  location: string | null;
  body: string;
  headers: Headers;
}

/**
 * A browser: a cookie jar per origin (name → value; enough for Tessera's host-only cookies
 * and paths under /), requests without automatic redirects so each hop can be inspected.
 */
export class Browser {
  readonly jar = new Map<string, Map<string, string>>();

  private cookiesFor(url: URL): string {
    const jar = this.jar.get(url.origin);
    return jar ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }

  private store(url: URL, headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const jar = this.jar.get(url.origin) ?? new Map<string, string>();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a)) || value === '';
      if (expired) jar.delete(name);
      else jar.set(name, value);
      this.jar.set(url.origin, jar);
    }
  }

  cookie(origin: string, name: string): string | undefined {
    return this.jar.get(origin)?.get(name);
  }

  async request(method: 'GET' | 'POST', target: string, form?: Record<string, string>): Promise<Hop> {
    const url = new URL(target);
    const cookie = this.cookiesFor(url);
    const response = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    this.store(url, response.headers);
    const location = response.headers.get('location');
    return { status: response.status, location: location ? new URL(location, url).toString() : null, body: await response.text(), headers: response.headers };
  }

  /**
   * Follows 303s on `origin` (Tessera) and stops at the first hop that leaves it (the
   * client's redirect URI) or that is a page (the login form, consent, an error).
   */
  async follow(target: string, origin: string, form?: Record<string, string>, method: 'GET' | 'POST' = form ? 'POST' : 'GET'): Promise<{ hop: Hop; url: string }> {
    let url = target;
    let hop = await this.request(method, url, form);
    for (let i = 0; i < 10 && hop.location && hop.status >= 300 && hop.status < 400; i++) {
      if (new URL(hop.location).origin !== origin) return { hop, url };
      url = hop.location;
      hop = await this.request('GET', url);
    }
    return { hop, url };
  }
}

/** The hidden fields of the first form of a page (CSRF token and carried parameters). */
export function formFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const unescape = (v: string) => v.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[unescape(match[1]!)] = unescape(match[2]!);
  return fields;
}

/**
 * Signs in through the hosted login page: from an authorize URL to the hop that leaves
 * Tessera (the redirect to the client), or the page Tessera stops at (consent).
 */
export async function signInThrough(browser: Browser, authorizeUrl: string, origin: string, username: string, password: string): Promise<{ hop: Hop; url: string }> {
  const first = await browser.follow(authorizeUrl, origin);
  if (!first.url.startsWith(`${origin}/login`) || first.hop.status !== 200) return first;
  return browser.follow(`${origin}/login`, origin, { ...formFields(first.hop.body), username, password });
}

/** A logout token as a relying party accepted it. */
export interface ReceivedLogout {
  claims: JWTPayload & { sid?: string; events?: Record<string, unknown> };
}

/** A back-channel logout endpoint of one client, validating tokens per §2.6. */
export interface Receiver {
  uri: string;
  received: ReceivedLogout[];
  rejected: string[];
  close(): Promise<void>;
}

/**
 * Back-Channel Logout 1.0 §2.6, as a relying party validates: signature with the issuer's
 * JWKS (the algorithm the client expects), iss, aud = its client_id, iat present, `typ`
 * logout+jwt, the back-channel event, sub or sid (sid when the client registered
 * backchannel_logout_session_required: `sessionRequired`), no nonce; jti replay refused.
 * `now` is the relying party's clock (a test's manual clock shared with the OP's).
 */
export async function startReceiver(issuer: string, clientId: () => string, algorithms: string[], port = 0, options: { sessionRequired?: boolean; now?: () => number } = {}): Promise<Receiver> {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
  const received: ReceivedLogout[] = [];
  const rejected: string[] = [];
  const seen = new Set<string>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      void (async () => {
        try {
          if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-www-form-urlencoded') throw new Error('not a form POST');
          const token = new URLSearchParams(body).get('logout_token');
          if (!token) throw new Error('no logout_token');
          const { payload } = await jwtVerify(token, jwks, { issuer, audience: clientId(), typ: 'logout+jwt', algorithms, requiredClaims: ['iat', 'exp', 'jti'], ...(options.now ? { currentDate: new Date(options.now()) } : {}) });
          const events = payload.events as Record<string, unknown> | undefined;
          if (!events || typeof events['http://schemas.openid.net/event/backchannel-logout'] !== 'object') throw new Error('no back-channel event');
          if (payload.sub === undefined && payload.sid === undefined) throw new Error('neither sub nor sid');
          // §2.4: a client that registered backchannel_logout_session_required needs sid.
          if (options.sessionRequired && typeof payload.sid !== 'string') throw new Error('no sid, but the client requires it');
          if ('nonce' in payload) throw new Error('nonce present');
          if (seen.has(payload.jti!)) throw new Error('jti replayed');
          seen.add(payload.jti!);
          received.push({ claims: payload as ReceivedLogout['claims'] });
          res.writeHead(200, { 'cache-control': 'no-store' }).end();
        } catch (error) {
          rejected.push((error as Error).message);
          res.writeHead(400).end();
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    uri: `http://127.0.0.1:${address.port}/backchannel`,
    received,
    rejected,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** Waits until `check` holds (polling), or fails after `timeoutMs` with `what`. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
