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
  /** SQLite only: `PRAGMA data_version`, which changes when another connection commits. */
  dataVersion?(): number;
  /**
   * PostgreSQL only: true when `processId` is the server backend of one of this driver's own
   * connections, i.e. a NOTIFY (which names the backend that sent it) was sent by this driver.
   */
  ownsBackend?(processId: number): boolean;
}
