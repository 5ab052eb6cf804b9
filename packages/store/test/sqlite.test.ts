import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { NewSession } from '@tessera/core';
import { createSqliteStore, createSqliteDriver, createSqlStore } from '@tessera/store';
import { describeStoreConformance } from '@tessera/store/conformance';
import { afterAll, describe, expect, it } from 'vitest';
import { recordingDriver, userSessionStatements, type Recorded } from './recording-driver.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-store-'));
let files = 0;
const nextFile = () => join(dir, `store-${++files}.db`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreConformance('sqlite (file)', async () => createSqliteStore(nextFile()));
describeStoreConformance('sqlite (:memory:)', async () => createSqliteStore(':memory:'));

describe('sqlite store: a user’s sessions', () => {
  it('are listed and ended through the sessions_by_user index', async () => {
    const file = nextFile();
    const log: Recorded[] = [];
    const store = createSqlStore(recordingDriver(createSqliteDriver(file), log));
    await store.migrate();
    const session = (n: number, userId: string): NewSession => ({
      tokenId: `tok_${n}`, secretHash: 'x', handle: `ses_${n}`, userId, ip: null, userAgent: null,
      createdAt: n, idleTimeoutMs: 1000, expiresAt: n + 10_000, apps: [],
    });
    await store.transaction(async (tx) => {
      for (let n = 0; n < 2000; n++) await tx.createSession(session(n, `usr_${n % 200}`));
    });

    const statements = await userSessionStatements(store, log);
    expect(statements).toHaveLength(4);

    // A second connection on the same file, as an operator would use; the plans are the
    // store's own statements with their own parameters.
    const db = new Database(file, { readonly: true });
    try {
      for (const { sql, params } of statements) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
        expect(plan, sql).toContainEqual(expect.stringMatching(/^SEARCH sessions USING (COVERING )?INDEX sessions_by_user \(user_id=/));
        expect(plan.filter((d) => /^SCAN sessions\b/.test(d)), sql).toEqual([]);
      }
    } finally {
      db.close();
      await store.close();
    }
  });
});

describe('sqlite store: retention and feed start-up read through their indexes', () => {
  it('purgeEndedSessions uses sessions_by_end and firstRevocationSince uses revocations_by_time', async () => {
    const file = nextFile();
    const log: Recorded[] = [];
    const store = createSqlStore(recordingDriver(createSqliteDriver(file), log));
    await store.migrate();
    await store.transaction(async (tx) => {
      for (let n = 0; n < 2000; n++) {
        await tx.createSession({ tokenId: `tok_${n}`, secretHash: 'x', handle: `ses_${n}`, userId: `usr_${n % 200}`, ip: null, userAgent: null, createdAt: n, idleTimeoutMs: 1000, expiresAt: n + 10_000, apps: [] });
      }
    });
    await store.endSessions(Array.from({ length: 500 }, (_, i) => `ses_${i * 4}`), { at: 5, reason: 'logout', actor: 'user' });

    log.length = 0;
    await store.purgeEndedSessions(10, 100);
    await store.firstRevocationSince(3);
    const statements = log.filter((r) => /ended_at < \?|FROM revocations WHERE at >= \?/.test(r.sql));
    expect(statements).toHaveLength(2);
    const db = new Database(file, { readonly: true });
    try {
      const plans = statements.map(({ sql, params }) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail));
      expect(plans[0]).toContainEqual(expect.stringMatching(/^SEARCH sessions USING (COVERING )?INDEX sessions_by_end \((ended_at>\? AND )?ended_at<\?\)/));
      expect(plans[1]).toContainEqual(expect.stringMatching(/^SEARCH revocations USING (COVERING )?INDEX revocations_by_time \(at>\?\)/));
      for (const plan of plans) expect(plan.filter((d) => /^SCAN (sessions|revocations)\b/.test(d))).toEqual([]);
    } finally {
      db.close();
      await store.close();
    }
  });
});

describe('sqlite store: WAL checkpoints', () => {
  it('are made by a worker thread on a connection of its own; the server\'s connection never checkpoints', async () => {
    const file = nextFile();
    const results: Array<{ log: number; checkpointed: number }> = [];
    const driver = createSqliteDriver(file, { checkpointIntervalMs: 20, onCheckpoint: (r) => results.push(r) });
    const store = createSqlStore(driver);
    try {
      await store.migrate();
      // Automatic checkpoints are off on the server's connection (they would run in its commits).
      expect(await driver.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint')).toEqual({ wal_autocheckpoint: 0 });
      await store.transaction(async (tx) => {
        for (let n = 0; n < 500; n++) await tx.createSession({ tokenId: `tok_${n}`, secretHash: 'x'.repeat(64), handle: `ses_${n}`, userId: `usr_${n}`, ip: null, userAgent: null, createdAt: n, idleTimeoutMs: 1000, expiresAt: n + 10_000, apps: [] });
      });
      // The worker copies the committed frames into the database file.
      const deadline = Date.now() + 10_000;
      while (!results.some((r) => r.log > 0 && r.checkpointed === r.log)) {
        if (Date.now() > deadline) throw new Error(`no complete checkpoint: ${JSON.stringify(results.slice(-3))}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // A second connection sees every row.
      const db = new Database(file, { readonly: true });
      try {
        expect((db.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n).toBe(500);
      } finally {
        db.close();
      }
    } finally {
      await store.close();
    }
    // Closed: the worker is gone and the last connection took the WAL away with it.
    const { existsSync } = await import('node:fs');
    expect(existsSync(`${file}-wal`)).toBe(false);
  });
});
