// createAuthFetch() against a small real HTTP API (node:http on 127.0.0.1, port 0) that
// answers 401 unless the request carries the current "fresh" access token.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuthFetch, type FetchLike } from '../src/index.js';

interface Seen { method: string; path: string; authorization: string | null; body: string }

let api: Server;
let base: string;
/** The access token the API accepts right now. */
let fresh: string;
/** Every request the API received, in order. */
let seen: Seen[];

beforeAll(async () => {
  api = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry: Seen = { method: request.method ?? '', path: request.url ?? '', authorization: request.headers.authorization ?? null, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(entry);
      const attempt = seen.length;
      const send = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(body));
      };
      if (entry.path === '/broken') return send(500, { error: 'INTERNAL', attempt });
      if (entry.path === '/always-401' || entry.authorization !== `Bearer ${fresh}`) return send(401, { error: 'UNAUTHENTICATED', attempt });
      return send(200, { ok: true, attempt, method: entry.method, body: entry.body });
    });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const address = api.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => api.close(() => resolve()));
});

beforeEach(() => {
  fresh = 'fresh-1';
  seen = [];
});

/** An app's token store and a refresh() that asks "its backend" (here: hands out `fresh`). */
function setup(overrides: { refresh?: () => Promise<string | null | undefined>; initial?: string | null } = {}) {
  const state = { token: overrides.initial === undefined ? 'stale' : overrides.initial, refreshes: 0, stored: [] as string[] };
  const authFetch = createAuthFetch({
    getAccessToken: () => state.token,
    setAccessToken: (token) => {
      state.token = token;
      state.stored.push(token);
    },
    refresh: async () => {
      state.refreshes++;
      return overrides.refresh ? overrides.refresh() : fresh;
    },
  });
  return { state, authFetch };
}

describe('createAuthFetch()', () => {
  it('sends the access token as a Bearer header and does not refresh while it is accepted', async () => {
    const { state, authFetch } = setup({ initial: 'fresh-1' });
    const response = await authFetch(`${base}/me`, { headers: { 'x-extra': 'kept' } });
    expect(response.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.authorization).toBe('Bearer fresh-1');
    expect(state.refreshes).toBe(0);
  });

  it('on a 401 refreshes once, stores the new token and retries once with it (same method and body)', async () => {
    const { state, authFetch } = setup();
    const response = await authFetch(`${base}/orders`, { method: 'POST', body: '{"item":42}', headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, attempt: 2, method: 'POST', body: '{"item":42}' });
    expect(state.refreshes).toBe(1);
    expect(state.stored).toEqual(['fresh-1']);
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer stale', 'Bearer fresh-1']);
    expect(seen.map((s) => s.body)).toEqual(['{"item":42}', '{"item":42}']);

    // The stored token is used from now on: no refresh for the next call.
    expect((await authFetch(`${base}/me`)).status).toBe(200);
    expect(state.refreshes).toBe(1);
  });

  it('retries a Request object with its body (it is cloned before the first send)', async () => {
    const { state, authFetch } = setup();
    const response = await authFetch(new Request(`${base}/orders`, { method: 'PUT', body: 'payload', headers: { 'x-extra': 'kept' } }));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ attempt: 2, method: 'PUT', body: 'payload' });
    expect(state.refreshes).toBe(1);
  });

  it('shares one refresh among concurrent 401s', async () => {
    const n = 5;
    let unauthorized = 0;
    let allFailed!: () => void;
    const allFailedOnce = new Promise<void>((resolve) => (allFailed = resolve));
    // Counts 401s handed back to the wrapper; once all n are in, one macrotask lets every
    // request reach its "wait for the refresh" step before the refresh is allowed to finish.
    const counting: FetchLike = async (input, init) => {
      const response = await fetch(input, init);
      if (response.status === 401 && ++unauthorized === n) setImmediate(allFailed);
      return response;
    };
    let refreshes = 0;
    const authFetch = createAuthFetch({
      fetch: counting,
      // No setAccessToken and a getAccessToken that keeps returning the stale token: only
      // the shared in-flight refresh can keep this at one call.
      getAccessToken: () => 'stale',
      refresh: async () => {
        refreshes++;
        await allFailedOnce;
        return fresh;
      },
    });
    const responses = await Promise.all(Array.from({ length: n }, (_, i) => authFetch(`${base}/item/${i}`)));
    expect(responses.map((r) => r.status)).toEqual(Array(n).fill(200));
    expect(refreshes).toBe(1);
    expect(seen).toHaveLength(2 * n);
    expect(seen.filter((s) => s.authorization === 'Bearer fresh-1')).toHaveLength(n);
  });

  it('resends with a token another request already refreshed, without refreshing again', async () => {
    const { state, authFetch } = setup();
    let releaseSlow!: () => void;
    const slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
    // A request sent with the stale token whose 401 only arrives after the refresh is done.
    const slowFetch = createAuthFetch({
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (response.status === 401) await slowGate;
        return response;
      },
      getAccessToken: () => state.token,
      refresh: async () => {
        state.refreshes++;
        return fresh;
      },
    });
    const slow = slowFetch(`${base}/slow`);
    expect((await authFetch(`${base}/fast`)).status).toBe(200);
    expect(state.refreshes).toBe(1);
    releaseSlow();
    expect((await slow).status).toBe(200);
    expect(state.refreshes).toBe(1);
    expect(seen.filter((s) => s.path === '/slow').map((s) => s.authorization)).toEqual(['Bearer stale', 'Bearer fresh-1']);
  });

  it('retries only once: a second 401 is returned as is', async () => {
    const { state, authFetch } = setup();
    const response = await authFetch(`${base}/always-401`);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'UNAUTHENTICATED', attempt: 2 });
    expect(state.refreshes).toBe(1);
    expect(seen).toHaveLength(2);
  });

  it('returns the original 401 (body unread) when refresh() rejects or resolves null, and can refresh again later', async () => {
    let outcome: 'reject' | 'null' | 'ok' = 'reject';
    const { state, authFetch } = setup({
      refresh: async () => {
        if (outcome === 'reject') throw new Error('refresh endpoint down');
        return outcome === 'null' ? null : fresh;
      },
    });
    const rejected = await authFetch(`${base}/me`);
    expect(rejected.status).toBe(401);
    expect(await rejected.json()).toEqual({ error: 'UNAUTHENTICATED', attempt: 1 });

    outcome = 'null';
    const nulled = await authFetch(`${base}/me`);
    expect(nulled.status).toBe(401);
    expect(await nulled.json()).toEqual({ error: 'UNAUTHENTICATED', attempt: 2 });
    expect(seen).toHaveLength(2);
    expect(state.stored).toEqual([]);

    // A failed refresh does not wedge the wrapper.
    outcome = 'ok';
    expect((await authFetch(`${base}/me`)).status).toBe(200);
    expect(state.refreshes).toBe(3);
  });

  it('does not wedge when refresh() throws synchronously', async () => {
    let calls = 0;
    const authFetch = createAuthFetch({
      getAccessToken: () => 'stale',
      refresh: (() => {
        calls++;
        if (calls === 1) throw new Error('sync bug');
        return Promise.resolve(fresh);
      }) as () => Promise<string>,
    });
    expect((await authFetch(`${base}/me`)).status).toBe(401);
    expect((await authFetch(`${base}/me`)).status).toBe(200);
    expect(calls).toBe(2);
  });

  it('does not retry (nor refresh for) a request with a ReadableStream body', async () => {
    const { state, authFetch } = setup();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed'));
        controller.close();
      },
    });
    const response = await authFetch(`${base}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(401);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.body).toBe('streamed');
    expect(state.refreshes).toBe(0);
  });

  it('passes other errors through without refreshing', async () => {
    const { state, authFetch } = setup();
    expect((await authFetch(`${base}/broken`)).status).toBe(500);
    expect(state.refreshes).toBe(0);
  });

  it('sends no Authorization without a token, then gets one by refreshing on the 401', async () => {
    const { state, authFetch } = setup({ initial: null });
    expect((await authFetch(`${base}/me`)).status).toBe(200);
    expect(seen.map((s) => s.authorization)).toEqual([null, 'Bearer fresh-1']);
    expect(state.refreshes).toBe(1);
  });

  it('rejects missing functions with a TypeError', () => {
    expect(() => createAuthFetch({ getAccessToken: () => null } as never)).toThrow(TypeError);
    expect(() => createAuthFetch({ refresh: async () => null } as never)).toThrow(TypeError);
    expect(() => createAuthFetch({ refresh: async () => null, getAccessToken: () => null, setAccessToken: 'x' } as never)).toThrow(TypeError);
  });
});
