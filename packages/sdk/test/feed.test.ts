// The revocation feed follower against a real Tessera node: order, catch-up, resume after a
// dropped connection and after a server restart (no entry lost or repeated), the heartbeat
// watchdog, the unreachable-feed policies, and ageing out of the revocation set.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RevocationEvent, Tessera } from '../src/index.js';
import type { FetchLike } from '../src/internal/api-client.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';
import { codeOf } from './support/outcome.js';
import { clientFor, eventually, startTesseraServer, type TestApp, type TesseraServer } from './support/tessera-server.js';

let server: TesseraServer;
let app: TestApp;
let userId: string;
const clients: Tessera[] = [];

function track(client: Tessera): Tessera {
  clients.push(client);
  return client;
}

beforeAll(async () => {
  server = await startTesseraServer();
  app = await server.createApp('forum');
  userId = await server.createUser('bob');
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => server?.close());

/** `n` fresh sessions of bob, with an access token each (exchanged by `client`). */
async function sessions(client: Tessera, n: number): Promise<Array<{ handle: string; token: string }>> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const s = await server.startSession(app, userId);
    out.push({ handle: s.handle, token: (await client.exchange(s.token)).accessToken });
  }
  return out;
}

function collect(client: Tessera): RevocationEvent[] {
  const events: RevocationEvent[] = [];
  client.on('revoked', (e) => events.push(e));
  return events;
}

/** Asserts every log entry was delivered exactly once, in order. */
async function expectWholeLog(events: RevocationEvent[]): Promise<void> {
  const log = await server.revocationCursors(app);
  const seen = events.map((e) => e.cursor);
  expect(seen).toEqual(log);
  expect(log).toEqual(Array.from({ length: log.length }, (_, i) => log[0]! + i));
}

describe('following the feed', () => {
  it('delivers revocations in log order with their fields', async () => {
    const client = track(clientFor(server, app));
    await client.start();
    const events = collect(client);
    const list = await sessions(client, 5);
    for (const s of list) await server.revokeSession(s.handle);
    expect(await eventually(() => events.length === 5)).toBe(true);
    expect(events.map((e) => e.sid)).toEqual(list.map((s) => s.handle));
    const cursors = events.map((e) => e.cursor);
    expect([...cursors].sort((a, b) => a - b)).toEqual(cursors);
    for (const e of events) {
      expect(e).toMatchObject({ sub: userId, reason: 'admin_revoked', app: null });
      expect(e.forgetAfter.getTime()).toBeGreaterThan(e.at.getTime());
    }
    expect(client.feedStatus()).toMatchObject({ state: 'connected', caughtUp: true, cursor: cursors.at(-1) });
  });

  it('start() resolves only once the log written before it is in the set', async () => {
    const issuer = track(clientFor(server, app, { feed: { enabled: false } }));
    const list = await sessions(issuer, 3);
    for (const s of list) await server.revokeSession(s.handle);
    const client = track(clientFor(server, app));
    await client.start();
    for (const s of list) expect(await codeOf(client.verify(s.token))).toBe('TOKEN_REVOKED');
  });

  it('asks for the first page with skip_forgotten (nothing older can matter to an empty set), and only for the first', async () => {
    const issuer = track(clientFor(server, app, { feed: { enabled: false } }));
    const list = await sessions(issuer, 3);
    for (const s of list) await server.revokeSession(s.handle);
    const pages: URL[] = [];
    const recording: FetchLike = (input, init) => {
      const url = new URL(String(input));
      if (url.pathname === '/v1/revocations') pages.push(url);
      return fetch(input, init);
    };
    const client = track(clientFor(server, app, { fetch: recording, feed: { pageSize: 2 } }));
    await client.start();
    // These ends are minutes old at most, so the server still sends them: all three are known.
    for (const s of list) expect(await codeOf(client.verify(s.token))).toBe('TOKEN_REVOKED');
    expect(pages.length).toBeGreaterThanOrEqual(2);
    expect(pages[0]!.searchParams.get('after')).toBe('0');
    expect(pages[0]!.searchParams.get('skip_forgotten')).toBe('true');
    for (const later of pages.slice(1)) {
      expect(Number(later.searchParams.get('after'))).toBeGreaterThan(0);
      expect(later.searchParams.has('skip_forgotten')).toBe(false);
    }
  });

  it('starts the feed on the first verify when start() was never called', async () => {
    const issuer = track(clientFor(server, app, { feed: { enabled: false } }));
    const [revoked, live] = await sessions(issuer, 2);
    await server.revokeSession(revoked!.handle);
    const client = track(clientFor(server, app));
    expect(client.feedStatus().state).toBe('idle');
    expect(await codeOf(client.verify(revoked!.token))).toBe('TOKEN_REVOKED');
    expect(await codeOf(client.verify(live!.token))).toBe('OK');
    expect(client.feedStatus().state).toBe('connected');
  });
});

describe('resuming', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy(Number(new URL(server.url).port));
  });
  afterAll(async () => proxy?.close());

  it('resumes from Last-Event-ID after dropped connections without losing or repeating an entry', async () => {
    const lastEventIds: string[] = [];
    const recording: FetchLike = (input, init) => {
      if (String(input).includes('/v1/revocations/stream')) lastEventIds.push(new Headers(init?.headers).get('last-event-id') ?? '');
      return fetch(input, init);
    };
    const client = track(clientFor(server, app, { url: proxy.url, fetch: recording }));
    const events = collect(client);
    let downs = 0;
    client.on('feed:down', () => downs++);
    const list = await sessions(track(clientFor(server, app, { feed: { enabled: false } })), 40);
    await client.start();
    const before = events.length;
    for (let i = 0; i < list.length; i++) {
      // Every 8 revocations cut the live stream, so some arrive while the client is away.
      if (i % 8 === 4) {
        expect(await eventually(() => client.feedStatus().state === 'connected')).toBe(true);
        expect(proxy.dropAll()).toBeGreaterThan(0);
      }
      await server.revokeSession(list[i]!.handle);
    }
    expect(await eventually(() => events.length - before === 40)).toBe(true);
    await expectWholeLog(events);
    expect(downs).toBeGreaterThanOrEqual(5);
    // Each reconnect asked for what came after the last entry it had applied.
    const resumed = lastEventIds.slice(1).map(Number);
    expect(resumed.length).toBeGreaterThanOrEqual(5);
    expect(resumed.every((id, i) => i === 0 || id >= resumed[i - 1]!)).toBe(true);
    expect(resumed.at(-1)).toBeGreaterThan(resumed[0]!);
  });

  it('resumes across a restart of the Tessera node on the same data dir', async () => {
    const client = track(clientFor(server, app, { url: proxy.url }));
    const events = collect(client);
    let downs = 0;
    client.on('feed:down', () => downs++);
    const issuer = track(clientFor(server, app, { feed: { enabled: false } }));
    const list = await sessions(issuer, 10);
    await client.start();
    const before = events.length;
    for (const s of list.slice(0, 5)) await server.revokeSession(s.handle);
    expect(await eventually(() => events.length - before === 5)).toBe(true);

    const newUrl = await server.restart();
    proxy.retarget(Number(new URL(newUrl).port));
    expect(await eventually(() => downs > 0)).toBe(true);
    for (const s of list.slice(5)) await server.revokeSession(s.handle);
    expect(await eventually(() => events.length - before === 10)).toBe(true);
    await expectWholeLog(events);
    expect(events.slice(before).map((e) => e.sid)).toEqual(list.map((s) => s.handle));
    expect(await eventually(() => client.feedStatus().state === 'connected')).toBe(true);
  });

  it('reconnects when the stream goes silent (heartbeat watchdog)', async () => {
    const client = track(clientFor(server, app, { url: proxy.url, feed: { heartbeatTimeoutMs: 300 } }));
    const events = collect(client);
    const downs: Error[] = [];
    client.on('feed:down', (e) => downs.push(e.error));
    let ups = 0;
    client.on('feed:up', () => ups++);
    const [s] = await sessions(track(clientFor(server, app, { feed: { enabled: false } })), 1);
    await client.start();
    expect(ups).toBe(1);
    proxy.stall();
    expect(await eventually(() => ups >= 2)).toBe(true);
    expect(downs[0]?.message).toMatch(/heartbeat/i);
    await server.revokeSession(s!.handle);
    expect(await eventually(() => events.some((e) => e.sid === s!.handle))).toBe(true);
  });
  it('gives up on a stream request that is never answered (a stalled keep-alive connection) and tries again', async () => {
    // The first two stream requests hang before any header, as over a pooled keep-alive
    // connection that a stalled proxy no longer forwards. The watchdog must cover that wait
    // too, or start() (and every later reconnect) would wait forever.
    let streams = 0;
    const hanging: FetchLike = (input, init) => {
      if (!String(input).includes('/v1/revocations/stream')) return fetch(input, init);
      streams++;
      if (streams <= 2) {
        return new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason), { once: true }));
      }
      return fetch(input, init);
    };
    // The watchdog also covers the third, real request: 1 s leaves a loaded machine room to
    // answer it before a third "down".
    const client = track(clientFor(server, app, { fetch: hanging, feed: { heartbeatTimeoutMs: 1_000 } }));
    const downs: Error[] = [];
    client.on('feed:down', (e) => downs.push(e.error));
    await client.start();
    expect(client.feedStatus().state).toBe('connected');
    expect(streams).toBe(3);
    expect(downs.map((e) => e.message)).toEqual([expect.stringMatching(/heartbeat/i), expect.stringMatching(/heartbeat/i)]);
  });
});

describe('when the feed is unreachable', () => {
  /** A transport whose revocation-feed requests can be cut and refused (the API stays up). */
  function cuttableFeed() {
    let blocked = false;
    const open = new Set<AbortController>();
    const calls = { introspect: 0 };
    const fetchImpl: FetchLike = (input, init) => {
      const url = String(input);
      if (url.includes('/v1/introspect')) calls.introspect++;
      if (!url.includes('/v1/revocations')) return fetch(input, init);
      if (blocked) return Promise.reject(new TypeError('feed blocked by the test'));
      const controller = new AbortController();
      open.add(controller);
      const signal = init?.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal;
      return fetch(input, { ...init, signal });
    };
    return {
      fetch: fetchImpl,
      calls,
      cut() {
        blocked = true;
        for (const c of open) c.abort(new TypeError('feed cut by the test'));
        open.clear();
      },
      restore() {
        blocked = false;
      },
    };
  }

  it('fail-closed: verify rejects with FEED_UNAVAILABLE once the feed is stale, and recovers', async () => {
    const feed = cuttableFeed();
    const client = track(clientFor(server, app, { fetch: feed.fetch, feed: { maxStalenessMs: 300, onUnavailable: 'fail-closed' } }));
    await client.start();
    const [s] = await sessions(client, 1);
    expect(await codeOf(client.verify(s!.token))).toBe('OK');
    feed.cut();
    expect(await eventually(() => client.feedStatus().state === 'reconnecting')).toBe(true);
    expect(await eventually(async () => (await codeOf(client.verify(s!.token))) === 'FEED_UNAVAILABLE')).toBe(true);
    feed.restore();
    expect(await eventually(async () => (await codeOf(client.verify(s!.token))) === 'OK')).toBe(true);
  });

  it('a revocation written while the feed was away is applied after it comes back', async () => {
    const feed = cuttableFeed();
    const client = track(clientFor(server, app, { fetch: feed.fetch, feed: { maxStalenessMs: 60_000 } }));
    await client.start();
    const [s] = await sessions(client, 1);
    feed.cut();
    await server.revokeSession(s!.handle);
    // Within the staleness bound the set is trusted as it is.
    expect(await codeOf(client.verify(s!.token))).toBe('OK');
    feed.restore();
    expect(await eventually(async () => (await codeOf(client.verify(s!.token))) === 'TOKEN_REVOKED')).toBe(true);
  });

  it('introspect: verify asks Tessera per token once the feed is stale', async () => {
    const feed = cuttableFeed();
    const client = track(clientFor(server, app, { fetch: feed.fetch, feed: { maxStalenessMs: 200, onUnavailable: 'introspect', introspectCacheMs: 0 } }));
    await client.start();
    const [s] = await sessions(client, 1);
    expect(await codeOf(client.verify(s!.token))).toBe('OK');
    expect(feed.calls.introspect).toBe(0);
    feed.cut();
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await codeOf(client.verify(s!.token))).toBe('OK');
    expect(feed.calls.introspect).toBe(1);
    await server.revokeSession(s!.handle);
    expect(await codeOf(client.verify(s!.token))).toBe('TOKEN_REVOKED');
    expect(feed.calls.introspect).toBe(2);
  });

  it('wrong credentials: start() rejects with INVALID_CLIENT, the follower stops and verify fails closed', async () => {
    const good = track(clientFor(server, app, { feed: { enabled: false } }));
    const [s] = await sessions(good, 1);
    const client = track(clientFor(server, { clientId: app.clientId, clientSecret: 'wrong-secret' }));
    const downs: Array<number | null> = [];
    client.on('feed:down', (e) => downs.push(e.retryInMs));
    expect(await codeOf(client.start())).toBe('INVALID_CLIENT');
    expect(client.feedStatus().state).toBe('failed');
    expect(downs).toEqual([null]);
    expect(await codeOf(client.verify(s!.token))).toBe('FEED_UNAVAILABLE');
  });
});

describe('ageing out', () => {
  let own: TesseraServer;
  let ownApp: TestApp;
  beforeAll(async () => {
    own = await startTesseraServer();
    ownApp = await own.createApp('ageing');
  });
  afterAll(async () => own?.close());

  it('drops an entry once no token of its session can still be valid (forget_after + clock tolerance)', async () => {
    let now = Date.now();
    const client = track(clientFor(own, ownApp, { now: () => now, clockToleranceSeconds: 5 }));
    const events = collect(client);
    await client.start();
    const user = await own.createUser('carol');
    const session = await own.startSession(ownApp, user);
    const { accessToken } = await client.exchange(session.token);
    await own.revokeSession(session.handle);
    expect(await eventually(() => events.length === 1)).toBe(true);
    expect(client.feedStatus().revokedSessions).toBe(1);
    expect(await codeOf(client.verify(accessToken))).toBe('TOKEN_REVOKED');

    const forgetAt = events[0]!.forgetAfter.getTime() + 5000;
    now = forgetAt - 1;
    expect(client.feedStatus().revokedSessions).toBe(1);
    now = forgetAt;
    expect(client.feedStatus().revokedSessions).toBe(0);
    // By then the token itself has long expired.
    expect(await codeOf(client.verify(accessToken))).toBe('TOKEN_EXPIRED');
  });

  it('does not keep entries that are already forgettable when they arrive', async () => {
    const user = await own.createUser('dave');
    const session = await own.startSession(ownApp, user);
    await own.revokeSession(session.handle);
    const client = track(clientFor(own, ownApp, { now: () => Date.now() + 24 * 3_600_000 }));
    const events = collect(client);
    await client.start();
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(client.feedStatus().revokedSessions).toBe(0);
  });
});
