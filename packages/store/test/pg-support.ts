import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { withDefaultUser } from '../src/postgres-driver.js';

const DEFAULT_URL = 'postgres://127.0.0.1:5432/test';

let probe: Promise<string | null> | undefined;

/**
 * The PostgreSQL to run the store tests against: `TESSERA_TEST_DATABASE_URL` (default
 * postgres://127.0.0.1:5432/test) when it answers within two seconds, else null — unless
 * `TESSERA_REQUIRE_POSTGRES=1` (CI), where it has three tries of ten seconds and an
 * unreachable database is then an error rather than a silent skip. Probed once per process.
 */
export function postgresTestUrl(): Promise<string | null> {
  probe ??= (async () => {
    const url = withDefaultUser(process.env.TESSERA_TEST_DATABASE_URL || DEFAULT_URL);
    const required = process.env.TESSERA_REQUIRE_POSTGRES === '1';
    // Where PostgreSQL is required, a server slow to answer on a loaded machine is given
    // three tries of ten seconds before the file fails; elsewhere two seconds decide a skip.
    const tries = required ? 3 : 1;
    let reason = '';
    for (let attempt = 1; attempt <= tries; attempt++) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: required ? 10_000 : 2_000 });
      // A connection that fails after connecting must not crash the test process.
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return url;
      } catch (error) {
        reason = error instanceof Error ? error.message : String(error);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    if (required) {
      throw new Error(`PostgreSQL is required on CI (TESSERA_REQUIRE_POSTGRES=1) but is not reachable at ${redact(url)}: ${reason}`);
    }
    console.warn(`PostgreSQL not reachable at ${redact(url)} (${reason}): skipping PostgreSQL store tests`);
    return null;
  })();
  return probe;
}

/** A schema of one's own in the test database. */
export interface TestSchema {
  name: string;
  /** A connection URL whose connections use only this schema (as search_path). */
  url: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/**
 * Creates a uniquely named schema and returns a URL that puts every connection in it.
 * Test files run in parallel processes against one database, so each store gets its own
 * schema instead of sharing (and truncating) `public`.
 */
export async function freshSchemaUrl(base: string): Promise<TestSchema> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  await withClient(base, (client) => client.query(`CREATE SCHEMA ${name}`));
  const url = new URL(base);
  const options = url.searchParams.get('options');
  url.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${name}`);
  return {
    name,
    url: url.toString(),
    drop: () => withClient(base, (client) => client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)).then(() => undefined),
  };
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}
