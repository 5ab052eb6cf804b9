// Security hardening, item 3 (issue 16): an open GET /v1/revocations/stream is bound to the
// credentials it was opened with, and ends when the app's secret is rotated or the app is
// deleted — on the node where that happened, on another node sharing PostgreSQL (NOTIFY),
// and, as a last resort, by the periodic re-check (a change the node was not told of).
// Over real HTTP (the server listens on a port; the stream is read with fetch).
import type { AddressInfo } from 'node:net';
import { createPostgresStore } from '@tessera/store';
import { afterEach, describe, expect, it } from 'vitest';
import { freshSchemaUrl, postgresTestUrl } from '../../store/test/pg-support.js';
import { adminRequest, basicAuth, createApp, createTestServer, createUser, startAppSession, type TestApp, type TestServer } from './support.js';
import { STORE_KINDS, storeOptions } from './store-kinds.js';

const pgUrl = await postgresTestUrl();

interface OpenStream {
  text(): string;
  /** Resolves when the server ends the stream; rejects after `timeoutMs`. */
  ended(timeoutMs: number): Promise<void>;
  /** Resolves when the received text matches; rejects after `timeoutMs`. */
  received(pattern: RegExp, timeoutMs: number): Promise<void>;
  cancel(): Promise<void>;
}

async function listen(t: TestServer): Promise<string> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}

async function openStream(base: string, app: TestApp): Promise<OpenStream> {
  const res = await fetch(`${base}/v1/revocations/stream`, { headers: { authorization: app.basic, accept: 'text/event-stream' } });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let done = false;
  const waiters = new Set<() => void>();
  const pump = (async () => {
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += decoder.decode(chunk.value, { stream: true });
        for (const w of waiters) w();
      }
    } catch {
      // Cancelled by the test, or reset: both count as ended.
    }
    done = true;
    for (const w of waiters) w();
  })();
  const until = (what: string, test: () => boolean, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      if (test()) return resolve();
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${JSON.stringify(text)}`));
      }, timeoutMs);
      const check = () => {
        if (!test()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });
  await until('the stream preamble', () => text.includes('retry:'), 5000);
  return {
    text: () => text,
    ended: (timeoutMs) => until('the stream to end', () => done, timeoutMs),
    received: (pattern, timeoutMs) => until(String(pattern), () => pattern.test(text), timeoutMs),
    async cancel() {
      await reader.cancel().catch(() => undefined);
      await pump;
    },
  };
}

const open: OpenStream[] = [];
const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.cancel();
  for (const t of servers.splice(0).reverse()) await t.close();
});

describe.each(STORE_KINDS)('revocation streams end with their credentials, one node (%s)', (kind) => {
  async function setUp(file: Record<string, unknown> = {}) {
    const t = await createTestServer({ ...(await storeOptions(kind)), file });
    servers.push(t);
    const base = await listen(t);
    const watcher = await createApp(t, { name: 'watcher', trusted: false });
    const stream = await openStream(base, watcher);
    open.push(stream);
    return { t, base, watcher, stream };
  }

  it('rotating the secret ends the open stream at once; the old secret opens no new one', async () => {
    // A minute-long poll: only the immediate re-check can end the stream in time.
    const { t, base, watcher, stream } = await setUp({ feed: { pollIntervalMs: 60_000 } });
    const rotated = await adminRequest(t, 'POST', `/apps/${watcher.clientId}/secret`);
    expect(rotated.statusCode, rotated.body).toBe(200);
    await stream.ended(5000);
    const again = await fetch(`${base}/v1/revocations/stream`, { headers: { authorization: watcher.basic } });
    expect(again.status).toBe(401);
    await again.body?.cancel();
    const secret = rotated.json<{ client_secret: string }>().client_secret;
    const fresh = await openStream(base, { ...watcher, clientSecret: secret, basic: basicAuth(watcher.clientId, secret) });
    open.push(fresh);
  });

  it('deleting the app ends the open stream', async () => {
    const { t, stream } = await setUp({ feed: { pollIntervalMs: 60_000 } });
    const watcher = (await t.store.listApps()).find((a) => a.name === 'watcher')!;
    expect((await adminRequest(t, 'DELETE', `/apps/${watcher.clientId}`)).statusCode).toBeLessThan(300);
    await stream.ended(5000);
  });

  it('other changes to the app leave the stream open: it still carries revocations', async () => {
    const { t, watcher, stream } = await setUp({ feed: { pollIntervalMs: 60_000 } });
    expect((await adminRequest(t, 'PATCH', `/apps/${watcher.clientId}`, { name: 'watcher renamed' })).statusCode).toBe(200);
    const site = await createApp(t, { name: 'site' });
    const { user } = await createUser(t);
    const s = await startAppSession(t, site, user.id);
    expect((await adminRequest(t, 'DELETE', `/sessions/${s.handle}`)).statusCode).toBe(204);
    await stream.received(new RegExp(s.handle), 5000);
  });

  it('a change this node was not told of (the CLI, a lost NOTIFY) is caught by the periodic re-check', async () => {
    const { t, watcher, stream } = await setUp({ feed: { pollIntervalMs: 100 } });
    // Straight to the store, as another process would write it: no in-process notice.
    await t.store.updateApp(watcher.clientId, { secretHash: 'rotated-elsewhere', updatedAt: t.clock.now() });
    await stream.ended(5000);
  });
});

describe.skipIf(!pgUrl)('revocation streams end with their credentials, two nodes sharing PostgreSQL', () => {
  it('the secret rotated on node A ends the stream open on node B (NOTIFY; the poll is a minute)', async () => {
    const schema = await freshSchemaUrl(pgUrl!);
    const node = async (drop: boolean) => {
      const t = await createTestServer({
        env: { TESSERA_DATABASE_URL: schema.url },
        file: { feed: { pollIntervalMs: 60_000 } },
        store: createPostgresStore(schema.url, { max: 4 }),
        ...(drop ? { afterClose: () => schema.drop() } : {}),
      });
      servers.push(t);
      return t;
    };
    const a = await node(true);
    const b = await node(false);
    const baseB = await listen(b);
    const watcher = await createApp(a, { name: 'watcher', trusted: false });
    const stream = await openStream(baseB, watcher);
    open.push(stream);
    expect((await adminRequest(a, 'POST', `/apps/${watcher.clientId}/secret`)).statusCode).toBe(200);
    await stream.ended(5000);
    // And deleting on A ends B's streams of another app.
    const other = await createApp(a, { name: 'other', trusted: false });
    const second = await openStream(baseB, other);
    open.push(second);
    expect((await adminRequest(a, 'DELETE', `/apps/${other.clientId}`)).statusCode).toBeLessThan(300);
    await second.ended(5000);
  });
});
