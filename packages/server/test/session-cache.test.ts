import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock, createSessionCache, loadConfig, type SessionRecord, type Store, type UserRecord } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import { buildServer } from '../src/app.js';
import { ADMIN_TOKEN, basicAuth } from './support.js';

// A commit by another process reaches this one through I/O, so a request sent after it is
// handled in a later turn of the event loop than the commit. The second store below lives in
// this process; yielding a turn stands for that.
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('whoami hot-path cache over a SQLite file shared with another process', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-cache-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function setup() {
    const config = loadConfig({ env: { TESSERA_ADMIN_TOKEN: ADMIN_TOKEN, TESSERA_COOKIE_SECURE: 'false' } });
    const store = createSqliteStore(join(dir, 'tessera.db'));
    await store.migrate();
    const { app, authority } = await buildServer({ config, store });
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const created = (await app.inject({ method: 'POST', url: '/admin/api/apps', headers: admin, payload: { name: 'forum', trusted: true } })).json<{ app: { client_id: string }; client_secret: string }>();
    const user = (await app.inject({ method: 'POST', url: '/admin/api/users', headers: admin, payload: { username: 'alice' } })).json<{ user: { id: string } }>().user;
    const started = (await app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: basicAuth(created.app.client_id, created.client_secret) }, payload: { user_id: user.id } })).json<{ session_token: string; session: { handle: string } }>();
    const whoami = async () => (await app.inject({ method: 'GET', url: '/v1/whoami', headers: { 'x-session-token': started.session_token } })).statusCode;
    return { app, authority, store, user, started, whoami, admin };
  }

  it('answers 401 at once after another process (the CLI) ends the session — no poll delay', async () => {
    const { app, store, started, whoami } = await setup();
    expect(await whoami()).toBe(200);
    expect(await whoami()).toBe(200); // served from the cache now
    const cli = createSqliteStore(join(dir, 'tessera.db'));
    expect(await cli.endSessions([started.session.handle], { at: Date.now(), reason: 'admin_revoked', actor: 'admin' })).toHaveLength(1);
    await cli.close();
    await nextTurn();
    expect(await whoami()).toBe(401);
    await app.close();
    await store.close();
  });

  it('answers 401 at once after another process disables the user', async () => {
    const { app, store, user, whoami } = await setup();
    expect(await whoami()).toBe(200);
    const cli = createSqliteStore(join(dir, 'tessera.db'));
    await cli.updateUser(user.id, { disabled: true, updatedAt: Date.now() });
    await cli.close();
    await nextTurn();
    expect(await whoami()).toBe(401);
    await app.close();
    await store.close();
  });

  it('answers 401 at once after this process ends the session, disables the user, or the app leaves', async () => {
    const { app, store, user, started, whoami, admin } = await setup();
    expect(await whoami()).toBe(200);
    const patched = await app.inject({ method: 'PATCH', url: `/admin/api/users/${user.id}`, headers: admin, payload: { first_name: 'Alice' } });
    expect(patched.statusCode).toBe(200);
    const me = await app.inject({ method: 'GET', url: '/v1/whoami', headers: { 'x-session-token': started.session_token } });
    expect(me.json<{ user: { first_name: string } }>().user.first_name).toBe('Alice');
    await app.inject({ method: 'DELETE', url: `/admin/api/sessions/${started.session.handle}`, headers: admin });
    expect(await whoami()).toBe(401);
    await app.close();
    await store.close();
  });

  it('still rejects a wrong secret for a cached token id', async () => {
    const { app, store, started, whoami } = await setup();
    expect(await whoami()).toBe(200);
    const [id] = started.session_token.split('.');
    const forged = await app.inject({ method: 'GET', url: '/v1/whoami', headers: { 'x-session-token': `${id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA` } });
    expect(forged.statusCode).toBe(401);
    await app.close();
    await store.close();
  });
});

describe('createSessionCache', () => {
  // A stand-in for the store's change marker only; everything else of the port is unused here.
  function fakeStore(marker: { value: number | null }): Store {
    return { changeMarker: async () => marker.value } as unknown as Store;
  }
  const session = (handle: string, userId = 'u1') => ({ handle, userId, secretHash: 'x' }) as unknown as SessionRecord;
  const user = { id: 'u1' } as unknown as UserRecord;

  it('never caches a read that overlapped an end of a session (ticket check)', async () => {
    const cache = createSessionCache(fakeStore({ value: 1 }), createManualClock(0));
    const ticket = await cache.ticket();
    cache.dropSessions(['ses_a']); // an end commits while the read is in flight
    await cache.set('tok', session('ses_a'), user, ticket);
    expect(await cache.get('tok')).toBeNull();
  });

  it('never caches a read that overlapped a foreign commit, and empties itself on one', async () => {
    const marker = { value: 1 };
    const cache = createSessionCache(fakeStore(marker), createManualClock(0));
    await cache.set('tok', session('ses_a'), user, await cache.ticket());
    expect(await cache.get('tok')).not.toBeNull();
    await nextTurn();
    const ticket = await cache.ticket();
    marker.value = 2;
    await nextTurn();
    await cache.set('tok2', session('ses_b'), user, ticket);
    expect(await cache.get('tok2')).toBeNull();
    expect(await cache.get('tok')).toBeNull();
  });

  it('is off when the store cannot report foreign commits', async () => {
    const cache = createSessionCache(fakeStore({ value: null }), createManualClock(0));
    await cache.set('tok', session('ses_a'), user, await cache.ticket());
    expect(await cache.get('tok')).toBeNull();
  });

  it('expires entries after the TTL, drops by user, and stays bounded', async () => {
    const clock = createManualClock(0);
    const cache = createSessionCache(fakeStore({ value: 1 }), clock, { ttlMs: 1000, maxEntries: 2 });
    await cache.set('a', session('ses_a'), user, await cache.ticket());
    await cache.set('b', session('ses_b', 'u2'), user, await cache.ticket());
    await cache.set('c', session('ses_c'), user, await cache.ticket());
    expect(await cache.get('a')).toBeNull(); // evicted: bounded at 2
    cache.dropUser('u1');
    expect(await cache.get('c')).toBeNull();
    expect(await cache.get('b')).not.toBeNull();
    clock.advance(1000);
    expect(await cache.get('b')).toBeNull();
  });
});
