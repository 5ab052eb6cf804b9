import Database from 'better-sqlite3';
import type { Row, SqlDriver } from './driver.js';
import { startCheckpointer, type CheckpointResult } from './sqlite-checkpointer.js';

/**
 * better-sqlite3 behind the async {@link SqlDriver} shape.
 *
 * better-sqlite3 is synchronous and has one connection, but a transaction callback is async
 * (it awaits store calls). Without care, another request's statements could run on the same
 * connection in the middle of an open transaction and be committed or rolled back with it.
 * So a promise-chain lock serialises transactions and writes, and reads wait while a
 * transaction is open. Reads with no transaction open run at once (the hot path).
 */
export function createSqliteDriver(filename: string, options: { checkpointIntervalMs?: number; onCheckpoint?: (result: CheckpointResult) => void } = {}): SqlDriver {
  const db = new Database(filename);
  // WAL: readers in other processes (the CLI) do not block the server and vice versa.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  // A file database's checkpoints are made by a worker thread (sqlite-checkpointer.ts says
  // why); an in-memory one has no WAL.
  let checkpointer: ReturnType<typeof startCheckpointer> | null = null;
  if (!db.memory) {
    db.pragma('wal_autocheckpoint = 0');
    checkpointer = startCheckpointer(filename, { intervalMs: options.checkpointIntervalMs ?? 1_000, onCheckpoint: options.onCheckpoint });
  }

  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    let stmt = statements.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      statements.set(sql, stmt);
    }
    return stmt;
  };

  let lock: Promise<unknown> = Promise.resolve();
  let inTransaction = false;
  function exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = lock.then(fn, fn);
    lock = next.catch(() => undefined);
    return next;
  }

  const direct = {
    all: <T>(sql: string, params: readonly unknown[] = []) => prepare(sql).all(...params) as T[],
    get: <T>(sql: string, params: readonly unknown[] = []) => prepare(sql).get(...params) as T | undefined,
    run: (sql: string, params: readonly unknown[] = []) => prepare(sql).run(...params).changes,
  };

  // The driver handed to a transaction callback: statements run directly, on the
  // connection the lock already belongs to.
  const txDriver: SqlDriver = {
    dialect: 'sqlite',
    all: async (sql, params) => direct.all(sql, params),
    get: async (sql, params) => direct.get(sql, params),
    run: async (sql, params) => direct.run(sql, params),
    exec: async (sql) => void db.exec(sql),
    transaction: (fn) => fn(txDriver),
    close: async () => undefined,
  };

  const dataVersion = db.prepare('PRAGMA data_version').pluck();

  return {
    dialect: 'sqlite',
    dataVersion: () => Number(dataVersion.get()),
    async all<T>(sql: string, params?: readonly unknown[]) {
      return inTransaction ? exclusive(() => direct.all<T>(sql, params)) : direct.all<T>(sql, params);
    },
    async get<T>(sql: string, params?: readonly unknown[]) {
      return inTransaction ? exclusive(() => direct.get<T>(sql, params)) : direct.get<T>(sql, params);
    },
    run: (sql, params) => exclusive(() => direct.run(sql, params)),
    exec: (sql) => exclusive(() => void db.exec(sql)),
    transaction<T>(fn: (tx: SqlDriver) => Promise<T>) {
      return exclusive(async () => {
        // IMMEDIATE takes the write lock at BEGIN, so a second process (the CLI) waits on
        // busy_timeout instead of failing half-way through.
        db.exec('BEGIN IMMEDIATE');
        inTransaction = true;
        try {
          const result = await fn(txDriver);
          db.exec('COMMIT');
          return result;
        } catch (error) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw error;
        } finally {
          inTransaction = false;
        }
      });
    },
    close: () => exclusive(async () => {
      await checkpointer?.stop();
      // Closing the last connection checkpoints whatever is left and removes the WAL.
      db.close();
    }),
  } satisfies SqlDriver as SqlDriver & { all: <T = Row>(sql: string, params?: readonly unknown[]) => Promise<T[]> };
}
