import type { NewSession, RevocationEvent, Store } from '@tessera/core';
import { createPostgresDriver, createPostgresStore, createSqlStore } from '@tessera/store';
import { describeStoreConformance } from '@tessera/store/conformance';
import { afterAll, describe, expect, it } from 'vitest';
import { freshSchemaUrl, postgresTestUrl, type TestSchema } from './pg-support.js';
import { recordingDriver, userSessionStatements, type Recorded } from './recording-driver.js';

const base = await postgresTestUrl();
const schemas: TestSchema[] = [];

async function schema(): Promise<TestSchema> {
  const created = await freshSchemaUrl(base!);
  schemas.push(created);
  return created;
}

async function dropSchemas(): Promise<void> {
  // One after another: dropping every schema at once takes a lock per table of each in
  // parallel, which ran PostgreSQL out of its lock table ("out of shared memory") while other
  // test files were busy on the same server.
  for (const s of schemas.splice(0)) await s.drop();
}

const session = (n: number, userId: string, overrides: Partial<NewSession> = {}): NewSession => ({
  tokenId: `tok_${n}`, secretHash: 'x', handle: `ses_${n}`, userId, ip: null, userAgent: null,
  createdAt: n, idleTimeoutMs: 1000, expiresAt: n + 10_000, apps: [], ...overrides,
});

/**
 * A migrated store in a fresh schema that records its statements, holding `count` sessions
 * of `users` users: `session(n, usr_<n % users>)` for every n.
 *
 * The first one goes through createSession; the rest are copied from it by one
 * INSERT … SELECT over generate_series on the server. Thousands of createSession round trips
 * took seconds alone and over 30 s on a loaded machine, and these tests are about the plans
 * of the store's queries over many rows, not about how the rows got there. The copies are
 * checked to read back exactly as createSession would have written them.
 */
async function recordedStoreWithSessions(count: number, users: number): Promise<{ url: string; log: Recorded[]; store: Store }> {
  const { url } = await schema();
  const log: Recorded[] = [];
  const store = createSqlStore(recordingDriver(createPostgresDriver(url), log));
  await store.migrate();
  const first = await store.createSession(session(0, 'usr_0'));
  const driver = createPostgresDriver(url);
  try {
    await driver.run(
      `INSERT INTO sessions (token_id, handle, user_id, secret_hash, ip, user_agent, created_at, last_seen_at, idle_timeout_ms, expires_at, idle_expires_at, apps)
       SELECT 'tok_' || n, 'ses_' || n, 'usr_' || (n % ?), secret_hash, ip, user_agent, n, n, idle_timeout_ms, n + 10000, LEAST(n + idle_timeout_ms, n + 10000), apps
       FROM sessions, generate_series(1, ? - 1) AS n WHERE handle = 'ses_0'`,
      [users, count],
    );
  } finally {
    await driver.close();
  }
  const n = count - 1;
  const { endedAt: _e, endedBy: _b, endReason: _r, ...shape } = { ...first, ...session(n, `usr_${n % users}`) };
  expect(await store.findSessionByHandle(`ses_${n}`)).toEqual({ ...shape, lastSeenAt: n, idleExpiresAt: Math.min(n + 1000, n + 10_000), endedAt: null, endedBy: null, endReason: null });
  log.length = 0;
  return { url, log, store };
}

/**
 * The plan tests end 18,000 sessions through the store (writing as many log entries): about
 * 6 s on an idle machine, several times that on a loaded one. Their budget is the work's, not
 * vitest's 30 s default for a unit test.
 */
const VOLUME_TEST_TIMEOUT_MS = 180_000;

describe.skipIf(!base)('postgres store', () => {
  afterAll(dropSchemas);

  // One schema per test: the store under test starts empty, whatever ran before.
  describeStoreConformance('postgres', async () => createPostgresStore((await schema()).url), dropSchemas);

  it('gives each store its own schema through the URL', async () => {
    const { url, name } = await schema();
    const driver = createPostgresDriver(url);
    try {
      expect(await driver.get('SELECT current_schema() AS s')).toEqual({ s: name });
    } finally {
      await driver.close();
    }
  });

  it('lists and ends a user’s sessions through the sessions_by_user index', async () => {
    const { url, log, store } = await recordedStoreWithSessions(4000, 400);
    try {
      // Some ended sessions, so that the statistics know ended_at is not always null.
      await store.endSessions(Array.from({ length: 400 }, (_, i) => `ses_${i * 10 + 5}`), { at: 1, reason: 'logout', actor: 'user' });
      const driver = createPostgresDriver(url);
      try {
        await driver.exec('ANALYZE sessions');

        const statements = await userSessionStatements(store, log);
        expect(statements).toHaveLength(4);

        for (const { sql, params } of statements) {
          const plan = (await driver.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).map((r) => r['QUERY PLAN']).join('\n');
          expect(plan, sql).toMatch(/Index (Only )?Scan (using|on) sessions_by_user|Bitmap Index Scan on sessions_by_user/);
          expect(plan, sql).not.toMatch(/Seq Scan on sessions\b/);
        }
      } finally {
        await driver.close();
      }
    } finally {
      await store.close();
    }
  });

  it('purges ended sessions through sessions_by_end and finds the first recent log entry through revocations_by_time', async () => {
    const { url, log, store } = await recordedStoreWithSessions(20_000, 2000);
    try {
      // 18,000 ends in 20 batches, one end time per batch: a long log, most of it old.
      for (let batch = 0; batch < 20; batch++) {
        await store.endSessions(Array.from({ length: 900 }, (_, i) => `ses_${batch * 1000 + i}`), { at: 1000 + batch, reason: 'logout', actor: 'user' });
      }
      const driver = createPostgresDriver(url);
      try {
        await driver.exec('ANALYZE sessions');
        await driver.exec('ANALYZE revocations');
        log.length = 0;
        expect(await store.firstRevocationSince(1019)).toBe(17_101);
        expect(await store.firstRevocationSince(5000)).toBeNull();
        expect(await store.purgeEndedSessions(1001, 100)).toBe(100);
        const statements = log.filter((r) => /ended_at < \?|FROM revocations WHERE at >= \?/.test(r.sql));
        expect(statements).toHaveLength(3);
        const plans = [];
        for (const { sql, params } of statements) plans.push((await driver.all<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).map((r) => r['QUERY PLAN']).join('\n'));
        for (const plan of plans.slice(0, 2)) {
          expect(plan).toMatch(/Index (Only )?Scan (using|on) revocations_by_time|Bitmap Index Scan on revocations_by_time/);
          expect(plan).not.toMatch(/Seq Scan on revocations|revocations_pkey/);
        }
        expect(plans[2]).toMatch(/Index (Only )?Scan (using|on) sessions_by_end|Bitmap Index Scan on sessions_by_end/);
        expect(plans[2]).not.toMatch(/Seq Scan on sessions\b/);
      } finally {
        await driver.close();
      }
    } finally {
      await store.close();
    }
  }, VOLUME_TEST_TIMEOUT_MS);

  it('keeps one gapless log when several nodes end the same sessions at once', async () => {
    const { url } = await schema();
    const nodes: Store[] = [createPostgresStore(url, { max: 4 }), createPostgresStore(url, { max: 4 }), createPostgresStore(url, { max: 4 })];
    try {
      // Every node runs migrate at start; the advisory lock applies each migration once.
      await Promise.all(nodes.map((n) => n.migrate()));
      const [first] = nodes as [Store, ...Store[]];
      await first.transaction(async (tx) => {
        for (let n = 0; n < 60; n++) await tx.createSession(session(n, `usr_${n % 6}`, { createdAt: 0, idleTimeoutMs: n % 3 === 0 ? 10 : 100_000 }));
      });
      const calls: Promise<RevocationEvent[]>[] = [];
      for (let i = 0; i < 60; i++) {
        const node = nodes[i % nodes.length]!;
        const end = { at: 1000 + i, reason: 'admin_revoked', actor: 'admin' } as const;
        if (i % 4 === 0) calls.push(node.endUserSessions(`usr_${i % 6}`, {}, end));
        else if (i % 4 === 1) calls.push(node.endExpiredSessions(1000, 7));
        else calls.push(node.endSessions([`ses_${i}`, `ses_${(i * 7) % 60}`], end));
      }
      for (let u = 0; u < 6; u++) calls.push(nodes[u % nodes.length]!.endUserSessions(`usr_${u}`, {}, { at: 2000, reason: 'user_deleted', actor: 'admin' }));
      const returned = (await Promise.all(calls)).flat().sort((a, b) => a.cursor - b.cursor);
      expect(returned.map((e) => e.cursor)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(new Set(returned.map((e) => e.sid)).size).toBe(60);
      expect(await nodes[2]!.listRevocations(0, 1000)).toEqual(returned);
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});
