/** A row as returned by a driver: column name to value. */
export type Row = Record<string, unknown>;

/**
 * The few things the SQL store needs from a database driver. SQL is written once with `?`
 * placeholders in the subset SQLite and PostgreSQL share; the PostgreSQL driver numbers
 * the placeholders. Integers (epoch ms, cursors) come back as JS numbers from both.
 */
export interface SqlDriver {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Runs DDL (several statements). */
  exec(sql: string): Promise<void>;
  /** Runs `fn` in a transaction on one connection; a nested call joins the outer transaction. */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * PostgreSQL transaction drivers only: runs `sql` and then COMMIT in one round trip (one
   * simple-protocol message, the parameters written into it as literals), and returns the
   * statement's rows. The transaction is committed when it resolves, so nothing may follow it.
   * Used for the revocation log's statement, which takes the lock every revocation waits for:
   * with its own round trip and then the COMMIT's, that lock was held over two network round
   * trips and an event-loop turn of a busy node; this way it is held only while PostgreSQL
   * runs the statement and commits.
   */
  commitWith?<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * Runs a statement whose result nobody waits for (an outbox or audit row). PostgreSQL
   * transaction drivers send it together with the transaction's next statement or its
   * COMMIT, so it costs no round trip of its own; its error, if any, fails that statement and
   * with it the transaction. Elsewhere (SQLite, outside a transaction) it is `run`.
   */
  defer?(sql: string, params?: readonly unknown[]): Promise<void>;
  /**
   * A read whose result the caller needs, but not before its next statement: PostgreSQL
   * transaction drivers send it together with the transaction's next statement (or on the
   * next turn of the event loop if none comes), so it costs no round trip of its own. Its
   * result is the rows, as `all` gives them. Elsewhere it is `all`.
   */
  pipeline?<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** SQLite only: `PRAGMA data_version`, which changes when another connection commits. */
  dataVersion?(): number;
  /**
   * PostgreSQL only: true when `processId` is the server backend of one of this driver's own
   * connections, i.e. a NOTIFY (which names the backend that sent it) was sent by this driver.
   */
  ownsBackend?(processId: number): boolean;
}
