import type { Store } from '@tessera/core';
import { createPostgresStore, createSqliteStore } from '@tessera/store';
import { freshSchemaUrl, postgresTestUrl } from '../../store/test/pg-support.js';
import type { TestServerOptions } from './support.js';

const pgUrl = await postgresTestUrl();

/**
 * The stores an HTTP test that touches storage runs against: SQLite always, PostgreSQL when
 * it is reachable (a schema of the test's own, dropped on close). Use with `describe.each`.
 *
 * @example
 * ```ts
 * describe.each(STORE_KINDS)('on %s', (kind) => { … createTestServer(await storeOptions(kind)) … });
 * ```
 */
export const STORE_KINDS: Array<'sqlite' | 'postgres'> = pgUrl ? ['sqlite', 'postgres'] : ['sqlite'];

/** Server options with a fresh store of `kind`. */
export async function storeOptions(kind: 'sqlite' | 'postgres'): Promise<Pick<TestServerOptions, 'store' | 'afterClose'>> {
  if (kind === 'sqlite') return { store: createSqliteStore(':memory:') };
  const schema = await freshSchemaUrl(pgUrl!);
  const store: Store = createPostgresStore(schema.url, { max: 4 });
  return { store, afterClose: () => schema.drop() };
}
