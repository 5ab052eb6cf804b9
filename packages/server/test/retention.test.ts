import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, createAuthority, loadConfig, systemClock } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import { afterEach, describe, expect, it } from 'vitest';
import { startRetention } from '../src/sweeper.js';
import { runCliCaptured } from './cli-support.js';
import { adminRequest, createTestServer, createUserWithSessions, revocationLog, type TestServer } from './support.js';

// The retention job (packages/core/src/retention.ts) through the authority, on a manual
// clock: what it deletes after how long, and what it never deletes.

const DAY = 86_400_000;
let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

// Sessions that would otherwise expire during the months these tests skip over.
const longSessions = { session: { idleTimeoutSeconds: 400 * 86_400, absoluteLifetimeSeconds: 400 * 86_400 } };

describe('retention', () => {
  it('deletes log entries after revocationLogDays and ended sessions after endedSessionsDays; never an active session', async () => {
    t = await createTestServer({ file: longSessions });
    const { sessions } = await createUserWithSessions(t, 3);
    const [ended1, ended2, active] = sessions;
    for (const s of [ended1, ended2]) expect((await adminRequest(t, 'DELETE', `/sessions/${s!.handle}`)).statusCode).toBe(204);
    expect(await revocationLog(t)).toHaveLength(2);

    // Within every window: nothing goes.
    t.clock.advance(6 * DAY);
    expect(await t.authority.retention.purge('system')).toEqual({ endedSessions: 0, revocations: 0, deliveries: 0, audit: 0 });

    // After 7 days the log entries go; the ended sessions are still listed for the admin.
    t.clock.advance(2 * DAY);
    expect(await t.authority.retention.purge('system')).toEqual({ endedSessions: 0, revocations: 2, deliveries: 0, audit: 0 });
    expect(await revocationLog(t)).toEqual([]);
    expect((await t.store.findSessionsByHandles([ended1!.handle, ended2!.handle])).map((s) => s.endReason)).toEqual(['admin_revoked', 'admin_revoked']);

    // After 35 days the ended sessions go too; the active one keeps working.
    t.clock.advance(28 * DAY);
    expect(await t.authority.retention.purge('system')).toEqual({ endedSessions: 2, revocations: 0, deliveries: 0, audit: 0 });
    expect(await t.store.findSessionsByHandles(sessions.map((s) => s.handle))).toEqual([expect.objectContaining({ handle: active!.handle, endedAt: null })]);
    expect((await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { 'x-session-token': active!.token } })).statusCode).toBe(200);
    // An end after a purge still gets the next cursor: the log never reuses one.
    expect((await adminRequest(t, 'DELETE', `/sessions/${active!.handle}`)).statusCode).toBe(204);
    expect((await revocationLog(t)).map((e) => e.cursor)).toEqual([3]);

    // Each run that deleted something says so in the audit trail (which is kept by default).
    const audit = await t.store.listAudit({ limit: 100 });
    expect(audit.filter((e) => e.action === 'retention.purged').map((e) => e.details)).toEqual([
      { endedSessions: 2, revocations: 0, deliveries: 0, audit: 0 },
      { endedSessions: 0, revocations: 2, deliveries: 0, audit: 0 },
    ]);
    t.clock.advance(10_000 * DAY);
    expect((await t.authority.retention.purge('system')).audit).toBe(0);
  });

  it('deletes audit events only when auditDays is set, and keeps nothing-to-do runs out of the audit trail', async () => {
    t = await createTestServer({ file: { ...longSessions, retention: { auditDays: 30, endedSessionsDays: 0, revocationLogDays: 0, deliveredDays: 0 } } });
    await createUserWithSessions(t, 1);
    const before = (await t.store.listAudit({ limit: 100 })).length;
    expect(before).toBeGreaterThan(0);
    t.clock.advance(29 * DAY);
    expect(await t.authority.retention.purge('system')).toEqual({ endedSessions: 0, revocations: 0, deliveries: 0, audit: 0 });
    expect(await t.store.listAudit({ limit: 100 })).toHaveLength(before);
    t.clock.advance(2 * DAY);
    expect((await t.authority.retention.purge('system')).audit).toBe(before);
    // What is left is the record of that purge.
    expect((await t.store.listAudit({ limit: 100 })).map((e) => e.action)).toEqual(['retention.purged']);
  });

  it('works in batches: more rows than batchSize all go in one run', async () => {
    t = await createTestServer({ file: { ...longSessions, retention: { batchSize: 3 } } });
    const { sessions } = await createUserWithSessions(t, 8);
    expect((await adminRequest(t, 'POST', '/sessions/revoke', { handles: sessions.map((s) => s.handle) })).statusCode).toBe(200);
    t.clock.advance(36 * DAY);
    expect(await t.authority.retention.purge('system')).toMatchObject({ endedSessions: 8, revocations: 8 });
    expect(await t.store.findSessionsByHandles(sessions.map((s) => s.handle))).toEqual([]);
  });

  it('runs on every node at start and then every retention.intervalSeconds, unless retention.enabled is false', async () => {
    for (const enabled of [false, true]) {
      t = await createTestServer({ file: { ...longSessions, retention: { enabled } } });
      const { sessions } = await createUserWithSessions(t, 1);
      expect((await adminRequest(t, 'DELETE', `/sessions/${sessions[0]!.handle}`)).statusCode).toBe(204);
      t.clock.advance(36 * DAY);
      const metrics = t.metrics;
      const job = startRetention(t.authority, t.config, t.app.log, (counts) => metrics.recordPurge(counts));
      await job.stop(); // waits for the run that started at once
      expect(await t.store.findSessionsByHandles([sessions[0]!.handle]), `enabled: ${enabled}`).toHaveLength(enabled ? 0 : 1);
      // What it deleted is counted for Prometheus, by kind.
      const text = await metrics.registry.metrics();
      if (enabled) {
        expect(text).toContain('tessera_retention_deleted_total{kind="ended_sessions"} 1');
        expect(text).toContain('tessera_retention_deleted_total{kind="revocations"} 1');
      } else {
        expect(text).not.toMatch(/tessera_retention_deleted_total\{/);
      }
      await t.close();
      t = undefined;
    }
  });

  it('refuses a revocation log shorter than an access token lives, naming the key', () => {
    expect(() => loadConfig({ file: { retention: { revocationLogDays: 1 }, tokens: { accessTokenTtlSeconds: 86_400 } } })).toThrow(ConfigError);
    expect(() => loadConfig({ file: { retention: { revocationLogDays: 1 }, tokens: { accessTokenTtlSeconds: 86_400 } } })).toThrow(/retention\.revocationLogDays/);
    expect(() => loadConfig({ file: { retention: { revocationLogDays: -1 } } })).toThrow(/retention\.revocationLogDays/);
    expect(loadConfig({ file: { retention: { revocationLogDays: 0 }, tokens: { accessTokenTtlSeconds: 86_400 } } }).retention.revocationLogDays).toBe(0);
  });
});

describe('tessera purge', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('runs the retention job once and says what it deleted (text and --json)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-purge-'));
    const env = { TESSERA_DATA_DIR: dir, TESSERA_LOG_LEVEL: 'silent' };
    const store = createSqliteStore(join(dir, 'tessera.db'));
    await store.migrate();
    const authority = createAuthority({ store, config: loadConfig({ env }), clock: systemClock });
    const user = await authority.users.createUser({ username: 'old-timer', password: null }, 'admin');
    const old = await store.createSession({ tokenId: 'tok_old_session', secretHash: '0'.repeat(64), handle: 'ses_old', userId: user.id, ip: null, userAgent: null, createdAt: Date.now() - 60 * DAY, idleTimeoutMs: DAY, expiresAt: Date.now() + DAY, apps: [] });
    await store.endSessions([old.handle], { at: Date.now() - 40 * DAY, reason: 'logout', actor: 'user' });
    const { session: fresh } = await authority.sessions.startSession(await authority.users.getUser(user.id), { ip: null, userAgent: null });
    await store.close();

    const text = await runCliCaptured(['purge'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe('Deleted 1 ended session(s) (older than 35 days), 1 revocation-log entry (older than 7 days), 0 delivered deliveries (older than 7 days), 0 audit event(s) (kept forever).\n');
    const json = await runCliCaptured(['purge', '--json'], env);
    expect(JSON.parse(json.stdout)).toEqual({ purged: { ended_sessions: 0, revocations: 0, deliveries: 0, audit_events: 0 } });

    const after = createSqliteStore(join(dir, 'tessera.db'));
    expect((await after.findSessionsByHandles([old.handle, fresh.handle])).map((s) => s.handle)).toEqual([fresh.handle]);
    expect((await after.listAudit({ limit: 10 }))[0]).toMatchObject({ action: 'retention.purged', actor: 'admin' });
    await after.close();
  });
});
