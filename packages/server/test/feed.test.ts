import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import { buildServer } from '../src/app.js';
import { ADMIN_TOKEN, adminRequest, basicAuth, createApp, createTestServer, createUser, expectError, startAppSession, type TestApp, type TestServer } from './support.js';

interface EventJson { cursor: number; sid: string; sub: string; reason: string; actor: string; at: string; app: string | null; forget_after: string }

describe('GET /v1/revocations', () => {
  let t: TestServer;
  let app: TestApp;
  let other: TestApp;
  beforeEach(async () => {
    t = await createTestServer();
    app = await createApp(t, { name: 'forum' });
    other = await createApp(t, { name: 'shop' });
  });
  afterEach(async () => t.close());

  const page = (caller: TestApp, query: string) => t.app.inject({ method: 'GET', url: `/v1/revocations${query}`, headers: { authorization: caller.basic } });

  it('returns log entries in order after a cursor, with next and forget_after', async () => {
    const { user } = await createUser(t);
    const sessions = [];
    for (let i = 0; i < 5; i += 1) sessions.push(await startAppSession(t, app, user.id));
    for (const s of sessions) await adminRequest(t, 'DELETE', `/sessions/${s.handle}`);
    const all = (await page(app, '?after=0&limit=1000')).json<{ events: EventJson[]; next: number }>();
    expect(all.events.map((e) => e.cursor)).toEqual([1, 2, 3, 4, 5]);
    expect(all.events.map((e) => e.sid)).toEqual(sessions.map((s) => s.handle));
    expect(all.next).toBe(5);
    expect(all.events[0]).toMatchObject({ sub: user.id, reason: 'admin_revoked', actor: 'admin', app: null });
    expect(Date.parse(all.events[0]!.forget_after) - Date.parse(all.events[0]!.at)).toBe(300_000 + 60_000);
    const second = (await page(app, '?after=2&limit=2')).json<{ events: EventJson[]; next: number }>();
    expect(second.events.map((e) => e.cursor)).toEqual([3, 4]);
    expect(second.next).toBe(4);
    expect((await page(app, '?after=5')).json()).toEqual({ events: [], next: 5 });
  });

  it('shows an app its own app-scoped ends but not other apps\', while next moves past them', async () => {
    const { user } = await createUser(t);
    const s = await startAppSession(t, app, user.id);
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic }, payload: { token: s.token, scope: 'app' } });
    expect(res.statusCode).toBe(200);
    const mine = (await page(app, '')).json<{ events: EventJson[]; next: number }>();
    expect(mine.events).toHaveLength(1);
    expect(mine.events[0]).toMatchObject({ app: app.clientId, sid: s.handle });
    expect((await page(other, '')).json()).toEqual({ events: [], next: 1 });
  });

  it('skip_forgotten=true starts at the first entry whose forget_after has not passed', async () => {
    const { user } = await createUser(t);
    const sessions = [];
    for (let i = 0; i < 4; i += 1) sessions.push(await startAppSession(t, app, user.id));
    for (const s of sessions.slice(0, 3)) await adminRequest(t, 'DELETE', `/sessions/${s.handle}`);
    // Past forget_after of the first three (token lifetime 300 s + 60 s), then one more end.
    t.clock.advance(361_000);
    await adminRequest(t, 'DELETE', `/sessions/${sessions[3]!.handle}`);
    const live = (await page(app, '?after=0&skip_forgotten=true')).json<{ events: EventJson[]; next: number }>();
    expect(live.events.map((e) => e.cursor)).toEqual([4]);
    expect(live.next).toBe(4);
    expect(Date.parse(live.events[0]!.forget_after)).toBeGreaterThan(t.clock.now());
    // Without it, the whole log; and it never moves a later cursor back.
    expect((await page(app, '?after=0')).json<{ events: EventJson[] }>().events.map((e) => e.cursor)).toEqual([1, 2, 3, 4]);
    expect((await page(app, '?after=4&skip_forgotten=true')).json()).toEqual({ events: [], next: 4 });
    // Nothing left that matters: an empty page whose next is the head, so catch-up ends there.
    t.clock.advance(361_000);
    expect((await page(app, '?after=0&skip_forgotten=true')).json()).toEqual({ events: [], next: 4 });
    expectError(await page(app, '?skip_forgotten=maybe'), 400, 'INVALID_REQUEST');
  });

  it('needs app credentials and a valid cursor', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/v1/revocations' }), 401, 'INVALID_CLIENT');
    expectError(await page(app, '?after=-1'), 400, 'INVALID_REQUEST');
    expectError(await page(app, '?after=abc'), 400, 'INVALID_REQUEST');
    expectError(await page(app, '?limit=5000'), 400, 'INVALID_REQUEST');
  });
});

/** Reads Server-Sent Events from a real HTTP response. */
async function openStream(url: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  const events: Array<{ id?: string; event?: string; data?: string }> = [];
  const comments: string[] = [];
  let retry: string | undefined;
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const done = (async () => {
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) return;
        buffer += decoder.decode(value, { stream: true });
        let split;
        while ((split = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, split);
          buffer = buffer.slice(split + 2);
          const event: { id?: string; event?: string; data?: string } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else if (line.startsWith('retry: ')) retry = line.slice(7);
            else if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) event.data = line.slice(6);
          }
          if (event.data !== undefined || event.id !== undefined) events.push(event);
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    res,
    events,
    comments,
    get retry() {
      return retry;
    },
    data: () => events.filter((e) => e.data !== undefined).map((e) => JSON.parse(e.data!) as EventJson),
    async close() {
      controller.abort();
      await done;
    },
  };
}

/** Waits for `check` (bounded generously: a loaded machine may need seconds; it returns as soon as it holds). */
async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('GET /v1/revocations/stream over real HTTP', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-feed-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function startNode(pollIntervalMs = 200) {
    const config = loadConfig({ env: { TESSERA_ADMIN_TOKEN: ADMIN_TOKEN, TESSERA_COOKIE_SECURE: 'false', TESSERA_RATE_LIMIT: 'false' }, file: { feed: { heartbeatSeconds: 1, pollIntervalMs } } });
    const store = createSqliteStore(join(dir, 'tessera.db'));
    await store.migrate();
    const { app } = await buildServer({ config, store });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const admin = (method: string, path: string, body?: object) =>
      fetch(`${url}/admin/api${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { url, app, store, admin, async close() { await app.close(); await store.close(); } };
  }

  it('sends the backlog, then live events pushed on commit, with heartbeats; resumes from Last-Event-ID across a restart without losing an entry', async () => {
    // Polling off (every 10 minutes): a live event can only arrive because the commit pushed
    // it, which this proves without timing it (a loaded machine may take a while).
    const NO_POLL = 600_000;
    let node = await startNode(NO_POLL);
    const created = await (await node.admin('POST', '/apps', { name: 'forum', trusted: true })).json() as { app: { client_id: string }; client_secret: string };
    const auth = { authorization: basicAuth(created.app.client_id, created.client_secret) };
    const user = await (await node.admin('POST', '/users', { username: 'alice' })).json() as { user: { id: string } };
    const start = async () => ((await (await fetch(`${node.url}/v1/sessions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: user.user.id }) })).json()) as { session: { handle: string } }).session.handle;
    const handles: string[] = [];
    for (let i = 0; i < 3; i += 1) handles.push(await start());
    await node.admin('DELETE', `/sessions/${handles[0]}`);

    const stream = await openStream(`${node.url}/v1/revocations/stream`, auth);
    expect(stream.res.status).toBe(200);
    expect(stream.res.headers.get('content-type')).toContain('text/event-stream');
    await until(() => stream.data().length === 1);
    expect(stream.retry).toBe('1000');
    expect(stream.events[0]).toMatchObject({ id: '1', event: 'revocation' });

    await node.admin('DELETE', `/sessions/${handles[1]}`);
    await until(() => stream.data().length === 2);
    await until(() => stream.comments.includes(': ping'));
    await stream.close();

    // Ends happen while nobody listens, then the server restarts.
    await node.admin('DELETE', `/sessions/${handles[2]}`);
    for (let i = 0; i < 3; i += 1) await node.admin('DELETE', `/sessions/${await start()}`);
    await node.close();
    node = await startNode(NO_POLL);
    const resumed = await openStream(`${node.url}/v1/revocations/stream`, { ...auth, 'last-event-id': '2' });
    await until(() => resumed.data().length === 4);
    expect(resumed.data().map((e) => e.cursor)).toEqual([3, 4, 5, 6]);
    expect(resumed.data()[0]!.sid).toBe(handles[2]);
    // ?after= works as well as the header.
    const fromQuery = await openStream(`${node.url}/v1/revocations/stream?after=5`, auth);
    await until(() => fromQuery.data().length === 1);
    expect(fromQuery.data()[0]!.cursor).toBe(6);
    await fromQuery.close();
    await resumed.close();
    await node.close();
  });

  it('picks up ends written by another process (the CLI) through polling, in order', async () => {
    const node = await startNode();
    const created = await (await node.admin('POST', '/apps', { name: 'forum', trusted: true })).json() as { app: { client_id: string }; client_secret: string };
    const auth = { authorization: basicAuth(created.app.client_id, created.client_secret) };
    const user = await (await node.admin('POST', '/users', { username: 'bob' })).json() as { user: { id: string } };
    for (let i = 0; i < 4; i += 1) await fetch(`${node.url}/v1/sessions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: user.user.id }) });
    const stream = await openStream(`${node.url}/v1/revocations/stream`, auth);
    // A second store on the same file stands for the CLI: the server's hub is not told.
    const cli = createSqliteStore(join(dir, 'tessera.db'));
    await cli.endUserSessions(user.user.id, {}, { at: Date.now(), reason: 'admin_revoked', actor: 'admin' });
    await cli.close();
    await until(() => stream.data().length === 4);
    expect(stream.data().map((e) => e.cursor)).toEqual([1, 2, 3, 4]);
    await stream.close();
    await node.close();
  });

  it('rejects a bad Last-Event-ID and missing credentials before streaming', async () => {
    const node = await startNode();
    const created = await (await node.admin('POST', '/apps', { name: 'forum' })).json() as { app: { client_id: string }; client_secret: string };
    const auth = { authorization: basicAuth(created.app.client_id, created.client_secret) };
    const bad = await fetch(`${node.url}/v1/revocations/stream`, { headers: { ...auth, 'last-event-id': 'abc' } });
    expect(bad.status).toBe(400);
    expect((await bad.json() as { error: string }).error).toBe('INVALID_REQUEST');
    const anon = await fetch(`${node.url}/v1/revocations/stream`);
    expect(anon.status).toBe(401);
    await node.close();
  });
});
