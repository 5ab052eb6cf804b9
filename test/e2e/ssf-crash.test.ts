// At-least-once for Shared Signals across a crash: Tessera runs as its own process (the built
// CLI, `tessera start`, SQLite in a temp dir) with a push stream to an independent receiver
// (support/ssf-receiver.ts) that answers slowly. Many sessions of many users end at once;
// half-way through the pushes the process is killed with SIGKILL by its PID, then started
// again on the same data dir. Every SET still arrives, validated by the receiver; the only
// duplicates are SETs that were out (leased) when the process died, and a duplicate is the
// same SET again: the same jti (the receiver deduplicates on it).
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, killProcess as kill, startCliProcess, START_TIMEOUT_MS } from './support/cli-process.js';
import { findFreePort } from './support/free-port.js';
import { call, clientCredentialsToken, discover, EVENT, PUSH_URN, startPushReceiver, until, type PushReceiver, type Transmitter } from './support/ssf-receiver.js';

const ADMIN = `ssf-crash-admin-${'q'.repeat(40)}`;
const USERS = 30;
const CONCURRENCY = 6;

let dataDir: string;
let configFile: string;
let port: number;
let url: string;
let child: ChildProcess | null = null;
let receiver: PushReceiver | null = null;

const startTessera = () => startCliProcess({ configFile, port, dataDir, adminToken: ADMIN });

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -b)`);
  dataDir = mkdtempSync(join(tmpdir(), 'tessera-ssf-crash-'));
  configFile = join(dataDir, 'tessera.json');
  writeFileSync(configFile, JSON.stringify({ outbox: { leaseSeconds: 5, timeoutMs: 3_000, backoffBaseMs: 100, backoffMaxMs: 500, pollIntervalMs: 50 }, ssf: { pushConcurrency: CONCURRENCY } }));
  port = await findFreePort();
  url = `http://127.0.0.1:${port}`;
  child = await startTessera();
}, START_TIMEOUT_MS + 30_000);

afterAll(async () => {
  if (child) await kill(child);
  await receiver?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('SIGKILL mid-push, then a restart on the same data dir', () => {
  it('delivers every SET at least once; a duplicate has the same jti; none is lost', async () => {
    let transmitter: Transmitter = await discover(url);
    const admin = (method: string, path: string, body?: unknown) => call(ADMIN, method, `${url}/admin/api${path}`, body);
    const app = (await admin('POST', '/apps', { name: 'receiver', grant_types: ['client_credentials'] })).body;
    const site = (await admin('POST', '/apps', { name: 'site', trusted: true })).body;
    const token = String((await clientCredentialsToken(`${url}/oidc/token`, app.app.client_id, app.client_secret)).body.access_token);
    receiver = await startPushReceiver(() => transmitter, () => app.app.client_id, { answerAfterMs: 300 });
    const stream = await call(token, 'POST', String(transmitter.metadata.configuration_endpoint), { events_requested: [EVENT.sessionRevoked], delivery: { method: PUSH_URN, endpoint_url: receiver.url } });
    expect(stream.status).toBe(201);
    transmitter = await discover(url);

    const handles: string[] = [];
    for (let i = 0; i < USERS; i += 1) {
      const user = (await admin('POST', '/users', { username: `crash${i}` })).body.user.id as string;
      const started = await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${site.app.client_id}:${site.client_secret}`).toString('base64')}`, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: user }) });
      handles.push(((await started.json()) as { session: { handle: string } }).session.handle);
    }
    // One admin call ends them all: 30 SETs, about 30 different users, pushed 6 at a time.
    expect((await admin('POST', '/sessions/revoke', { handles })).status).toBe(200);
    await until('some SETs to arrive, not all', () => receiver!.received.length >= CONCURRENCY && receiver!.received.length < USERS);
    await kill(child!);
    child = null;
    const atKill = receiver.received.length;
    expect(atKill).toBeLessThan(USERS);

    child = await startTessera();
    const bySid = () => new Set(receiver!.received.map((s) => (s.claims.sub_id as { sub: string }).sub));
    await until('every user\'s SET after the restart', () => bySid().size === USERS, 60_000);
    expect(receiver.rejected).toEqual([]);
    // Duplicates: only SETs that were out when the process died, each the same jti again.
    const jtis = receiver.received.map((s) => s.claims.jti);
    const unique = new Set(jtis);
    expect(unique.size).toBe(USERS);
    const events = (await admin('GET', `/ssf/streams/${stream.body.stream_id}/events?limit=100`)).body.events as Array<{ jti: string; attempts: number; last_error: string | null }>;
    // Besides the SETs out at the kill (at most pushConcurrency), only retries the transmitter
    // recorded (a push that timed out on this loaded machine) may arrive twice.
    const retried = events.reduce((n, e) => n + Math.max(0, e.attempts - 1), 0);
    expect(jtis.length - unique.size).toBeLessThanOrEqual(CONCURRENCY + retried);
    const perUser = new Map<string, Set<string>>();
    for (const s of receiver.received) {
      const sub = (s.claims.sub_id as { sub: string }).sub;
      perUser.set(sub, (perUser.get(sub) ?? new Set()).add(s.claims.jti));
    }
    expect([...perUser.values()].every((set) => set.size === 1)).toBe(true);
    const state = await until('the stream to show every SET delivered', async () => {
      const s = (await admin('GET', '/ssf/streams')).body.streams[0];
      return s.delivery.delivered === USERS && s.delivery.pending === 0 ? s : undefined;
    }, 30_000);
    expect(state.delivery.dead).toBe(0);
  }, 2 * START_TIMEOUT_MS + 120_000);
});
