import type { NewSession, RevocationEvent, Store } from '@tessera/core';
import { createPostgresDriver, createPostgresStore, createSqlStore, type SqlDriver } from '@tessera/store';
import { describeStoreConformance } from '@tessera/store/conformance';
import pg from 'pg';
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

/** The texts of the messages pg sends while `fn` runs (pg.Client.prototype.query spied on). */
async function messages<T>(fn: () => Promise<T>): Promise<{ result: T; sent: string[] }> {
  const sent: string[] = [];
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const config = args[0] as string | { text?: string };
    sent.push(typeof config === 'string' ? config : config.text ?? '');
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    return { result: await fn(), sent };
  } finally {
    pg.Client.prototype.query = original;
  }
}

/**
 * Runs `test` with a migrated store in a fresh schema over a single connection, so that what
 * the test reads through `driver` afterwards (a SHOW, the table's statistics) comes from the
 * connection the store's statements ran on.
 */
async function withOneConnection(test: (s: { url: string; name: string; driver: SqlDriver; store: Store }) => Promise<void>): Promise<void> {
  const { url, name } = await schema();
  const driver = createPostgresDriver(url, { max: 1 });
  const store = createSqlStore(driver);
  try {
    await store.migrate();
    await test({ url, name, driver, store });
  } finally {
    await driver.close();
  }
}

/**
 * `withOneConnection` with planner statistics taken at a quiet moment: 10 push streams and
 * 5,000 SETs, all delivered, vacuumed and analysed with none pending (as most instants at 100
 * revocations a second). `enqueue(count, streamOf)` then adds pending SETs, by default spread
 * over the 10 streams; `admin` is a connection of the test's own to the same schema.
 */
async function withQuietStatistics(test: (s: { name: string; store: Store; admin: pg.Client; enqueue: (count: number, streamOf?: (n: number) => string) => Promise<void> }) => Promise<void>): Promise<void> {
  await withOneConnection(async ({ url, name, store }) => {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const at = Date.now();
      for (let s = 0; s < 10; s += 1) await store.createSsfStream(pushStream(`st_${s}`, at));
      let n = 0;
      const enqueue = async (count: number, streamOf = (k: number) => `st_${k % 10}`) => {
        for (let done = 0; done < count; done += 1000) {
          await store.enqueueSsfEvents(Array.from({ length: Math.min(1000, count - done) }, () => {
            n += 1;
            return { streamId: streamOf(n), jti: `jti_${n}`, subjectKey: `user:u${n}`, eventType: 'x', claims: {}, createdAt: at, horizonAt: at + 3_600_000 };
          }));
        }
      };
      await enqueue(5000);
      await admin.query(`UPDATE ${name}.ssf_events SET status = 'delivered', delivered_at = ${at}`);
      await admin.query(`VACUUM ${name}.ssf_events`);
      await admin.query(`ANALYZE ${name}.ssf_events`);
      await test({ name, store, admin, enqueue });
    } finally {
      await admin.end();
    }
  });
}

/**
 * The plan of the statement in a one-message transaction as the store sent it (BEGIN, its
 * SET LOCALs, the statement, COMMIT), run again under EXPLAIN ANALYZE and rolled back.
 */
async function explainMessage(admin: pg.Client, message: string): Promise<PlanNode> {
  const statements = message.split(';\n');
  const results = await admin.query([...statements.slice(0, -2), `EXPLAIN (ANALYZE, FORMAT JSON) ${statements.at(-2)!}`, 'ROLLBACK'].join(';\n')) as unknown as pg.QueryResult[];
  return results.find((r) => r.rows?.[0]?.['QUERY PLAN'])!.rows[0]['QUERY PLAN'][0].Plan;
}

/**
 * The plan of one parameterised statement as the store sent it outside a transaction, run
 * again under EXPLAIN ANALYZE in schema `name` with `values`, and rolled back.
 */
async function explainStatement(admin: pg.Client, name: string, text: string, values: unknown[]): Promise<PlanNode> {
  await admin.query(`BEGIN; SET LOCAL search_path = ${name}`);
  try {
    return (await admin.query({ text: `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values })).rows[0]['QUERY PLAN'][0].Plan as PlanNode;
  } finally {
    await admin.query('ROLLBACK');
  }
}

/** A plan node of EXPLAIN (ANALYZE, FORMAT JSON). */
interface PlanNode { 'Relation Name'?: string; 'Index Name'?: string; 'Actual Rows': number; 'Actual Loops': number; 'Rows Removed by Filter'?: number; Plans?: PlanNode[] }

/** The rows of `table` a plan's scans read (filtered ones included, times their loops), and the indexes they went through. */
function scansOf(plan: PlanNode, table: string): { read: number; indexes: string[] } {
  const own = plan['Relation Name'] === table
    ? { read: (plan['Actual Rows'] + (plan['Rows Removed by Filter'] ?? 0)) * plan['Actual Loops'], indexes: [plan['Index Name'] ?? 'none'] }
    : { read: 0, indexes: [] as string[] };
  for (const child of plan.Plans ?? []) {
    const scans = scansOf(child, table);
    own.read += scans.read;
    own.indexes.push(...scans.indexes);
  }
  return own;
}

/** An enabled push stream (the columns the SET claims read). */
function pushStream(id: string, at: number) {
  return { id, clientId: 'app_rx', audience: ['app_rx'], eventsRequested: ['x'], eventsDelivered: ['x'], deliveryMethod: 'push' as const, endpointUrl: 'https://rx.example.test/events', authorizationHeader: null, description: null, status: 'enabled' as const, statusReason: null, subjectFormat: 'iss_sub' as const, minVerificationInterval: 30, lastVerificationAt: null, createdAt: at, updatedAt: at };
}

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

  /** A driver (and a second one, on its own connections) on a fresh schema, closed afterwards. */
  async function withDriver(test: (driver: SqlDriver, other: SqlDriver) => Promise<void>): Promise<void> {
    const { url } = await schema();
    const driver = createPostgresDriver(url);
    const other = createPostgresDriver(url);
    try {
      await test(driver, other);
    } finally {
      await driver.close();
      await other.close();
    }
  }

  describe('a transaction sends BEGIN and deferred statements with the next statement', () => {
    it('runs its first statement inside the transaction: a failure after it rolls it back', () => withDriver(async (driver) => {
      await driver.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      await expect(driver.transaction(async (tx) => {
        await tx.run('INSERT INTO t (n) VALUES (?)', [1]);
        throw new Error('after the first statement');
      })).rejects.toThrow('after the first statement');
      await expect(driver.transaction(async (tx) => {
        await tx.defer!('INSERT INTO t (n) VALUES (?)', [2]);
        throw new Error('with only a deferred statement');
      })).rejects.toThrow('with only a deferred statement');
      expect(await driver.all('SELECT n FROM t')).toEqual([]);
      expect(await driver.transaction(async () => 'nothing sent')).toBe('nothing sent');
    }));

    it('runs deferred statements in order before the next one, commits them, and fails the transaction on their error', () => withDriver(async (driver) => {
      await driver.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT)');
      const seen = await driver.transaction(async (tx) => {
        await tx.defer!('INSERT INTO t (n, s) VALUES (?, ?)', [1, "o'ne"]);
        await tx.defer!('UPDATE t SET s = s || ? WHERE n = ?', ['!', 1]);
        const inside = await tx.all('SELECT n, s FROM t');
        await tx.defer!('INSERT INTO t (n, s) VALUES (?, ?)', [2, null]);
        return inside;
      });
      expect(seen).toEqual([{ n: 1, s: "o'ne!" }]);
      // The last deferred statement went with the COMMIT.
      expect(await driver.all('SELECT n, s FROM t ORDER BY n')).toEqual([{ n: 1, s: "o'ne!" }, { n: 2, s: null }]);
      // A deferred statement that fails (a duplicate key) fails the statement it travels with.
      await expect(driver.transaction(async (tx) => {
        await tx.run('INSERT INTO t (n, s) VALUES (?, ?)', [3, 'three']);
        await tx.defer!('INSERT INTO t (n, s) VALUES (?, ?)', [1, 'duplicate']);
        return tx.get('SELECT COUNT(*) AS c FROM t');
      })).rejects.toThrow(/duplicate key/);
      // ...or the COMMIT it travels with.
      await expect(driver.transaction(async (tx) => {
        await tx.run('INSERT INTO t (n, s) VALUES (?, ?)', [4, 'four']);
        await tx.defer!('INSERT INTO t (n, s) VALUES (?, ?)', [2, 'duplicate']);
      })).rejects.toThrow(/duplicate key/);
      // A value with no literal form runs on its own, still inside the transaction.
      await expect(driver.transaction(async (tx) => {
        await tx.defer!('INSERT INTO t (n, s) VALUES (?, ?)', [5, 'five']);
        await tx.defer!('INSERT INTO t (n, s) VALUES (?, ?)', [6, Buffer.from('bytes') as unknown as string]);
        throw new Error('rolled back');
      })).rejects.toThrow('rolled back');
      expect(await driver.all('SELECT n FROM t ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    }));
  });

  describe('pipeline: a read sent with the next statement', () => {
    it('gives its rows as they were before the next statement, in one message with it', () => withDriver(async (driver) => {
      await driver.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      await driver.run('INSERT INTO t (n) VALUES (?)', [1]);
      const { result, sent } = await messages(() => driver.transaction(async (tx) => {
        const before = tx.pipeline!<{ n: number }>('SELECT n FROM t WHERE n >= ? ORDER BY n', [1]);
        const inserted = await tx.all<{ n: number }>('INSERT INTO t (n) VALUES (?) RETURNING n', [2]);
        return { before: await before, inserted };
      }));
      expect(result).toEqual({ before: [{ n: 1 }], inserted: [{ n: 2 }] });
      // BEGIN, the read and the INSERT in one message; then the COMMIT.
      expect(sent).toHaveLength(2);
      expect(sent[0]).toMatch(/^BEGIN;\nSELECT n FROM t WHERE n >= '1' ORDER BY n;\nINSERT INTO t/);
      expect(sent[1]).toBe('COMMIT');
      expect(await driver.all('SELECT n FROM t ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    }));

    it('is sent on its own when nothing follows it, so a caller waiting for it does not wait forever', () => withDriver(async (driver) => {
      await driver.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      const rows = await driver.transaction(async (tx) => {
        const read = await tx.pipeline!<{ c: string }>('SELECT COUNT(*)::text AS c FROM t');
        await tx.run('INSERT INTO t (n) VALUES (?)', [1]);
        return read;
      });
      expect(rows).toEqual([{ c: '0' }]);
      expect(await driver.all('SELECT n FROM t')).toEqual([{ n: 1 }]);
    }));

    it('fails with the statement it travels with, and with a transaction that fails before sending it', () => withDriver(async (driver) => {
      await driver.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      await driver.run('INSERT INTO t (n) VALUES (?)', [1]);
      let read: Promise<unknown> | undefined;
      await expect(driver.transaction(async (tx) => {
        read = tx.pipeline!('SELECT n FROM t');
        read.catch(() => undefined);
        await tx.run('INSERT INTO t (n) VALUES (?)', [1]);
      })).rejects.toThrow(/duplicate key/);
      await expect(read).rejects.toThrow(/duplicate key/);
      await expect(driver.transaction(async (tx) => {
        read = tx.pipeline!('SELECT n FROM t');
        read.catch(() => undefined);
        throw new Error('before anything was sent');
      })).rejects.toThrow('before anything was sent');
      await expect(read).rejects.toThrow('before anything was sent');
      expect(await driver.all('SELECT n FROM t')).toEqual([{ n: 1 }]);
    }));
  });

  describe('commitWith: a statement and its COMMIT in one round trip', () => {
    it('writes every kind of value as a literal that reads back exactly, and commits', () => withDriver(async (driver, other) => {
      await driver.exec('CREATE TABLE literals (n INTEGER PRIMARY KEY, s TEXT, b BIGINT, f BOOLEAN)');
      const strings = ["it's", 'back\\slash\\', "'; DROP TABLE literals; --", 'a ? b ?? ?', 'ünïcødé 🎉', '', 'E\'x\'', '$1 $$ dollar $$'];
      const rows = await driver.transaction(async (tx) => {
        await tx.run('INSERT INTO literals (n, s, b, f) VALUES (?, ?, ?, ?)', [0, 'before', 1, false]);
        return tx.commitWith!<{ n: number }>(
          `INSERT INTO literals (n, s, b, f) VALUES ${strings.map(() => '(?, ?, ?, ?)').join(', ')}, (?, ?, ?, ?) RETURNING n`,
          [...strings.flatMap((v, i) => [i + 1, v, -(2 ** 40) - i, i % 2 === 0]), 99, null, null, null],
        );
      });
      expect(rows.map((r) => r.n)).toEqual([...strings.map((_, i) => i + 1), 99]);
      // Committed: another connection sees every row, the one written before included.
      const read = await other.all<{ n: number; s: string | null; b: number | null; f: boolean | null }>('SELECT n, s, b, f FROM literals ORDER BY n');
      expect(read).toEqual([
        { n: 0, s: 'before', b: 1, f: false },
        ...strings.map((v, i) => ({ n: i + 1, s: v, b: -(2 ** 40) - i, f: i % 2 === 0 })),
        { n: 99, s: null, b: null, f: null },
      ]);
    }));

    it('rolls the whole transaction back when its statement fails, and refuses values it cannot write', () => withDriver(async (driver) => {
      await driver.exec('CREATE TABLE literals (n INTEGER PRIMARY KEY, s TEXT)');
      await expect(driver.transaction(async (tx) => {
        await tx.run('INSERT INTO literals (n, s) VALUES (?, ?)', [1, 'first']);
        return tx.commitWith!('INSERT INTO literals (n, s) VALUES (?, ?), (?, ?)', [2, 'x', 2, 'duplicate']);
      })).rejects.toThrow(/duplicate key/);
      for (const params of [[3, { not: 'a literal' }], [3, Number.NaN], [3], [3, 'a', 'b']]) {
        await expect(driver.transaction(async (tx) => {
          await tx.run('INSERT INTO literals (n, s) VALUES (?, ?)', [4, 'first']);
          return tx.commitWith!('INSERT INTO literals (n, s) VALUES (?, ?)', params);
        })).rejects.toThrow(/literal|finite|placeholders|parameters/);
      }
      expect(await driver.all('SELECT n FROM literals')).toEqual([]);
      // The connection is usable afterwards: no transaction was left open on it.
      await driver.transaction((tx) => tx.commitWith!('INSERT INTO literals (n, s) VALUES (?, ?)', [5, 'after']));
      expect(await driver.all('SELECT n, s FROM literals')).toEqual([{ n: 5, s: 'after' }]);
      // Nothing may follow commitWith: it would run outside the transaction.
      await expect(driver.transaction(async (tx) => {
        await tx.commitWith!('INSERT INTO literals (n, s) VALUES (?, ?)', [6, 'last']);
        await tx.run('INSERT INTO literals (n, s) VALUES (?, ?)', [7, 'too late']);
      })).rejects.toThrow(/has committed/);
      expect(await driver.all('SELECT n FROM literals ORDER BY n')).toEqual([{ n: 5 }, { n: 6 }]);
      // A number in a text column and text in a number column read as they would as parameters.
      await driver.transaction((tx) => tx.commitWith!('INSERT INTO literals (n, s) VALUES (?, ?)', ['8', 42]));
      expect(await driver.all('SELECT n, s FROM literals WHERE n = ?', [8])).toEqual([{ n: 8, s: '42' }]);
    }));
  });

  it('claims SSF push events with bitmap scans off, in one message, and leaves the setting on the connection as it was', () => withOneConnection(async ({ driver, store }) => {
    const at = Date.now();
    await store.createSsfStream(pushStream('st_1', at));
    await store.enqueueSsfEvents(['user:a', 'user:b'].map((subjectKey, i) => ({ streamId: 'st_1', jti: `jti_${i}`, subjectKey, eventType: 'x', claims: {}, createdAt: at, horizonAt: at + 60_000 })));
    const { result, sent } = await messages(() => store.claimSsfPushEvents('worker', at, at + 30_000, 10));
    expect(result.map((e) => [e.jti, e.leaseOwner])).toEqual([['jti_0', 'worker'], ['jti_1', 'worker']]);
    // A bitmap scan never marks the index entries of delivered SETs dead, so a claim that
    // used one read every SET delivered since the last vacuum (see claimSsfPushEvents).
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/^BEGIN;\nSET LOCAL synchronous_commit = off;\nSET LOCAL enable_bitmapscan = off;\nSET LOCAL enable_sort = off;\nSET LOCAL enable_hashjoin = off;\nSET LOCAL enable_mergejoin = off;\nSET LOCAL enable_material = off;\nUPDATE ssf_events SET lease_owner = 'worker'/);
    expect(sent[0]).toMatch(/;\nCOMMIT$/);
    expect(await driver.get('SHOW enable_bitmapscan')).toEqual({ enable_bitmapscan: 'on' });
    expect(await driver.get('SHOW enable_sort')).toEqual({ enable_sort: 'on' });
    expect(await driver.get('SHOW synchronous_commit')).toEqual({ synchronous_commit: 'on' });
  }));

  it('commits the SET push worker’s claims and outcomes without waiting for the WAL sync, and the revocation that queues the SETs with it', () => withOneConnection(async ({ driver, store }) => {
    const at = Date.now();
    await store.createSsfStream(pushStream('st_1', at));
    await store.createSession(session(1, 'usr_1', { createdAt: at, expiresAt: at + 60_000 }));
    // The revocation and its SETs: the outbox rows must survive a crash of PostgreSQL the
    // moment the revoking request is answered, so nothing here turns the sync off.
    const revoked = await messages(() => store.transaction(async (tx) => {
      expect(await tx.endSessions(['ses_1'], { at, reason: 'admin', actor: 'admin' })).toHaveLength(1);
      await tx.enqueueSsfEvents(['a', 'b', 'c'].map((n) => ({ streamId: 'st_1', jti: `jti_${n}`, subjectKey: `user:${n}`, eventType: 'x', claims: {}, createdAt: at, horizonAt: at + 60_000 })));
    }));
    expect(revoked.sent.join('\n')).toMatch(/INSERT INTO ssf_events/);
    expect(revoked.sent.join('\n')).not.toMatch(/synchronous_commit/);

    // The worker's statements: one message each, the setting for that transaction alone.
    const claimed = await messages(() => store.claimSsfPushEvents('worker', at, at + 30_000, 10));
    expect(claimed.result.map((e) => e.jti)).toEqual(['jti_a', 'jti_b', 'jti_c']);
    const delivered = await messages(() => store.deliverSsfEvents([claimed.result[0]!.id], 'worker', at, 202));
    expect(delivered.result.recorded).toEqual([claimed.result[0]!.id]);
    const retried = await messages(() => store.completeSsfEvent(claimed.result[1]!.id, 'worker', { status: 'pending', at, nextAttemptAt: at + 1000, httpStatus: 503, error: 'HTTP 503' }));
    expect(retried.result).toBe(true);
    const again = await messages(() => store.completeSsfEvent(claimed.result[1]!.id, 'worker', { status: 'delivered', at, httpStatus: 202 }));
    // Its lease went with the retry: an outcome from a worker that no longer holds it is refused.
    expect(again.result).toBe(false);
    for (const { sent } of [claimed, delivered, retried, again]) {
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatch(/^BEGIN;\nSET LOCAL synchronous_commit = off;\n(SET LOCAL [a-z_]+ = off;\n)*UPDATE ssf_events SET [^;]*;\nCOMMIT$/);
    }
    expect(await driver.get('SHOW synchronous_commit')).toEqual({ synchronous_commit: 'on' });
    const rows = await driver.all<{ jti: string; status: string; last_status: number | null }>('SELECT jti, status, last_status FROM ssf_events ORDER BY id');
    expect(rows).toEqual([{ jti: 'jti_a', status: 'delivered', last_status: 202 }, { jti: 'jti_b', status: 'pending', last_status: 503 }, { jti: 'jti_c', status: 'pending', last_status: null }]);
  }));

  it('keeps no planner statistics for ssf_events.status, and drops those gathered before migration 11', () => withOneConnection(async ({ name, driver, store }) => {
    const statusStats = async () => Number((await driver.get<{ n: number }>(`SELECT COUNT(*)::int AS n FROM pg_stats WHERE schemaname = '${name}' AND tablename = 'ssf_events' AND attname = 'status'`))!.n);
    const at = Date.now();
    await store.enqueueSsfEvents([{ streamId: 'st_1', jti: 'jti_1', subjectKey: 'user:a', eventType: 'x', claims: {}, createdAt: at, horizonAt: at + 60_000 }]);
    await driver.exec('ANALYZE ssf_events');
    expect(await statusStats()).toBe(0);
    // A database analysed before migration 11: statistics on, gathered, then the migration again.
    await driver.exec('ALTER TABLE ssf_events ALTER COLUMN status SET STATISTICS -1');
    await driver.exec('ANALYZE ssf_events');
    expect(await statusStats()).toBe(1);
    await driver.run('DELETE FROM schema_migrations WHERE version = 11');
    await store.migrate();
    expect(await statusStats()).toBe(0);
    await driver.exec('ANALYZE ssf_events');
    expect(await statusStats()).toBe(0);
  }));

  it('claims SETs with HOT updates: a lease finds room on its SET’s page and writes no index entry (migration 12)', () => withOneConnection(async ({ driver, store }) => {
    expect(await driver.get("SELECT reloptions FROM pg_class WHERE oid = 'ssf_events'::regclass")).toEqual({ reloptions: ['fillfactor=45'] });
    const at = Date.now();
    await store.createSsfStream(pushStream('st_1', at));
    // SETs the size of real ones (a session-revoked SET's claims are about 650 bytes of
    // JSON; the benchmark's), ten to a revocation as with ten streams.
    const claims = (jti: string) => ({
      iss: 'https://auth.example.test', jti, iat: Math.floor(at / 1000), aud: 'app_p2Zmw3FR9s8AUHr_', txn: '094b9610-b607-4dc5-9fe0-8d1f52005aef',
      sub_id: { format: 'iss_sub', iss: 'https://auth.example.test', sub: 'usr_YBfwSR1SsyrUe_-S' },
      events: { 'https://schemas.openid.net/secevent/caep/event-type/session-revoked': { event_timestamp: Math.floor(at / 1000), initiating_entity: 'admin', reason_admin: { en: 'An administrator ended the session.' }, reason_user: { en: 'An administrator ended your session.' } } },
    });
    for (let r = 0; r < 20; r += 1) {
      await store.enqueueSsfEvents(Array.from({ length: 10 }, (_, i) => ({ streamId: 'st_1', jti: `jti_${r}_${i}`, subjectKey: `user:${r}_${i}`, eventType: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked', claims: claims(`jti_${r}_${i}`), createdAt: at, horizonAt: at + 60_000 })));
    }
    // This connection's counts, flushed (they are otherwise sent at most once a second).
    const updates = async () => {
      await driver.get('SELECT pg_stat_force_next_flush()');
      const row = await driver.get<{ updated: string; hot: string }>("SELECT n_tup_upd AS updated, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relid = 'ssf_events'::regclass");
      return { updated: Number(row!.updated), hot: Number(row!.hot) };
    };
    const before = await updates();
    expect(await store.claimSsfPushEvents('worker', at, at + 30_000, 200)).toHaveLength(200);
    const after = await updates();
    // At the default fillfactor (100) none of these 200 was HOT; at 50, 167.
    expect({ updated: after.updated - before.updated, hot: after.hot - before.hot }).toEqual({ updated: 200, hot: 200 });
  }));

  it('claims SSF push events without reading the backlog, with statistics taken before it', () => withQuietStatistics(async ({ name, store, admin, enqueue }) => {
    // The planner once picked plans that read every pending SET of every stream on each
    // claim, and for each scanned ssf_events_by_stream or ssf_events_due again
    // (bench/ssf-claim-plan.mjs).
    await enqueue(3000);
    const { result, sent } = await messages(() => store.claimSsfPushEvents('worker', Date.now(), Date.now() + 30_000, 20));
    expect(result).toHaveLength(20);
    const claim = scansOf(await explainMessage(admin, sent[0]!), 'ssf_events');
    // 3,000 pending: a claim of 20 reads a few index entries per SET it takes, not the backlog.
    expect(claim.read).toBeLessThan(200);
    expect(claim.indexes).toContain('ssf_events_due');
    expect(claim.indexes).not.toContain('ssf_events_by_stream');

    // Recording their delivery finds them by id, not by walking a partial index of pending rows.
    const delivered = await messages(() => store.deliverSsfEvents(result.map((e) => e.id), 'worker', Date.now(), 202));
    expect(delivered.result.recorded).toHaveLength(20);
    // The UPDATE of its one-message transaction (parameters written inline).
    const record = delivered.sent.flatMap((text) => text.split(';\n')).find((text) => text.startsWith("UPDATE ssf_events SET status = 'delivered'"))!;
    // Explained on a copy of the state before: the same rows leased again, and rolled back.
    await admin.query('BEGIN');
    try {
      await admin.query(`UPDATE ${name}.ssf_events SET status = 'pending', lease_owner = 'worker' WHERE id = ANY($1)`, [result.map((e) => e.id)]);
      const recording = scansOf((await admin.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${record.replace(/ssf_events/g, `${name}.ssf_events`)}`)).rows[0]['QUERY PLAN'][0].Plan, 'ssf_events');
      expect(recording.read).toBeLessThan(200);
      expect(recording.indexes).toContain('ssf_events_pkey');
    } finally {
      await admin.query('ROLLBACK');
    }
  }));

  it('claims SSF push events and expires SETs without reading a held backlog (a paused stream’s), with statistics taken before it', () => withQuietStatistics(async ({ name, store, admin, enqueue }) => {
    // A paused (or polling) stream's SETs wait, up to the horizon; the claim once walked them
    // all on every claim, and the expiry on every pass (migration 13).
    await store.updateSsfStream('st_0', { status: 'paused', updatedAt: Date.now() });
    await enqueue(3000, () => 'st_0');
    await enqueue(20, (n) => `st_${1 + (n % 9)}`);
    const { result, sent } = await messages(() => store.claimSsfPushEvents('worker', Date.now(), Date.now() + 30_000, 50));
    expect(result).toHaveLength(20);
    expect(result.some((e) => e.streamId === 'st_0')).toBe(false);
    const claim = scansOf(await explainMessage(admin, sent[0]!), 'ssf_events');
    expect(claim.read).toBeLessThan(200);
    expect(claim.indexes).toContain('ssf_events_due');

    const expiry = await messages(() => store.expireSsfEvents(Date.now(), 1000));
    expect(expiry.result).toBe(0);
    const now = Date.now();
    const scans = scansOf(await explainStatement(admin, name, expiry.sent[0]!, [now, now, 1000]), 'ssf_events');
    expect(scans.read).toBeLessThan(200);
    expect(scans.indexes).toContain('ssf_events_horizon');

    // The pass that releases held SETs of enabled streams looks at those streams' held SETs
    // only (there are none), not at the paused stream's 3,000.
    const release = await messages(() => store.releaseHeldSsfEvents(1000));
    expect(release.result).toBe(0);
    const update = release.sent.find((text) => text.startsWith('UPDATE ssf_events SET held = 0'))!;
    const enabled = Array.from({ length: 9 }, (_, i) => `st_${i + 1}`);
    expect(scansOf(await explainStatement(admin, name, update, [...enabled, 1000]), 'ssf_events').read).toBeLessThan(200);
  }));

  it('releases a SET inserted held by a transaction that read its stream paused while another enabled it', async () => {
    const { url } = await schema();
    const driver = createPostgresDriver(url, { max: 3 });
    const store = createSqlStore(driver);
    // Another node's store: its own connections, outside the transaction below.
    const otherDriver = createPostgresDriver(url, { max: 1 });
    const other = createSqlStore(otherDriver);
    try {
      await store.migrate();
      const at = Date.now();
      await store.createSsfStream({ ...pushStream('st_race', at), status: 'paused' });
      const set = { streamId: 'st_race', jti: 'jti_race', subjectKey: 'user:u1', eventType: 'x', claims: {}, createdAt: at, horizonAt: at + 3_600_000 };
      await store.transaction(async (tx) => {
        await tx.enqueueSsfEvents([set]);
        // A read sends the deferred INSERT now: it runs (and decides held) while the stream is paused.
        await tx.findSsfStream('st_race');
        // Enabled on another connection meanwhile: its UPDATE of the stream's SETs cannot see this one.
        await other.updateSsfStream('st_race', { status: 'enabled', updatedAt: at + 1 });
      });
      expect(await store.claimSsfPushEvents('n1', Date.now(), Date.now() + 60_000, 10)).toEqual([]);
      expect(await store.releaseHeldSsfEvents(100)).toBe(1);
      expect((await store.claimSsfPushEvents('n1', Date.now(), Date.now() + 60_000, 10)).map((e) => e.jti)).toEqual(['jti_race']);
    } finally {
      await otherDriver.close();
      await driver.close();
    }
  });

  it('claims a poll stream’s SETs without reading its backlog, with statistics taken before it', () => withQuietStatistics(async ({ name, store, admin, enqueue }) => {
    // The claim once read every pending SET of the stream (a bitmap scan of
    // ssf_events_pending_by_subject) and sorted them by id, on every poll.
    await enqueue(3000, () => 'st_0');
    await enqueue(3000, (n) => `st_${1 + (n % 9)}`);
    const { result, sent } = await messages(() => store.claimSsfPollEvents('st_0', 'poller', Date.now(), Date.now() + 30_000, 20));
    expect(result).toHaveLength(20);
    expect(result.every((e) => e.streamId === 'st_0')).toBe(true);
    // The oldest first: the 20 with the smallest ids.
    const oldest = await admin.query(`SELECT id FROM ${name}.ssf_events WHERE stream_id = 'st_0' AND status = 'pending' ORDER BY id LIMIT 20`);
    expect(result.map((e) => e.id)).toEqual(oldest.rows.map((r) => Number(r.id)));
    const claim = scansOf(await explainMessage(admin, sent[0]!), 'ssf_events');
    // 3,000 pending on the stream: a claim of 20 reads about 20 index entries, not the backlog.
    expect(claim.read).toBeLessThan(200);
    expect(claim.indexes).toContain('ssf_events_by_stream');
  }));

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
