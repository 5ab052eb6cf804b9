// The push worker claims SETs only when a claim can find something: after new SETs are
// committed (a wake-up), when the retry timer ticks, and when a delivery lets a younger SET
// about the same subject go. Its timer is set to a minute here, so every SET below that
// arrives does so without the timer's help; the claims are counted on the real store.
import type { Store } from '@tessera/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPushReceiver, type PushReceiver, type Transmitter } from '../../../test/e2e/support/ssf-receiver.js';
import { createSsfPushWorker, createSsfWakeup, type SsfPushWorker } from '../src/ssf/index.js';
import { adminRequest, basicAuth, createApp, createTestServer, startAppSession, type TestApp, type TestServer } from './support.js';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const PUSH_URN = 'urn:ietf:rfc:8935';

let t: TestServer;
let app: TestApp;
let push: PushReceiver;
let worker: SsfPushWorker;
let claims = 0;
let token: string;
/** The store's stream reads by the worker: one id each (findSsfStream) or several at once. */
let streamReads: Array<{ by: 'find' | 'list'; ids: string[] }> = [];

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function createUser(): Promise<string> {
  const res = await adminRequest(t, 'POST', '/users', { username: `u${Math.random().toString(36).slice(2, 10)}` });
  expect(res.statusCode).toBe(201);
  return res.json<{ user: { id: string } }>().user.id;
}

/** Ends one session by the admin API, then wakes the worker as the server does after a commit. */
async function endSession(handle: string): Promise<void> {
  const res = await adminRequest(t, 'DELETE', `/sessions/${handle}`);
  expect(res.statusCode, res.body).toBe(204);
  worker.wake();
}

beforeEach(async () => {
  t = await createTestServer({ file: { outbox: { pollIntervalMs: 60_000 }, session: { touchIntervalSeconds: 0 } } });
  app = await createApp(t, { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
  const issued = await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: basicAuth(app.clientId, app.clientSecret), 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials&scope=ssf.manage' });
  token = issued.json<{ access_token: string }>().access_token;
  const metadata = (await t.app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })).json<Record<string, unknown>>();
  const jwks = (await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  const transmitter: Transmitter = { issuer: String(metadata.issuer), metadata, jwks };
  push = await startPushReceiver(() => transmitter, () => app.clientId, { expectAuthorization: 'Bearer receiver-secret', now: () => t.clock.now() });
  const stream = await t.app.inject({ method: 'POST', url: '/ssf/streams', headers: { authorization: `Bearer ${token}` }, payload: { events_requested: [SESSION_REVOKED], delivery: { method: PUSH_URN, endpoint_url: push.url, authorization_header: 'Bearer receiver-secret' } } });
  expect(stream.statusCode, stream.body).toBe(201);
  // The real store, with its claims counted.
  claims = 0;
  streamReads = [];
  const counted = new Proxy(t.store, {
    get(target, key, receiver) {
      if (key === 'claimSsfPushEvents') {
        return (...args: Parameters<Store['claimSsfPushEvents']>) => {
          claims += 1;
          return target.claimSsfPushEvents(...args);
        };
      }
      if (key === 'findSsfStream') {
        return (id: string) => {
          streamReads.push({ by: 'find', ids: [id] });
          return target.findSsfStream(id);
        };
      }
      if (key === 'listSsfStreams') {
        return (filter?: Parameters<Store['listSsfStreams']>[0]) => {
          streamReads.push({ by: 'list', ids: [...(filter?.ids ?? [])] });
          return target.listSsfStreams(filter);
        };
      }
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  worker = createSsfPushWorker({ store: counted, authority: t.authority, config: t.config, log: t.app.log, wakeup: createSsfWakeup(), now: () => t.clock.now() });
  worker.start();
});

afterEach(async () => {
  await worker.stop(1_000);
  await push.close();
  await t.close();
});

describe('SSF push worker', () => {
  it('delivers SETs about one subject in order, each as soon as the one before it is delivered, without the timer', async () => {
    const userId = await createUser();
    const sessions = [];
    for (let i = 0; i < 4; i++) sessions.push(await startAppSession(t, app, userId));
    // Ended before the worker first looks, so three of them wait behind the oldest.
    const before = claims;
    for (const s of sessions) {
      const res = await adminRequest(t, 'DELETE', `/sessions/${s.handle}`);
      expect(res.statusCode, res.body).toBe(204);
    }
    worker.wake();
    const mine = () => push.received.filter((s) => s.type === SESSION_REVOKED);
    await until('four session-revoked SETs', () => mine().length === 4);
    // In the order they were committed (the outbox's ids), each pushed once.
    const stream = (await t.store.listSsfStreams())[0]!;
    const committed = (await t.store.listSsfEvents(stream.id, { limit: 10 })).sort((a, b) => a.id - b.id).map((e) => e.jti);
    expect(mine().map((s) => s.claims.jti)).toEqual(committed);
    expect(push.rejected).toEqual([]);
    // One claim for the wake-up, one per delivery that let the next one go, and perhaps one
    // that finds nothing: never one per SET and timer tick (the timer never ran).
    expect(claims - before).toBeGreaterThanOrEqual(4);
    expect(claims - before).toBeLessThanOrEqual(6);
  });

  it('claims once per wake-up, not once per delivered SET, when nothing waits', async () => {
    const handles = [];
    for (let i = 0; i < 10; i++) handles.push((await startAppSession(t, app, await createUser())).handle);
    const before = claims;
    for (const handle of handles) await endSession(handle);
    await until('ten session-revoked SETs', () => push.received.filter((s) => s.type === SESSION_REVOKED).length === 10);
    expect(push.rejected).toEqual([]);
    // Ten wake-ups: at most one claim each (fewer when a wake-up comes while a claim runs),
    // plus one for a claim that came back full.
    expect(claims - before).toBeLessThanOrEqual(11);
  });

  it("reads the settings of a revocation's streams in one statement, not one per stream", async () => {
    for (let i = 0; i < 2; i++) {
      const more = await t.app.inject({ method: 'POST', url: '/ssf/streams', headers: { authorization: `Bearer ${token}` }, payload: { events_requested: [SESSION_REVOKED], delivery: { method: PUSH_URN, endpoint_url: push.url, authorization_header: 'Bearer receiver-secret' } } });
      expect(more.statusCode, more.body).toBe(201);
    }
    const streamIds = (await t.store.listSsfStreams()).map((s) => s.id).sort();
    expect(streamIds).toHaveLength(3);
    const handle = (await startAppSession(t, app, await createUser())).handle;
    streamReads = [];
    await endSession(handle);
    await until('a session-revoked SET on each of the three streams', () => push.received.filter((s) => s.type === SESSION_REVOKED).length === 3);
    expect(push.rejected).toEqual([]);
    // One SET per stream, each checked by the receiver (signature, claims, Authorization header).
    expect(new Set(push.received.map((s) => s.claims.jti)).size).toBe(3);
    expect(streamReads).toEqual([{ by: 'list', ids: expect.arrayContaining(streamIds) as string[] }]);
    expect(streamReads[0]!.ids).toHaveLength(3);
  });
});
