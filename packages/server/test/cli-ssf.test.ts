import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { createAuthority, loadConfig, systemClock, type Authority, type Store } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectFailure, runCliCaptured, type Run } from './cli-support.js';

/**
 * `tessera ssf streams | status`, run in process through runCli against a SQLite file in a
 * temp dir. Streams are made by a receiver client through the core (as the HTTP API does);
 * a session end plans their SETs; an outcome is recorded as the push worker records it.
 */

let dir: string;
let env: Record<string, string>;
let opened: Array<{ close(): Promise<void> }>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-cli-ssf-'));
  env = { TESSERA_DATA_DIR: dir, TESSERA_LOG_LEVEL: 'silent' };
  opened = [];
});
afterEach(async () => {
  for (const thing of opened.reverse()) await thing.close();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (argv: string[]): Promise<Run> => runCliCaptured(argv, env);
async function ok(argv: string[]): Promise<string> {
  const run = await cli(argv);
  expect(run.code, run.stderr).toBe(0);
  return run.stdout;
}

function openCore(): { authority: Authority; store: Store } {
  const store = createSqliteStore(join(dir, 'tessera.db'));
  opened.push(store);
  return { store, authority: createAuthority({ store, config: loadConfig({ env }), clock: systemClock }) };
}

/**
 * A receiver client `rx` and a user, made with the CLI, and a push stream of `rx` made through
 * the core (as the HTTP API does).
 */
async function receiverWithPushStream(username: string) {
  await ok(['apps', 'create', '--name', 'Receiver', '--client-id', 'rx', '--grant-type', 'client_credentials']);
  const userId = (JSON.parse(await ok(['users', 'create', '--username', username, '--json'])) as { user: { id: string } }).user.id;
  const { authority, store } = openCore();
  const caller = { client: (await store.findApp('rx'))!, scopes: new Set(['ssf.manage']) };
  const push = await authority.ssf.createStream(caller, { eventsRequested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'], delivery: { method: 'push', endpointUrl: 'https://rx.example/events' } });
  return { authority, store, push, user: await authority.users.getUser(userId) };
}

describe('tessera ssf', () => {
  it('lists streams with status and delivery state, and sets a status (the receiver is told)', async () => {
    expect(await ok(['ssf', 'streams'])).toContain('No Shared Signals streams.');
    const { authority, store, push, user } = await receiverWithPushStream('alice');
    const { session } = await authority.sessions.startSession(user, { ip: null, userAgent: null });
    await authority.sessions.revokeSessions([session.handle], { actor: 'admin', reason: 'admin_revoked' });
    const [event] = await store.claimSsfPushEvents('test-worker', Date.now() + 1, Date.now() + 60_000, 10);
    expect(await store.completeSsfEvent(event!.id, 'test-worker', { status: 'pending', at: Date.now(), nextAttemptAt: Date.now() + 60_000, error: 'ECONNREFUSED', httpStatus: null })).toBe(true);

    const table = await ok(['ssf', 'streams']);
    expect(table).toMatch(/STREAM\s+RECEIVER\s+METHOD\s+STATUS\s+PENDING/);
    expect(table).toContain(push.id);
    expect(table).toContain('ECONNREFUSED');
    const json = JSON.parse(await ok(['ssf', 'streams', '--json'])) as { streams: Array<{ stream_id: string; status: string; delivery: { pending: number; last_error: string } }> };
    expect(json.streams).toEqual([expect.objectContaining({ stream_id: push.id, status: 'enabled', delivery: expect.objectContaining({ pending: 1, last_error: 'ECONNREFUSED' }) })]);

    expect(await ok(['ssf', 'status', '--stream', push.id, '--status', 'paused', '--reason', 'maintenance'])).toContain('is paused');
    const events = await store.listSsfEvents(push.id, { limit: 10 });
    expect(events.map((e) => e.eventType)).toContain('https://schemas.openid.net/secevent/ssf/event-type/stream-updated');
    expectFailure(await cli(['ssf', 'status', '--stream', push.id, '--status', 'asleep']), 2, /must be enabled, paused or disabled/);
    const unknown = await cli(['ssf', 'status', '--stream', 'st_nope', '--status', 'paused']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no stream');
  });

  it('sends a dead SET again; refuses anything else, and a disabled stream', async () => {
    const { authority, store, push, user } = await receiverWithPushStream('bob');
    const { session } = await authority.sessions.startSession(user, { ip: null, userAgent: null });
    await authority.sessions.revokeSessions([session.handle], { actor: 'admin', reason: 'admin_revoked' });
    const [event] = await store.claimSsfPushEvents('test-worker', Date.now() + 1, Date.now() + 60_000, 10);
    expect(await store.completeSsfEvent(event!.id, 'test-worker', { status: 'dead', at: Date.now(), nextAttemptAt: Date.now(), error: 'HTTP 400 invalid_audience', httpStatus: 400 })).toBe(true);

    expectFailure(await cli(['ssf', 'retry', '--stream', push.id, '--event', 'x']), 2, /must be a whole number/);
    const json = JSON.parse(await ok(['ssf', 'retry', '--stream', push.id, '--event', String(event!.id), '--json'])) as { event: { id: number; jti: string; status: string } };
    expect(json.event).toMatchObject({ id: event!.id, jti: event!.jti, status: 'pending' });
    expect((await store.listSsfEvents(push.id, { limit: 10 }))[0]).toMatchObject({ id: event!.id, status: 'pending' });
    const again = await cli(['ssf', 'retry', '--stream', push.id, '--event', String(event!.id)]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`no dead SET ${event!.id}`);
    const unknown = await cli(['ssf', 'retry', '--stream', 'st_nope', '--event', '1']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no stream');
    await authority.ssf.setStatusAsAdmin(push.id, 'disabled', null);
    const disabled = await cli(['ssf', 'retry', '--stream', push.id, '--event', String(event!.id)]);
    expect(disabled.code).not.toBe(0);
    expect(disabled.stderr).toContain('SSF_STREAM_DISABLED');
  });

  it('sets the aud of a stream\'s SETs: every SET signed from then on carries it, one planned before included', async () => {
    const { authority, store, push, user } = await receiverWithPushStream('carol');
    const end = async () => {
      const { session } = await authority.sessions.startSession(user, { ip: null, userAgent: null });
      await authority.sessions.revokeSessions([session.handle], { actor: 'admin', reason: 'admin_revoked' });
    };
    await end();

    expectFailure(await cli(['ssf', 'audience', '--stream', push.id]), 2, /missing --aud/);
    for (const bad of [':no-scheme', 'has space', 'tab\there']) {
      const run = await cli(['ssf', 'audience', '--stream', push.id, '--aud', bad]);
      expect(run.code, bad).not.toBe(0);
      expect(run.stderr).toContain('INVALID_REQUEST');
    }
    const unknown = await cli(['ssf', 'audience', '--stream', 'st_nope', '--aud', 'https://example.okta.test']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no stream');
    expect((await store.findSsfStream(push.id))!.audience).toEqual(['rx']);

    expect(await ok(['ssf', 'audience', '--stream', push.id, '--aud', 'https://example.okta.test'])).toContain('now go to aud https://example.okta.test');
    const json = JSON.parse(await ok(['ssf', 'audience', '--stream', push.id, '--aud', 'https://example.okta.test', '--aud', 'rx', '--aud', 'rx', '--json'])) as { stream: { aud: string[] } };
    expect(json.stream.aud).toEqual(['https://example.okta.test', 'rx']);
    await ok(['ssf', 'audience', '--stream', push.id, '--aud', 'https://example.okta.test']);
    await end();
    const [later, earlier] = await store.listSsfEvents(push.id, { limit: 10 });
    expect(earlier!.claims.aud).toBe('rx');
    expect(later!.claims.aud).toBe('https://example.okta.test');
    // Signed as it goes out: the stream's aud now, the other claims as planned.
    const stream = (await store.findSsfStream(push.id))!;
    for (const event of [earlier!, later!]) {
      const claims = decodeJwt(await authority.ssf.signSet(event, stream));
      expect(claims).toEqual({ ...event.claims, aud: 'https://example.okta.test' });
    }
    const audit = (await store.listAudit({ limit: 50 })).filter((e) => e.action === 'ssf.stream_audience').map((e) => e.details);
    expect(audit[0]).toEqual({ stream: push.id, audience: ['https://example.okta.test'], previous: ['https://example.okta.test', 'rx'] });
    expect(await ok(['ssf', 'audience', '--help'])).toContain('Okta');
  });
});
