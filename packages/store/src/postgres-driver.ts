import { createHash } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
import type { SqlDriver } from './driver.js';

// int8 (BIGINT) arrives as a string by default because it can exceed 2^53. Tessera's
// BIGINTs are epoch milliseconds and log cursors, far below 2^53, so numbers are exact.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/**
 * The store's SQL as a named prepared statement: `?` placeholders become `$1…$n` (the store's
 * SQL never has `?` inside literals), and the name is derived from the text. PostgreSQL then
 * parses and plans each statement once per connection instead of on every call (Parse and
 * plan were a large share of the server's CPU per query on the revocation and Shared Signals
 * paths). The store's statements are a fixed set (list placeholders come in chunk-sized
 * variants), so each connection holds a bounded number of them.
 */
interface Prepared {
  text: string;
  name: string;
}
const prepared = new Map<string, Prepared>();
function toPg(sql: string): Prepared {
  let out = prepared.get(sql);
  if (out === undefined) {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    out = { text, name: `t${createHash('sha1').update(text).digest('base64url')}` };
    prepared.set(sql, out);
  }
  return out;
}

function clientDriver(client: pg.PoolClient | pg.Pool): Omit<SqlDriver, 'transaction' | 'close'> {
  return {
    dialect: 'postgres',
    async all<T>(sql: string, params: readonly unknown[] = []) {
      return (await client.query({ ...toPg(sql), values: params as unknown[], types })).rows as T[];
    },
    async get<T>(sql: string, params: readonly unknown[] = []) {
      return (await client.query({ ...toPg(sql), values: params as unknown[], types })).rows[0] as T | undefined;
    },
    async run(sql: string, params: readonly unknown[] = []) {
      return (await client.query({ ...toPg(sql), values: params as unknown[], types })).rowCount ?? 0;
    },
    async exec(sql: string) {
      await client.query(sql);
    },
  };
}

/**
 * Fills in the operating-system user name when the URL names no user, as libpq (psql) does.
 * pg falls back to `$PGUSER` or `$USER` only, and `$USER` is unset in many containers and CI
 * jobs, where `postgres://127.0.0.1:5432/db` would otherwise fail with "no PostgreSQL user
 * name specified". URLs that pg parses differently (sockets, `?user=`) are left alone.
 */
export function withDefaultUser(connectionString: string): string {
  if (process.env.PGUSER || process.env.USER) return connectionString;
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return connectionString;
  }
  if (!/^postgres(ql)?:$/.test(url.protocol) || url.username || !url.hostname || url.searchParams.has('user')) return connectionString;
  try {
    url.username = encodeURIComponent(userInfo().username);
  } catch {
    // No passwd entry for this uid: nothing better to offer than pg's own error.
    return connectionString;
  }
  return url.toString();
}

/**
 * node-postgres behind the async {@link SqlDriver} shape: a pool for plain statements, one
 * checked-out client per transaction.
 */
export function createPostgresDriver(connectionString: string, options: { max?: number } = {}): SqlDriver {
  const pool = new pg.Pool({ connectionString: withDefaultUser(connectionString), max: options.max ?? 10 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  // The backends of this pool's connections: a NOTIFY carries the sender's backend pid, so a
  // node can tell its own commits' notifications (already acted on in-process) from other
  // nodes'. A pid is unique among the server's live backends; it leaves the set with its
  // connection, before the server can give it to another one.
  const backends = new Set<number>();
  pool.on('connect', (client) => {
    const pid = (client as pg.PoolClient & { processID?: number }).processID;
    if (typeof pid === 'number') backends.add(pid);
  });
  pool.on('remove', (client) => {
    const pid = (client as pg.PoolClient & { processID?: number }).processID;
    if (typeof pid === 'number') backends.delete(pid);
  });
  const base = clientDriver(pool);
  return {
    ...base,
    async transaction<T>(fn: (tx: SqlDriver) => Promise<T>) {
      const client = await pool.connect();
      const tx: SqlDriver = { ...clientDriver(client), transaction: (inner) => inner(tx), close: async () => undefined };
      try {
        await client.query('BEGIN');
        const result = await fn(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    ownsBackend: (processId) => backends.has(processId),
    close: () => pool.end(),
  };
}
