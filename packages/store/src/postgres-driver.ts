import { createHash } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
import type { Row, SqlDriver } from './driver.js';

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

/**
 * `sql` with its `?` placeholders replaced by `params` written as SQL literals, for the
 * statements a transaction sends together in one simple-protocol message (which carries no
 * parameters; see the transaction below). Every value becomes a quoted literal, as pg sends
 * parameters: text of no declared type, which PostgreSQL reads as the type its place needs
 * (so `5` for a BIGINT column and `'5'` for a TEXT one behave as they did as parameters). The
 * quoting is pg's escapeLiteral (quotes doubled, and the E'' form with doubled backslashes
 * when there is one), so no value can end its literal and change the statement. The store's
 * SQL never has `?` inside literals, and a value's own `?` is not read again. Values with no
 * such form (buffers, dates, bigints, non-finite numbers) throw: the caller then sends the
 * statement with parameters as usual.
 */
function inlineParams(client: pg.PoolClient, sql: string, params: readonly unknown[]): string {
  let i = 0;
  const text = sql.replace(/\?/g, () => {
    if (i >= params.length) throw new Error('more placeholders than parameters');
    const value = params[i++];
    if (value === null || value === undefined) return 'NULL';
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('a parameter is not a finite number');
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return client.escapeLiteral(String(value));
    throw new Error(`a parameter of type ${typeof value} cannot be written as a literal`);
  });
  if (i !== params.length) throw new Error('more parameters than placeholders');
  return text;
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
      // On PostgreSQL every statement is a round trip, and under load a round trip costs a
      // wait for each side's CPU, not just the network: a revocation was 13 of them. So a
      // transaction sends what nobody waits for together with the next statement somebody
      // does wait for, in one simple-protocol message (parameters written as literals,
      // inlineParams): its BEGIN, the statements given to defer() (outbox and audit rows),
      // and, through commitWith(), its last statement with the COMMIT.
      // What waits to go with the next statement; a pipelined read also waits for its rows.
      interface Pending { text: string; rows?: { resolve: (rows: Row[]) => void; reject: (error: unknown) => void } }
      let pending: Pending[] = [{ text: 'BEGIN' }];
      let begun = false;
      let committed = false;
      let flushScheduled = false;
      /**
       * Sends `statements` after whatever is pending, in one message; returns the results of
       * `statements`. The pipelined reads among the pending get their rows (or the error).
       */
      const send = async (statements: string[]): Promise<pg.QueryResult[]> => {
        const taken = pending;
        pending = [];
        if (taken.length > 0) begun = true;
        const texts = [...taken.map((p) => p.text), ...statements];
        if (texts.length === 0) return [];
        let results: pg.QueryResult[];
        try {
          const answer = (await client.query({ text: texts.join(';\n'), types })) as unknown as pg.QueryResult | pg.QueryResult[];
          results = Array.isArray(answer) ? answer : [answer];
        } catch (error) {
          for (const p of taken) p.rows?.reject(error);
          throw error;
        }
        taken.forEach((p, i) => p.rows?.resolve(results[i]!.rows as Row[]));
        return results.slice(taken.length);
      };
      const flushPending = async (): Promise<void> => {
        if (pending.length > 0) await send([]);
      };
      // After commitWith the connection is outside any transaction: a statement sent then
      // would commit on its own, which is never what the caller meant.
      const open = (): void => {
        if (committed) throw new Error('the transaction has committed (commitWith was its last statement)');
      };
      // The statement's result, with whatever was pending sent ahead of it in the same message.
      const query = async (sql: string, params: readonly unknown[]): Promise<pg.QueryResult> => {
        open();
        if (pending.length > 0) {
          let text: string | null = null;
          try {
            text = inlineParams(client, sql, params);
          } catch {
            // A value with no literal form: the pending statements go first, on their own.
            await flushPending();
          }
          if (text !== null) return (await send([text]))[0]!;
        }
        return client.query({ ...toPg(sql), values: params as unknown[], types });
      };
      const tx: SqlDriver = {
        dialect: 'postgres',
        all: async <R>(sql: string, params: readonly unknown[] = []) => (await query(sql, params)).rows as R[],
        get: async <R>(sql: string, params: readonly unknown[] = []) => (await query(sql, params)).rows[0] as R | undefined,
        run: async (sql: string, params: readonly unknown[] = []) => (await query(sql, params)).rowCount ?? 0,
        async exec(sql: string) {
          open();
          await flushPending();
          await client.query(sql);
        },
        async defer(sql: string, params: readonly unknown[] = []) {
          open();
          let text: string;
          try {
            text = inlineParams(client, sql, params);
          } catch {
            await query(sql, params);
            return;
          }
          pending.push({ text });
        },
        async pipeline<R>(sql: string, params: readonly unknown[] = []) {
          open();
          let text: string;
          try {
            text = inlineParams(client, sql, params);
          } catch {
            return (await query(sql, params)).rows as R[];
          }
          const rows = new Promise<Row[]>((resolve, reject) => pending.push({ text, rows: { resolve, reject } }));
          // Sent with the next statement; if none comes by the next turn of the event loop,
          // on its own (the caller may be waiting for these rows before it sends anything).
          if (!flushScheduled) {
            flushScheduled = true;
            setImmediate(() => {
              flushScheduled = false;
              if (!committed && pending.some((p) => p.rows)) flushPending().catch(() => undefined);
            });
          }
          return (await rows) as R[];
        },
        async commitWith<R>(sql: string, params: readonly unknown[] = []) {
          open();
          // Several statements in one simple query run in order and stop at the first error
          // (the COMMIT then does not run, and the catch below rolls back).
          const results = await send([inlineParams(client, sql, params), 'COMMIT']);
          committed = true;
          return results[0]!.rows as R[];
        },
        transaction: (inner) => inner(tx),
        close: async () => undefined,
      };
      try {
        const result = await fn(tx);
        // A transaction that sent nothing has nothing to commit.
        if (!committed && (begun || pending.length > 1)) await send(['COMMIT']);
        return result;
      } catch (error) {
        // Pipelined reads never sent get the error too, rather than waiting forever.
        for (const p of pending) p.rows?.reject(error);
        pending = [];
        if (!committed && begun) await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    ownsBackend: (processId) => backends.has(processId),
    close: () => pool.end(),
  };
}
