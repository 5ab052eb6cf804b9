import type { Store } from '@tessera/core';
import type { SqlDriver } from '../src/driver.js';

/** One statement a store sent to its driver. */
export interface Recorded {
  sql: string;
  params: readonly unknown[];
}

/**
 * Wraps a driver (and the drivers it hands to transactions) to record every statement, so
 * a test can ask the database how it plans the store's real SQL rather than a copy of it.
 */
export function recordingDriver(inner: SqlDriver, log: Recorded[]): SqlDriver {
  const note = (sql: string, params: readonly unknown[] = []) => void log.push({ sql, params });
  return {
    dialect: inner.dialect,
    all: (sql, params) => (note(sql, params), inner.all(sql, params)),
    get: (sql, params) => (note(sql, params), inner.get(sql, params)),
    run: (sql, params) => (note(sql, params), inner.run(sql, params)),
    exec: (sql) => inner.exec(sql),
    transaction: (fn) => inner.transaction((tx) => fn(recordingDriver(tx, log))),
    close: () => inner.close(),
  };
}

/** The statements that read or change the sessions table (not the log or logout tokens). */
export function sessionStatements(log: Recorded[]): Recorded[] {
  // On PostgreSQL an end is `WITH ended AS (UPDATE sessions …)`, with the logout tokens' DELETE.
  return log.filter((r) => /^\s*(SELECT .* FROM sessions|UPDATE sessions|WITH ended AS \(UPDATE sessions)\b/is.test(r.sql));
}

/**
 * Runs the four user-session queries (list active, list all, end all but one, end all) on a
 * store that records into `log`, and returns the statements they sent to the sessions table.
 */
export async function userSessionStatements(store: Store, log: Recorded[]): Promise<Recorded[]> {
  log.length = 0;
  await store.listSessionsByUser('usr_1');
  await store.listSessionsByUser('usr_1', { includeEnded: true });
  await store.endUserSessions('usr_2', { exceptHandle: 'ses_2' }, { at: 1, reason: 'logout', actor: 'user' });
  await store.endUserSessions('usr_3', {}, { at: 1, reason: 'logout', actor: 'user' });
  return sessionStatements(log);
}
