import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '@tessera/core';
import { createPostgresDriver } from './postgres-driver.js';
import { createSqlStore } from './sql-store.js';
import { createSqliteDriver } from './sqlite-driver.js';

export type { SqlDriver, Row } from './driver.js';
export { createSqliteDriver } from './sqlite-driver.js';
export { createPostgresDriver, withDefaultUser } from './postgres-driver.js';
export { createSqlStore, REVOCATION_CHANNEL, CREDENTIAL_CHANNEL, SSF_CHANNEL } from './sql-store.js';
export { migrate } from './migrations.js';

/**
 * A SQLite store in a file (or `:memory:`).
 *
 * @example
 * ```ts
 * const store = createSqliteStore('./data/tessera.db');
 * await store.migrate();
 * ```
 */
export function createSqliteStore(filename: string): Store {
  return createSqlStore(createSqliteDriver(filename));
}

/**
 * A PostgreSQL store.
 *
 * @example
 * ```ts
 * const store = createPostgresStore('postgres://127.0.0.1:5432/tessera');
 * ```
 */
export function createPostgresStore(connectionString: string, options: { max?: number } = {}): Store {
  return createSqlStore(createPostgresDriver(connectionString, options));
}

/** The store the configuration asks for: PostgreSQL when `databaseUrl` is set, else SQLite in `dataDir`. */
export function openStore(config: { databaseUrl: string | null; dataDir: string; databasePoolSize?: number }): Store {
  if (config.databaseUrl) return createPostgresStore(config.databaseUrl, config.databasePoolSize === undefined ? {} : { max: config.databasePoolSize });
  mkdirSync(config.dataDir, { recursive: true });
  return createSqliteStore(join(config.dataDir, 'tessera.db'));
}
