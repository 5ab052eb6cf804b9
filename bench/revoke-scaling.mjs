// Benchmark: how the time to end all of one user's active sessions (10 of them) depends on the
// number of sessions in the store. Goal: with 1,000,000 sessions it takes no more than
// 1.5× what it takes with 10,000.
//
//   node bench/revoke-scaling.mjs [--sizes 10000,1000000] [--users 200] [--postgres URL]
//                                 [--pg-sizes 10000,1000000] [--no-postgres] [--json out.json]
//
// Needs the build (`npx tsc -b`); `npm run bench` does it. For each store size a fresh store
// is migrated by the real store code, then seeded in bulk (bench/lib/seed-sessions.mjs).
// Timing goes through the real code paths, two of them, each with its own users:
//   store: store.endUserSessions(userId, {}, end)            (one transaction)
//   core:  authority.sessions.revokeUserSessions(userId, …)  (the same plus the audit row;
//          what the admin API's DELETE /admin/api/users/:id/sessions runs, minus HTTP)
// An ended user cannot be measured again, so every measurement is a different user with
// exactly 10 active sessions. The sizes are measured alternately (user i of the small
// store, then user i of the large one, …) so that the machine's load hits both alike.
import { createAuthority, loadConfig, systemClock } from '@tessera/core';
import { createPostgresStore, createSqliteStore } from '@tessera/store';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseBenchArgs } from './lib/args.mjs';
import { planPopulation, seedPostgres, seedSqlite } from './lib/seed-sessions.mjs';
import { median, quantile, round } from './lib/stats.mjs';

const require = createRequire(import.meta.url);
const PATHS = ['store', 'core'];

/** A store of `size` sessions on SQLite, in a temp file. */
async function openSqliteTarget(size, measuredCount, log) {
  const dir = mkdtempSync(join(tmpdir(), `tessera-bench-revoke-${size}-`));
  const file = join(dir, 'tessera.db');
  const plan = planPopulation(size, measuredCount);
  const started = performance.now();
  const migrating = createSqliteStore(file);
  await migrating.migrate();
  await migrating.close();
  seedSqlite(file, plan);
  const seedSeconds = (performance.now() - started) / 1000;
  log(`revoke: sqlite ${size.toLocaleString('en')} sessions seeded in ${seedSeconds.toFixed(1)} s (${(statSync(file).size / 1e6).toFixed(0)} MB)`);
  return {
    size,
    plan,
    seedSeconds,
    store: createSqliteStore(file),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** `url` with a user name (as libpq would fill in) and `search_path` set to `schema`. */
function postgresUrl(url, schema) {
  const u = new URL(url);
  if (!u.username) u.username = process.env.PGUSER || process.env.USER || userInfo().username;
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

/** A store of `size` sessions on PostgreSQL, in its own schema (dropped afterwards). */
async function openPostgresTarget(baseUrl, size, measuredCount, log) {
  const pg = require('pg');
  const schema = `tessera_bench_${process.pid}_${size}`;
  const admin = new pg.Client({ connectionString: postgresUrl(baseUrl, 'public') });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = postgresUrl(baseUrl, schema);
  const plan = planPopulation(size, measuredCount);
  const started = performance.now();
  try {
    const migrating = createPostgresStore(url, { max: 1 });
    await migrating.migrate();
    await migrating.close();
    const seeder = new pg.Client({ connectionString: url });
    await seeder.connect();
    try {
      await seedPostgres(seeder, plan);
    } finally {
      await seeder.end();
    }
  } catch (error) {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
    throw error;
  }
  const seedSeconds = (performance.now() - started) / 1000;
  log(`revoke: postgres ${size.toLocaleString('en')} sessions seeded in ${seedSeconds.toFixed(1)} s`);
  return {
    size,
    plan,
    seedSeconds,
    store: createPostgresStore(url),
    dispose: async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

/**
 * Times ending all sessions of each measured user, alternating between the targets.
 * The first `warmup` users of every target and path are ended but not counted.
 */
async function measure(targets, { users, warmup }) {
  const config = loadConfig({ env: {} });
  const end = { reason: 'admin_revoked', actor: 'admin' };
  for (const t of targets) {
    t.authority = createAuthority({ store: t.store, config, clock: systemClock });
    t.times = { store: [], core: [] };
  }
  const run = {
    store: (t, userId) => t.store.endUserSessions(userId, {}, { ...end, at: Date.now() }),
    core: (t, userId) => t.authority.sessions.revokeUserSessions(userId, {}, end),
  };
  for (let i = 0; i < warmup + users; i++) {
    for (const [p, path] of PATHS.entries()) {
      for (const t of targets) {
        // Users [0, warmup + users) for the store path, the next ones for the core path.
        const userId = t.plan.measured[p * (warmup + users) + i];
        const started = performance.now();
        const ended = await run[path](t, userId);
        const ms = performance.now() - started;
        if (ended.length !== t.plan.activePerUser) throw new Error(`${path}: expected ${t.plan.activePerUser} sessions ended for ${userId}, got ${ended.length}`);
        if (i >= warmup) t.times[path].push(ms);
      }
    }
  }
  // Ended means ended: a second call finds nothing left to end.
  for (const t of targets) {
    const again = await t.store.endUserSessions(t.plan.measured[0], {}, { ...end, at: Date.now() });
    if (again.length !== 0) throw new Error(`a measured user still had ${again.length} active sessions`);
  }
}

function summarise(targets) {
  const rows = targets.map((t) => ({
    sessions: t.size,
    users: t.plan.userCount,
    seedSeconds: round(t.seedSeconds, 1),
    ...Object.fromEntries(PATHS.map((p) => [p, { medianMs: round(median(t.times[p]), 3), p95Ms: round(quantile(t.times[p], 0.95), 3), n: t.times[p].length }])),
  }));
  const small = rows[0];
  const large = rows[rows.length - 1];
  const ratios = Object.fromEntries(PATHS.map((p) => [p, { median: round(large[p].medianMs / small[p].medianMs, 2), p95: round(large[p].p95Ms / small[p].p95Ms, 2) }]));
  return { rows, ratios, goal: 1.5 };
}

async function runOn(kind, sizes, open, options, log) {
  const measuredCount = 2 * (options.users + options.warmup);
  const targets = [];
  try {
    for (const size of sizes) targets.push(await open(size, measuredCount));
    log(`revoke: ${kind}: measuring ${options.users} users per size and path (after ${options.warmup} warm-up users), sizes alternating`);
    await measure(targets, options);
    const summary = summarise(targets);
    for (const row of summary.rows) log(`revoke: ${kind} ${String(row.sessions).padStart(8)}: store median ${row.store.medianMs} ms p95 ${row.store.p95Ms} ms; core median ${row.core.medianMs} ms p95 ${row.core.p95Ms} ms`);
    return { kind, sizes, ...summary };
  } finally {
    for (const t of targets) {
      await t.store.close();
      await t.dispose();
    }
  }
}

/**
 * Runs the revoke-scaling benchmark on SQLite and, when `postgres` is a URL, on PostgreSQL.
 *
 * @example
 * ```js
 * const result = await runRevokeBench({ sizes: [10_000, 1_000_000], users: 200 });
 * console.log(result.sqlite.ratios.store.median); // 1M median ÷ 10k median
 * ```
 */
export async function runRevokeBench(options = {}) {
  const settings = { sizes: [10_000, 1_000_000], pgSizes: [10_000, 1_000_000], users: 200, warmup: 10, postgres: null, ...options };
  const log = options.log ?? ((line) => console.error(line));
  const shape = { users: settings.users, warmup: settings.warmup };
  const result = { settings: { sizes: settings.sizes, pgSizes: settings.postgres ? settings.pgSizes : [], users: settings.users, warmup: settings.warmup, activePerUser: 10, sessionsPerUser: 20 } };
  result.sqlite = await runOn('sqlite', settings.sizes, (size, n) => openSqliteTarget(size, n, log), shape, log);
  if (settings.postgres) {
    try {
      result.postgres = await runOn('postgres', settings.pgSizes, (size, n) => openPostgresTarget(settings.postgres, size, n, log), shape, log);
    } catch (error) {
      // PostgreSQL is optional here: report why it is missing instead of failing the run.
      log(`revoke: postgres skipped: ${error.message}`);
      result.postgres = { skipped: error.message };
    }
  }
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseBenchArgs(import.meta.url, {
    options: {
      sizes: { type: 'string', default: '10000,1000000' },
      'pg-sizes': { type: 'string', default: '10000,1000000' },
      users: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '10' },
      postgres: { type: 'string', default: process.env.TESSERA_BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test' },
      'no-postgres': { type: 'boolean', default: false },
      json: { type: 'string' },
    },
  });
  const sizes = (s) => s.split(',').map(Number);
  const result = await runRevokeBench({
    sizes: sizes(values.sizes),
    pgSizes: sizes(values['pg-sizes']),
    users: Number(values.users),
    warmup: Number(values.warmup),
    postgres: values['no-postgres'] ? null : values.postgres,
  });
  const text = JSON.stringify(result, null, 2);
  if (values.json) writeFileSync(values.json, `${text}\n`);
  else console.log(text);
}
