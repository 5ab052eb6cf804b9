// Measurements behind docs/capacity.md, on PostgreSQL:
//
// 1. Table and index sizes: a schema migrated by the store, filled with a sample shaped like
//    production rows (ids, hashes and JSON in the exact formats Tessera writes; realistic
//    user agents, e-mails, argon2id password hashes), VACUUM ANALYZEd, then measured with
//    pg_relation_size / pg_indexes_size / pg_total_relation_size. Bytes per row follow.
// 2. HOT updates: how many of the store's last-seen writes (touchSession) PostgreSQL can do
//    as heap-only-tuple updates (no index writes).
// 3. The revocation ceiling: ending one session per call through the core (the same code
//    the admin API runs, minus HTTP: lock the log counter, mark ended, log entry, NOTIFY,
//    outbox row, audit row, commit) with 1 to 64 concurrent callers, with
//    synchronous_commit on and off, and in batches of 100 sessions per call. The single
//    revocation_counter row serialises every revoking transaction: this is its ceiling here.
//
//   node bench/capacity.mjs [--postgres URL] [--users 100000] [--seconds 5] [--json out.json]
//
// Needs the build (`npx tsc -b`). Works in a schema of its own and drops it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import pg from 'pg';
import { createAuthority, loadConfig, systemClock } from '../packages/core/dist/index.js';
import { createPostgresStore, withDefaultUser as withUser } from '../packages/store/dist/index.js';
import { createSchema } from './lib/cluster.mjs';
import { quantile, round } from './lib/stats.mjs';

const TABLES = ['users', 'sessions', 'revocations', 'deliveries', 'delivery_sessions', 'audit_events', 'refresh_tokens', 'logout_tokens', 'signing_keys', 'apps', 'admin_tokens', 'revocation_counter'];

/**
 * Fills the sample with SQL (generate_series), so that the row shapes are those of the
 * store: per user 2 sessions (one active, one ended), the ended one with its log entry, one
 * back-channel delivery (delivered) and its link row, and the audit rows the core writes
 * (session.started for each session, sessions.revoked for each end); one live refresh token
 * per active session.
 */
export async function fillSample(client, users) {
  const now = Date.now();
  // Random bytes and SHA-256 from core PostgreSQL (no pgcrypto): up to 32 bytes from two md5s
  // of random(), base64url without padding, as randomToken() writes them.
  const raw = (bytes) => `substring(decode(md5(random()::text) || md5(random()::text), 'hex') from 1 for ${bytes})`;
  const rnd = (bytes) => `rtrim(translate(encode(${raw(bytes)}, 'base64'), '+/', '-_'), '=')`;
  const sha = (bytes) => `encode(sha256(${raw(bytes)}), 'hex')`;
  await client.query(`INSERT INTO apps (client_id, name, trusted, allowed_origins, return_urls, backchannel_logout_uri, connectors, secret_hash, created_at, updated_at) VALUES
    ('forum', 'Forum', 0, '["https://forum.example.com"]', '["https://forum.example.com/"]', 'https://forum.example.com/auth/backchannel-logout', '{}', encode(sha256('x'::bytea), 'hex'), ${now}, ${now}),
    ('shop', 'Shop', 1, '["https://shop.example.com"]', '["https://shop.example.com/account"]', NULL, '{}', encode(sha256('y'::bytea), 'hex'), ${now}, ${now})`);
  await client.query(`
    INSERT INTO users (id, username, username_lower, email, email_lower, first_name, last_name, picture, disabled, password_hash, created_at, updated_at)
    SELECT 'usr_' || ${rnd(12)}, 'User' || g, 'user' || g, 'User.Name' || g || '@example-mail.com', 'user.name' || g || '@example-mail.com',
           'Firstname', 'Lastname' || (g % 1000), CASE WHEN g % 2 = 0 THEN 'https://cdn.example.com/avatars/' || md5(g::text) || '.png' END, 0,
           '$argon2id$v=19$m=19456,t=2,p=1$' || ${rnd(16)} || '$' || ${rnd(32)}, ${now} - g, ${now} - g
      FROM generate_series(1, ${users}) AS g`);
  // Two sessions per user: k = 0 active, k = 1 ended. User agents as browsers send them.
  await client.query(`
    CREATE TEMP TABLE s AS
    SELECT u.id AS user_id, k, ${rnd(16)} AS token_id, 'ses_' || ${rnd(16)} AS handle, ${sha(32)} AS secret_hash,
           CASE WHEN random() < 0.7 THEN (10 + (random() * 200)::int) || '.' || (random() * 255)::int || '.' || (random() * 255)::int || '.' || (random() * 255)::int
                ELSE '2001:db8:' || to_hex((random() * 65535)::int) || ':' || to_hex((random() * 65535)::int) || '::' || to_hex((random() * 65535)::int) END AS ip,
           (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
                  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
                  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
                  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0'])[1 + (random() * 3)::int] AS user_agent,
           ${now} - (random() * 86400000 * 10)::bigint AS created_at
      FROM users u CROSS JOIN generate_series(0, 1) AS k`);
  await client.query(`
    INSERT INTO sessions (token_id, handle, user_id, secret_hash, ip, user_agent, created_at, last_seen_at, idle_timeout_ms, expires_at, idle_expires_at, apps, ended_at, ended_by, end_reason)
    SELECT token_id, handle, user_id, secret_hash, ip, user_agent, created_at, created_at + 3600000, 1209600000, created_at + 2592000000, created_at + 3600000 + 1209600000,
           '[{"clientId":"shop","joinedAt":' || created_at || ',"leftAt":null},{"clientId":"forum","joinedAt":' || (created_at + 5000) || ',"leftAt":null}]',
           CASE WHEN k = 1 THEN created_at + 7200000 END, CASE WHEN k = 1 THEN 'user' END, CASE WHEN k = 1 THEN 'logout' END
      FROM s ORDER BY token_id`);
  await client.query(`
    INSERT INTO revocations (cursor, sid, sub, reason, actor, at, app)
    SELECT row_number() OVER (ORDER BY created_at), handle, user_id, 'logout', 'user', created_at + 7200000, NULL FROM s WHERE k = 1`);
  await client.query('UPDATE revocation_counter SET value = (SELECT COUNT(*) FROM revocations) WHERE id = 1');
  await client.query(`
    INSERT INTO deliveries (cursor, sub, sid, client_id, channel, reason, status, attempts, next_attempt_at, lease_owner, lease_expires_at, last_attempt_at, last_error, last_status, created_at, horizon_at, delivered_at)
    SELECT r.cursor, r.sub, r.sid, 'forum', 'backchannel', 'logout', 'delivered', 1, r.at, NULL, NULL, r.at + 40, NULL, 200, r.at, r.at + 86400000, r.at + 40 FROM revocations r ORDER BY r.cursor`);
  await client.query('INSERT INTO delivery_sessions (handle, delivery_id) SELECT sid, id FROM deliveries');
  await client.query(`
    INSERT INTO audit_events (at, actor, action, user_id, session_handle, client_id, ip, details)
    SELECT at, actor, action, user_id, session_handle, client_id, ip, details FROM (
      SELECT created_at AS at, 'app' AS actor, 'session.started' AS action, user_id, handle AS session_handle, 'shop' AS client_id, ip, '{"user_agent":"' || user_agent || '"}' AS details FROM s
      UNION ALL
      SELECT created_at + 7200000, 'user', 'sessions.revoked', user_id, handle, NULL, ip, '{"reason":"logout","revoked":["' || handle || '"]}' FROM s WHERE k = 1
    ) a ORDER BY at`);
  await client.query(`
    INSERT INTO refresh_tokens (id, secret_hash, handle, client_id, created_at, expires_at, used_at)
    SELECT 'rt_' || ${rnd(16)}, ${sha(32)}, handle, 'forum', created_at, created_at + 2592000000, NULL FROM s WHERE k = 0`);
  await client.query('VACUUM ANALYZE');
}

async function sizes(client) {
  const tables = [];
  for (const table of TABLES) {
    const { rows } = await client.query(
      `SELECT (SELECT COUNT(*) FROM ${table}) AS rows, pg_relation_size(c.oid) AS heap, pg_indexes_size(c.oid) AS indexes, pg_total_relation_size(c.oid) AS total
         FROM pg_class c WHERE c.oid = $1::regclass`,
      [table],
    );
    const { rows: idx } = await client.query(
      `SELECT i.relname AS name, pg_relation_size(i.oid) AS bytes, pg_get_indexdef(i.oid) AS def
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1::regclass ORDER BY i.relname`,
      [table],
    );
    const n = Number(rows[0].rows);
    tables.push({
      table,
      rows: n,
      heapBytes: Number(rows[0].heap),
      indexBytes: Number(rows[0].indexes),
      totalBytes: Number(rows[0].total),
      heapBytesPerRow: n ? round(Number(rows[0].heap) / n, 1) : null,
      totalBytesPerRow: n ? round(Number(rows[0].total) / n, 1) : null,
      indexes: idx.map((i) => ({ name: i.name, bytes: Number(i.bytes), bytesPerRow: n ? round(Number(i.bytes) / n, 1) : null, definition: i.def.replace(/ ON \w+\./, ' ON ') })),
    });
  }
  return tables;
}

/** How many of `count` last-seen writes (the store's touchSession statement) were HOT. */
async function hotTouches(client, count) {
  const before = (await client.query("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'sessions'::regclass")).rows[0];
  const { rows } = await client.query('SELECT token_id, idle_timeout_ms, expires_at FROM sessions WHERE ended_at IS NULL LIMIT $1', [count]);
  const now = Date.now();
  for (const r of rows) {
    const idle = now + Number(r.idle_timeout_ms);
    await client.query('UPDATE sessions SET last_seen_at = $1, idle_expires_at = CASE WHEN $2::bigint < expires_at THEN $2::bigint ELSE expires_at END WHERE token_id = $3 AND ended_at IS NULL AND last_seen_at < $1', [now, idle, r.token_id]);
  }
  // The statistics collector reports with a delay; wait until it has all our updates.
  let after;
  for (let i = 0; i < 50; i++) {
    await client.query('SELECT pg_stat_clear_snapshot()');
    after = (await client.query("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'sessions'::regclass")).rows[0];
    if (Number(after.n_tup_upd) - Number(before.n_tup_upd) >= rows.length) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { updates: Number(after.n_tup_upd) - Number(before.n_tup_upd), hot: Number(after.n_tup_hot_upd) - Number(before.n_tup_hot_upd) };
}

/**
 * The hot queries' plans and times on the sample (EXPLAIN ANALYZE, best of 5), including the
 * two COUNTs behind the metrics gauges, whose cost grows with the table.
 */
async function queryPlans(client) {
  const one = (await client.query("SELECT token_id, handle, user_id FROM sessions WHERE ended_at IS NULL LIMIT 1 OFFSET 100")).rows[0];
  const queries = [
    ['whoami: session by token id', 'SELECT * FROM sessions WHERE token_id = $1', [one.token_id]],
    ['whoami: user by id', 'SELECT * FROM users WHERE id = $1', [one.user_id]],
    ['introspection / admin: session by handle', 'SELECT * FROM sessions WHERE handle = $1', [one.handle]],
    ["a user's active sessions", 'SELECT * FROM sessions WHERE user_id = $1 AND ended_at IS NULL ORDER BY created_at DESC, handle', [one.user_id]],
    ['sweeper: due sessions', 'SELECT handle FROM sessions WHERE ended_at IS NULL AND idle_expires_at <= $1 ORDER BY idle_expires_at LIMIT 500', [Date.now() - 20 * 86_400_000]],
    ['feed: log after a cursor', 'SELECT * FROM revocations WHERE cursor > $1 ORDER BY cursor LIMIT 500', [90_000]],
    ['outbox: due deliveries', "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at <= $1) ORDER BY next_attempt_at LIMIT 8", [Date.now()]],
    ['metrics: active sessions (COUNT)', 'SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL', []],
    ['metrics: delivered deliveries (COUNT)', "SELECT COUNT(*) AS n FROM deliveries WHERE status = 'delivered'", []],
  ];
  const out = [];
  for (const [label, sql, params] of queries) {
    let best = Infinity;
    let plan = '';
    for (let i = 0; i < 5; i++) {
      const { rows } = await client.query({ text: `EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, values: params });
      const root = rows[0]['QUERY PLAN'][0];
      if (root['Execution Time'] < best) {
        best = root['Execution Time'];
        const names = [];
        const walk = (node) => {
          names.push(`${node['Node Type']}${node['Index Name'] ? ` using ${node['Index Name']}` : ''}`);
          for (const child of node.Plans ?? []) walk(child);
        };
        walk(root.Plan);
        plan = names.join(' → ');
      }
    }
    out.push({ label, sql, plan, executionMs: round(best, 3) });
  }
  return out;
}

/** Ends sessions through the core for `seconds` with `concurrency` callers, `batch` sessions per call. */
async function revocationRate({ url, handles, concurrency, seconds, batch, label }) {
  const store = createPostgresStore(url, { max: concurrency + 2 });
  const config = loadConfig({ env: { TESSERA_ADMIN_TOKEN: 'a'.repeat(40), TESSERA_COOKIE_SECURE: 'false' } });
  const authority = createAuthority({ store, config, clock: systemClock });
  const latencies = [];
  let ended = 0;
  const deadline = Date.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < deadline && handles.length >= batch) {
      const mine = handles.splice(0, batch);
      const t = performance.now();
      const revoked = await authority.sessions.revokeSessions(mine, { actor: 'admin', reason: 'admin_revoked', ip: null });
      latencies.push(performance.now() - t);
      ended += revoked.length;
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  await store.close();
  return { label, concurrency, batch, calls: latencies.length, ended, seconds: round(elapsed, 2), revocationsPerSecond: round(ended / elapsed, 0), callsPerSecond: round(latencies.length / elapsed, 0), p50Ms: round(quantile(latencies, 0.5), 2), p99Ms: round(quantile(latencies, 0.99), 2) };
}

// The least a revoking transaction must do under the counter lock: take the next cursor and
// write the log entry. pgbench runs it from many clients, which gives the ceiling of the
// serialisation point itself, apart from the rest of Tessera's transaction.
const COUNTER_SCRIPT = `BEGIN;
UPDATE revocation_counter SET value = value + 1 WHERE id = 1 RETURNING value AS cursor \\gset
INSERT INTO revocations (cursor, sid, sub, reason, actor, at, app) VALUES (:cursor, 'ses_pgbench' || :cursor, 'usr_pgbench', 'logout', 'user', 0, NULL);
COMMIT;
`;

/** pgbench over the counter-only transaction; null when pgbench is not installed. */
function counterCeiling(url, schema, clients, seconds, synchronousCommit) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-pgbench-'));
  try {
    const script = join(dir, 'counter.sql');
    writeFileSync(script, COUNTER_SCRIPT);
    const u = new URL(url);
    const run = spawnSync('pgbench', ['-n', '-f', script, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds), '-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username) || 'postgres', u.pathname.slice(1)], {
      encoding: 'utf8',
      env: { ...process.env, PGOPTIONS: `-c search_path=${schema} -c synchronous_commit=${synchronousCommit}`, ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}) },
    });
    if (run.error) return null;
    const tps = /tps = ([\d.]+)/.exec(run.stdout);
    const latency = /latency average = ([\d.]+) ms/.exec(run.stdout);
    if (!tps) throw new Error(`pgbench failed: ${run.stderr || run.stdout}`);
    return { clients, synchronousCommit, transactionsPerSecond: Math.round(Number(tps[1])), latencyAverageMs: latency ? Number(latency[1]) : null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs the three measurements.
 *
 * @example
 * ```js
 * const result = await runCapacityBench({ postgres: 'postgres://127.0.0.1:5432/test', users: 100000 });
 * ```
 */
export async function runCapacityBench(options = {}) {
  const settings = { postgres: 'postgres://127.0.0.1:5432/test', users: 100_000, seconds: 5, ...options };
  const log = options.log ?? ((line) => console.error(line));
  const schema = await createSchema(settings.postgres, 'bench_cap');
  const client = new pg.Client({ connectionString: schema.url });
  try {
    const store = createPostgresStore(schema.url, { max: 1 });
    await store.migrate();
    await store.close();
    await client.connect();
    const settingsRows = (await client.query("SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'max_connections', 'synchronous_commit', 'wal_level', 'autovacuum_vacuum_scale_factor', 'fsync', 'effective_cache_size', 'checkpoint_timeout', 'max_wal_size')")).rows;
    log(`filling a sample of ${settings.users} users, ${2 * settings.users} sessions…`);
    const fillStart = performance.now();
    await fillSample(client, settings.users);
    const fillSeconds = round((performance.now() - fillStart) / 1000, 1);
    const tables = await sizes(client);
    log('measuring HOT updates of last-seen writes…');
    const hot = await hotTouches(client, 2_000);
    log('query plans…');
    const plans = await queryPlans(client);

    // Active sessions to end: each joined by the forum (back-channel: one outbox row per end).
    const active = (await client.query('SELECT handle FROM sessions WHERE ended_at IS NULL')).rows.map((r) => r.handle);
    const offUrl = (() => {
      const u = new URL(schema.url);
      u.searchParams.set('options', `${u.searchParams.get('options')} -c synchronous_commit=off`);
      return u.toString();
    })();
    const runs = [];
    for (const [concurrency, batch, url, label] of [
      [1, 1, schema.url, 'on'], [4, 1, schema.url, 'on'], [16, 1, schema.url, 'on'], [64, 1, schema.url, 'on'],
      [1, 1, offUrl, 'off'], [16, 1, offUrl, 'off'],
      [4, 100, schema.url, 'on'],
    ]) {
      const r = await revocationRate({ url, handles: active, concurrency, seconds: settings.seconds, batch, label: `synchronous_commit ${label}` });
      log(`  ${r.label}, ${concurrency} callers, ${batch} per call: ${r.revocationsPerSecond} revocations/s (p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms)`);
      runs.push(r);
    }
    const counter = [];
    for (const [clients, sc] of [[1, 'on'], [8, 'on'], [32, 'on'], [8, 'off']]) {
      const r = counterCeiling(withUser(settings.postgres), schema.name, clients, settings.seconds, sc);
      if (!r) break;
      log(`  counter only (pgbench), ${clients} clients, synchronous_commit ${sc}: ${r.transactionsPerSecond} tx/s`);
      counter.push(r);
    }
    return { settings: { ...settings, log: undefined, cores: availableParallelism() }, postgresVersion: schema.version, postgresSettings: settingsRows, fillSeconds, tables, hot, plans, revocations: runs, counter, loadAverage: loadavg().map((l) => round(l, 2)) };
  } finally {
    await client.end().catch(() => undefined);
    await schema.drop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseBenchArgs(import.meta.url, {
    options: {
      postgres: { type: 'string', default: process.env.TESSERA_BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test' },
      users: { type: 'string', default: '100000' },
      seconds: { type: 'string', default: '5' },
      json: { type: 'string' },
    },
  });
  const result = await runCapacityBench({ postgres: values.postgres, users: Number(values.users), seconds: Number(values.seconds) });
  const text = JSON.stringify(result, null, 2);
  if (values.json) writeFileSync(values.json, text);
  else console.log(text);
}
