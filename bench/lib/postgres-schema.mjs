// A PostgreSQL schema of its own for one benchmark phase, so runs never see each other's rows.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { withDefaultUser } from '../../packages/store/dist/index.js';

/**
 * Creates schema `<prefix>_<random>` on `url`. Returns the URL that uses it (search_path),
 * run(sql) for one statement on its own connection, and drop().
 */
export async function postgresSchema(url, prefix) {
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`;
  const run = async (sql) => {
    const client = new pg.Client({ connectionString: withDefaultUser(url) });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE SCHEMA ${schema}`);
  const separator = url.includes('?') ? '&' : '?';
  return {
    name: schema,
    url: `${url}${separator}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    run,
    drop: () => run(`DROP SCHEMA ${schema} CASCADE`),
  };
}

/**
 * The server settings a benchmark's PostgreSQL figures depend on, to be written beside them:
 * with autovacuum off (as on some CI images) dead rows and stale statistics pile up over a run,
 * and WAL and buffer sizes decide how often checkpoints and backend writes stall a commit.
 */
export async function postgresSettings(url) {
  const client = new pg.Client({ connectionString: withDefaultUser(url) });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT name, current_setting(name) AS setting FROM pg_settings
        WHERE name IN ('autovacuum', 'max_wal_size', 'checkpoint_timeout', 'shared_buffers', 'synchronous_commit', 'fsync', 'server_version')
        ORDER BY name`,
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  } finally {
    await client.end();
  }
}
