// One suite, five adapters (Express, Fastify, Koa, Hono, node:http), one real Tessera node.
// Every case goes over HTTP to the adapter, which verifies against Tessera's JWKS and feed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tessera } from '../src/index.js';
import { ADAPTERS, mountAdapter, type Mounted } from './support/adapters.js';
import { claimsOf, foreignKeyToken, hmacWithPublicKey, kidOf, oversizedToken, unsignedToken } from './support/forge.js';
import { clientFor, eventually, startTesseraServer, type TestApp, type TesseraServer } from './support/tessera-server.js';

let server: TesseraServer;
let app: TestApp;
let other: TestApp;
let userId: string;
let main: Tessera;
let late: Tessera;
let noFeed: Tessera;
let otherClient: Tessera;
let publicX: string;

beforeAll(async () => {
  server = await startTesseraServer();
  app = await server.createApp('site');
  other = await server.createApp('shop');
  userId = await server.createUser('alice');
  main = clientFor(server, app);
  // The same app an hour from now: every token it sees has expired.
  late = clientFor(server, app, { now: () => Date.now() + 3_600_000, feed: { enabled: false } });
  // No feed: only strict mode (introspection) can see a revocation.
  noFeed = clientFor(server, app, { feed: { enabled: false } });
  otherClient = clientFor(server, other, { feed: { enabled: false } });
  await main.start();
  const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ x: string }> };
  publicX = jwks.keys[0]!.x;
});

afterAll(async () => {
  await Promise.all([main, late, noFeed, otherClient].map((c) => c?.close()));
  await server?.close();
});

/** A fresh session of alice and this app's access token for it. */
async function freshToken(as: Tessera = main): Promise<{ token: string; handle: string }> {
  const session = await server.startSession(app, userId);
  const tokens = await as.exchange(session.token);
  expect(tokens.sid).toBe(session.handle);
  return { token: tokens.accessToken, handle: session.handle };
}

describe.each(ADAPTERS)('$name adapter', (adapter) => {
  let mounted: Mounted;

  beforeAll(async () => {
    mounted = await mountAdapter(adapter, [
      { path: '/me', tessera: main },
      { path: '/me-cookie', tessera: main, options: { cookie: 'app_at' } },
      { path: '/me-late', tessera: late },
      { path: '/me-nofeed', tessera: noFeed },
      { path: '/me-strict', tessera: noFeed, options: { strict: { cacheMs: 0 } } },
    ]);
  });
  afterAll(async () => mounted?.close());

  async function get(path: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${mounted.url}${path}`, { headers });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: JSON.parse(text) as Record<string, unknown> };
  }
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  async function expectRejected(path: string, headers: Record<string, string>, code: string, status = 401) {
    const handledBefore = mounted.handled();
    const res = await get(path, headers);
    expect(mounted.handled(), 'the route handler must not run').toBe(handledBefore);
    expect(res.body.error).toBe(code);
    expect(res.status).toBe(status);
    expect(typeof res.body.message).toBe('string');
    expect(res.headers.get('cache-control')).toBe('no-store');
    return res;
  }

  it('answers 200 with the verified session for a valid bearer token', async () => {
    const { token, handle } = await freshToken();
    const res = await get('/me', bearer(token));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sub: userId, sid: handle, aud: app.clientId, jti: claimsOf(token).jti });
  });

  it('answers 401 TOKEN_MISSING without a token, with a bare Bearer challenge', async () => {
    const res = await expectRejected('/me', {}, 'TOKEN_MISSING');
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    await expectRejected('/me', { authorization: 'Basic dXNlcjpwYXNz' }, 'TOKEN_MISSING');
  });

  it('answers 401 TOKEN_MALFORMED for garbage, with an invalid_token challenge', async () => {
    const res = await expectRejected('/me', bearer('garbage'), 'TOKEN_MALFORMED');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    await expectRejected('/me', bearer('a.b.c'), 'TOKEN_MALFORMED');
    await expectRejected('/me', bearer('e30.e30.!!!'), 'TOKEN_MALFORMED');
    await expectRejected('/me', bearer(`${'%'.repeat(50)}.x.y`), 'TOKEN_MALFORMED');
  });

  it('answers 401 TOKEN_EXPIRED for a token past its exp', async () => {
    const { token } = await freshToken();
    await expectRejected('/me-late', bearer(token), 'TOKEN_EXPIRED');
  });

  it('answers 401 TOKEN_WRONG_AUDIENCE for a token of another app', async () => {
    const session = await server.startSession(app, userId);
    const { accessToken } = await otherClient.exchange(session.token);
    await expectRejected('/me', bearer(accessToken), 'TOKEN_WRONG_AUDIENCE');
  });

  it('answers 401 TOKEN_INVALID_SIGNATURE for a token signed with a foreign key (known or unknown kid)', async () => {
    const { token } = await freshToken();
    await expectRejected('/me', bearer(await foreignKeyToken(claimsOf(token), kidOf(token))), 'TOKEN_INVALID_SIGNATURE');
    await expectRejected('/me', bearer(await foreignKeyToken(claimsOf(token), 'not-a-tessera-kid')), 'TOKEN_INVALID_SIGNATURE');
    // A real signature on altered claims.
    const [header, , signature] = token.split('.');
    const altered = Buffer.from(JSON.stringify({ ...claimsOf(token), sub: 'mallory' })).toString('base64url');
    await expectRejected('/me', bearer(`${header}.${altered}.${signature}`), 'TOKEN_INVALID_SIGNATURE');
  });

  it('answers 401 ALG_NOT_ALLOWED for alg none and for HS256 keyed with the public key', async () => {
    const { token } = await freshToken();
    await expectRejected('/me', bearer(unsignedToken(claimsOf(token))), 'ALG_NOT_ALLOWED');
    await expectRejected('/me', bearer(await hmacWithPublicKey(claimsOf(token), publicX, kidOf(token))), 'ALG_NOT_ALLOWED');
  });

  it('answers 401 TOKEN_TOO_LARGE for a token over 8 KB', async () => {
    const { token } = await freshToken();
    await expectRejected('/me', bearer(oversizedToken(claimsOf(token))), 'TOKEN_TOO_LARGE');
  });

  it('answers 401 TOKEN_REVOKED shortly after the session is ended', async () => {
    const { token, handle } = await freshToken();
    expect((await get('/me', bearer(token))).status).toBe(200);
    await server.revokeSession(handle);
    const seen = await eventually(async () => (await get('/me', bearer(token))).body.error === 'TOKEN_REVOKED');
    expect(seen).toBe(true);
    await expectRejected('/me', bearer(token), 'TOKEN_REVOKED');
  });

  it('reads the token from the configured cookie; the bearer header wins over it', async () => {
    const { token, handle } = await freshToken();
    const ok = await get('/me-cookie', { cookie: `theme=dark; app_at=${token}; other=1` });
    expect(ok.status).toBe(200);
    expect(ok.body.sid).toBe(handle);
    await expectRejected('/me', { cookie: `app_at=${token}` }, 'TOKEN_MISSING');
    await expectRejected('/me-cookie', { cookie: 'app_at=garbage' }, 'TOKEN_MALFORMED');
    await expectRejected('/me-cookie', { ...bearer('garbage'), cookie: `app_at=${token}` }, 'TOKEN_MALFORMED');
  });

  it('strict mode rejects a revoked token at once, where local verification alone cannot', async () => {
    const { token, handle } = await freshToken(noFeed);
    expect((await get('/me-strict', bearer(token))).status).toBe(200);
    await server.revokeSession(handle);
    await expectRejected('/me-strict', bearer(token), 'TOKEN_REVOKED');
    // Without the feed and without strict mode the signature is all there is to check.
    expect((await get('/me-nofeed', bearer(token))).status).toBe(200);
  });
});

describe('authenticateRequestNow: the answer without waiting, when it is already known', () => {
  const headersOf = (token: string) => ({ authorization: `Bearer ${token}` });

  it('answers only for a token verified before, and then exactly as authenticateRequest does', async () => {
    const { token, handle } = await freshToken();
    expect(main.authenticateRequestNow({ headers: headersOf(token) }), 'a new token needs verification').toBeUndefined();
    const verified = await main.authenticateRequest({ headers: headersOf(token) });
    expect(verified.ok).toBe(true);
    expect(main.authenticateRequestNow({ headers: headersOf(token) })).toEqual(verified);
    expect(main.authenticateRequestNow({ headers: {} })).toMatchObject({ ok: false, status: 401, body: { error: 'TOKEN_MISSING' } });
    // strict needs the network on every call (within its microcache): never answered here.
    expect(main.authenticateRequestNow({ headers: headersOf(token) }, { strict: true })).toBeUndefined();

    await server.revokeSession(handle);
    expect(await eventually(async () => main.authenticateRequestNow({ headers: headersOf(token) })?.ok === false)).toBe(true);
    const revoked = main.authenticateRequestNow({ headers: headersOf(token) });
    expect(revoked).toMatchObject({ ok: false, status: 401, body: { error: 'TOKEN_REVOKED' } });
    expect(await main.authenticateRequest({ headers: headersOf(token) })).toMatchObject({ ok: false, body: { error: 'TOKEN_REVOKED' } });
  });

  it('does not answer while the revocation set is not current, nor after close', async () => {
    const { token } = await freshToken();
    // A client whose feed can never connect (its secret is refused): its set may miss
    // revocations, so the policy (the async path) decides every time, here fail-closed.
    const refused = clientFor(server, { clientId: app.clientId, clientSecret: 'wrong-secret' }, { feed: { startupWaitMs: 0, onUnavailable: 'fail-closed' } });
    try {
      for (let i = 0; i < 2; i++) {
        expect(await refused.authenticateRequest({ headers: headersOf(token) })).toMatchObject({ ok: false, status: 503, body: { error: 'FEED_UNAVAILABLE' } });
        expect(refused.authenticateRequestNow({ headers: headersOf(token) })).toBeUndefined();
      }
    } finally {
      await refused.close();
    }
    // Closed: nothing is answered at once; the async path says CLOSED.
    const closing = clientFor(server, app, { feed: { enabled: false } });
    expect((await closing.authenticateRequest({ headers: headersOf(token) })).ok).toBe(true);
    expect(closing.authenticateRequestNow({ headers: headersOf(token) })?.ok).toBe(true);
    await closing.close();
    expect(closing.authenticateRequestNow({ headers: headersOf(token) })).toBeUndefined();
    await expect(closing.verify(token)).rejects.toMatchObject({ code: 'CLOSED' });
    // With the feed off by configuration, a verified token is answered at once.
    const { token: other } = await freshToken(noFeed);
    expect((await noFeed.authenticateRequest({ headers: headersOf(other) })).ok).toBe(true);
    expect(noFeed.authenticateRequestNow({ headers: headersOf(other) })?.ok).toBe(true);
  });
});

describe('node:http withSession: a failing handler becomes a 500 on both paths', () => {
  it('answers 500 INTERNAL and reports the error, whether the token was new (async path) or known (sync path)', async () => {
    const { withSession } = await import('../src/node.js');
    const { createServer } = await import('node:http');
    const errors: unknown[] = [];
    let mode: 'throw' | 'reject' = 'throw';
    const server2 = createServer(withSession(main, () => {
      if (mode === 'throw') throw new Error('boom');
      return Promise.reject(new Error('later boom'));
    }, { onError: (error) => errors.push(error) }));
    await new Promise<void>((resolve) => server2.listen(0, '127.0.0.1', resolve));
    const { port } = server2.address() as { port: number };
    try {
      const { token } = await freshToken();
      for (const next of ['throw', 'throw', 'reject', 'reject'] as const) {
        mode = next;
        const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(500);
        expect(await res.json()).toEqual({ error: 'INTERNAL', message: 'An internal error occurred.' });
      }
      expect(errors.map((e) => (e as Error).message)).toEqual(['boom', 'boom', 'later boom', 'later boom']);
    } finally {
      await new Promise((resolve) => server2.close(resolve));
    }
  });
});
