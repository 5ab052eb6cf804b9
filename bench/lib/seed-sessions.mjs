// Fills a freshly migrated Tessera store with many sessions, fast, by writing rows straight
// into the tables of packages/store/src/migrations.ts (better-sqlite3 in big transactions;
// PostgreSQL with multi-row INSERT … SELECT FROM unnest(…)). Only the benchmarks use this:
// the rows have the shape the store writes, so the store reads and ends them as its own.
//
// Layout for `size` sessions: size / 20 users, every one alike: 10 active sessions and 10
// already ended ones (each with its entry in the revocation log, since ended sessions are
// kept for the audit trail). Sessions are created round-robin (every user's 1st session,
// then every user's 2nd, …), ended and active ones alternating, so that one user's rows are
// spread over the table as in a store that has lived for months. Every user having the
// same shape keeps the mix of row sizes, and so how full the pages are, the same at every
// store size: only the size differs. The measured users are spread evenly over the ids.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const ACTIVE_PER_USER = 10;
const SESSIONS_PER_USER = 2 * ACTIVE_PER_USER;
const DAY = 86_400_000;

const SESSION_COLUMNS = ['token_id', 'handle', 'user_id', 'secret_hash', 'ip', 'user_agent', 'created_at', 'last_seen_at', 'idle_timeout_ms', 'expires_at', 'idle_expires_at', 'apps', 'ended_at', 'ended_by', 'end_reason'];
const USER_COLUMNS = ['id', 'username', 'username_lower', 'email', 'email_lower', 'disabled', 'created_at', 'updated_at'];
const REVOCATION_COLUMNS = ['cursor', 'sid', 'sub', 'reason', 'actor', 'at', 'app'];

/**
 * The population of a store of `size` sessions: user ids, and which `measuredCount` of
 * them are measured (returned in `measured`).
 */
export function planPopulation(size, measuredCount) {
  if (size % SESSIONS_PER_USER !== 0) throw new TypeError(`size must be a multiple of ${SESSIONS_PER_USER}`);
  const userCount = size / SESSIONS_PER_USER;
  if (measuredCount > userCount) throw new TypeError(`a store of ${size} sessions has only ${userCount} users; ${measuredCount} are to be measured`);
  const ids = Array.from({ length: userCount }, () => `usr_${randomBytes(12).toString('base64url')}`);
  const measured = [];
  const step = userCount / measuredCount;
  for (let k = 0; k < measuredCount; k++) {
    const index = Math.floor(k * step + step / 2);
    measured.push(ids[index]);
  }
  return { size, userCount, activePerUser: ACTIVE_PER_USER, ids, measured };
}

/** Yields batches of { users, sessions, revocations } rows (arrays in column order). */
function* generateRows(plan, batchSize) {
  const now = Date.now();
  const apps = (at) => JSON.stringify([{ clientId: 'bench-app', joinedAt: at, leftAt: null }]);
  let cursor = 0;
  // Users first, in one stream of batches.
  for (let start = 0; start < plan.userCount; start += batchSize) {
    const users = [];
    for (let u = start; u < Math.min(plan.userCount, start + batchSize); u++) {
      const name = `bench${u}`;
      users.push([plan.ids[u], name, name, `${name}@example.test`, `${name}@example.test`, 0, now - 60 * DAY, now - 60 * DAY]);
    }
    yield { users, sessions: [], revocations: [] };
  }
  for (let start = 0; start < plan.size; start += batchSize) {
    const end = Math.min(plan.size, start + batchSize);
    const random = randomBytes((end - start) * 64);
    const sessions = [];
    const revocations = [];
    for (let i = start; i < end; i++) {
      const round = Math.floor(i / plan.userCount);
      const u = i % plan.userCount;
      const o = (i - start) * 64;
      // One session every 12 hours over the last 10 days: none has expired yet.
      const createdAt = now - ((SESSIONS_PER_USER - round) * DAY) / 2 + (u % 1000);
      const expiresAt = createdAt + 30 * DAY;
      const idleExpiresAt = Math.min(createdAt + 14 * DAY, expiresAt);
      const ended = round % 2 === 1;
      const handle = `ses_${random.toString('base64url', o + 16, o + 32)}`;
      const endedAt = ended ? createdAt + 3_600_000 : null;
      sessions.push([
        random.toString('base64url', o, o + 16), handle, plan.ids[u], random.toString('hex', o + 32, o + 64),
        `10.${(u >> 16) & 255}.${(u >> 8) & 255}.${u & 255}`, 'Mozilla/5.0 (X11; Linux x86_64) bench',
        createdAt, createdAt, 14 * DAY, expiresAt, idleExpiresAt, apps(createdAt),
        endedAt, ended ? 'user' : null, ended ? 'logout' : null,
      ]);
      if (ended) revocations.push([++cursor, handle, plan.ids[u], 'logout', 'user', endedAt, null]);
    }
    yield { users: [], sessions, revocations };
  }
}

/**
 * Seeds a migrated SQLite file. Returns the number of revocation log entries written.
 */
export function seedSqlite(file, plan, { batchSize = 50_000 } = {}) {
  const Database = require('better-sqlite3');
  const db = new Database(file);
  try {
    // Seeding only (a crash here just means seeding again): no journal, no fsync, a large
    // page cache, and the secondary indexes built once at the end, which is far faster than
    // growing them row by row. They are rebuilt from their own definitions in
    // sqlite_master, so the schema stays exactly what the migrations made.
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -1000000');
    db.pragma('temp_store = MEMORY');
    const indexes = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('users', 'sessions', 'revocations')").all();
    for (const { name } of indexes) db.exec(`DROP INDEX ${name}`);
    const insert = (table, columns) => db.prepare(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
    const user = insert('users', USER_COLUMNS);
    const session = insert('sessions', SESSION_COLUMNS);
    const revocation = insert('revocations', REVOCATION_COLUMNS);
    let cursor = 0;
    const write = db.transaction((batch) => {
      for (const row of batch.users) user.run(row);
      // In key order, each batch's inserts into the token_id index walk it left to right.
      for (const row of batch.sessions.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) session.run(row);
      for (const row of batch.revocations) revocation.run(row);
      cursor += batch.revocations.length;
    });
    for (const batch of generateRows(plan, batchSize)) write(batch);
    db.prepare('UPDATE revocation_counter SET value = ? WHERE id = 1').run(cursor);
    for (const { sql } of indexes) db.exec(sql);
    // Back to the mode the store opens the file in.
    db.pragma('journal_mode = WAL');
    return cursor;
  } finally {
    db.close();
  }
}

const PG_TYPES = {
  users: ['text', 'text', 'text', 'text', 'text', 'int4', 'int8', 'int8'],
  sessions: ['text', 'text', 'text', 'text', 'text', 'text', 'int8', 'int8', 'int8', 'int8', 'int8', 'text', 'int8', 'text', 'text'],
  revocations: ['int8', 'text', 'text', 'text', 'text', 'int8', 'text'],
};

/**
 * Seeds a migrated PostgreSQL schema through `client` (a pg Client whose search_path is
 * that schema), then ANALYZEs, as autovacuum would soon after a load of this size.
 */
export async function seedPostgres(client, plan, { batchSize = 20_000 } = {}) {
  const insert = async (table, columns, rows) => {
    if (rows.length === 0) return;
    const arrays = columns.map((_, c) => rows.map((row) => row[c]));
    const types = PG_TYPES[table];
    await client.query(
      `INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`,
      arrays,
    );
  };
  // As for SQLite: secondary indexes are dropped and rebuilt from their own definitions
  // (pg_indexes), which is much faster than growing them row by row. Indexes that back
  // a PRIMARY KEY or UNIQUE constraint stay.
  const { rows: indexes } = await client.query(
    `SELECT indexname, indexdef FROM pg_indexes
      WHERE schemaname = current_schema() AND tablename IN ('users', 'sessions', 'revocations')
        AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)`,
  );
  for (const { indexname } of indexes) await client.query(`DROP INDEX ${indexname}`);
  // Seeding only, and only for this connection: a crash here just means seeding again.
  await client.query("SET synchronous_commit = off; SET maintenance_work_mem = '256MB'");
  let cursor = 0;
  for (const batch of generateRows(plan, batchSize)) {
    await client.query('BEGIN');
    await insert('users', USER_COLUMNS, batch.users);
    await insert('sessions', SESSION_COLUMNS, batch.sessions);
    await insert('revocations', REVOCATION_COLUMNS, batch.revocations);
    await client.query('COMMIT');
    cursor += batch.revocations.length;
  }
  await client.query('UPDATE revocation_counter SET value = $1 WHERE id = 1', [cursor]);
  for (const { indexdef } of indexes) await client.query(indexdef);
  await client.query('ANALYZE');
  return cursor;
}
