import type { SqlDriver } from './driver.js';

/**
 * The schema, versioned. Each migration is written once with two type placeholders:
 * `BIGINT` (epoch ms and cursors) and `SERIAL_PK` (an auto-increment primary key).
 * Booleans are stored as 0/1 integers and lists/objects as JSON text in both databases, so
 * one set of SQL statements serves both.
 */
const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string; /** Run after `sql` on PostgreSQL only. */ postgres?: string }> = [
  {
    version: 1,
    name: 'sessions, users, apps, revocation log, audit',
    sql: `
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  username_lower TEXT NOT NULL UNIQUE,
  email TEXT,
  email_lower TEXT UNIQUE,
  first_name TEXT,
  last_name TEXT,
  picture TEXT,
  disabled INTEGER NOT NULL DEFAULT 0,
  password_hash TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE apps (
  client_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  trusted INTEGER NOT NULL DEFAULT 0,
  allowed_origins TEXT NOT NULL,
  return_urls TEXT NOT NULL,
  backchannel_logout_uri TEXT,
  connectors TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE sessions (
  token_id TEXT PRIMARY KEY,
  handle TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  ip TEXT,
  user_agent TEXT,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  idle_timeout_ms BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  idle_expires_at BIGINT NOT NULL,
  apps TEXT NOT NULL,
  ended_at BIGINT,
  ended_by TEXT,
  end_reason TEXT
);
-- A user's sessions: listing and ending them costs the same whatever the table size.
CREATE INDEX sessions_by_user ON sessions (user_id, ended_at);
-- The sweeper's scan. idle_expires_at is capped at expires_at, so it alone is the deadline.
CREATE INDEX sessions_by_deadline ON sessions (idle_expires_at) WHERE ended_at IS NULL;
CREATE TABLE revocation_counter (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO revocation_counter (id, value) VALUES (1, 0);
CREATE TABLE revocations (
  cursor BIGINT PRIMARY KEY,
  sid TEXT NOT NULL,
  sub TEXT NOT NULL,
  reason TEXT NOT NULL,
  actor TEXT NOT NULL,
  at BIGINT NOT NULL,
  app TEXT
);
CREATE TABLE logout_tokens (
  token_hash TEXT PRIMARY KEY,
  handle TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX logout_tokens_by_handle ON logout_tokens (handle);
CREATE INDEX logout_tokens_by_expiry ON logout_tokens (expires_at);
CREATE TABLE admin_tokens (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  label TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE audit_events (
  id SERIAL_PK,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  user_id TEXT,
  session_handle TEXT,
  client_id TEXT,
  ip TEXT,
  details TEXT NOT NULL
);
CREATE INDEX audit_by_user ON audit_events (user_id, id);
`,
  },
  {
    version: 2,
    name: 'signing keys and refresh tokens',
    sql: `
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  private_jwk TEXT NOT NULL,
  activates_at BIGINT NOT NULL,
  retires_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE refresh_tokens (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  handle TEXT NOT NULL,
  client_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
`,
  },
  {
    version: 3,
    name: 'logout delivery outbox',
    sql: `
CREATE TABLE deliveries (
  id SERIAL_PK,
  cursor BIGINT NOT NULL,
  sub TEXT NOT NULL,
  sid TEXT,
  client_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  reason TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  lease_owner TEXT,
  lease_expires_at BIGINT,
  last_attempt_at BIGINT,
  last_error TEXT,
  last_status INTEGER,
  created_at BIGINT NOT NULL,
  horizon_at BIGINT NOT NULL,
  delivered_at BIGINT
);
-- The workers' scan: due pending deliveries only.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_status ON deliveries (status, id);
CREATE TABLE delivery_sessions (
  handle TEXT NOT NULL,
  delivery_id BIGINT NOT NULL,
  PRIMARY KEY (handle, delivery_id)
);
`,
  },
  {
    version: 4,
    name: 'delivery sessions by delivery',
    // Every claim, status read and listing of deliveries looks their sessions up by
    // delivery id; the primary key (handle first) cannot serve that, so each lookup read
    // the whole table, which keeps every delivery ever made.
    sql: `
CREATE INDEX delivery_sessions_by_delivery ON delivery_sessions (delivery_id);
`,
  },
  {
    version: 5,
    name: 'retention and feed start-up indexes',
    // The retention job deletes sessions that ended long ago, oldest first; without this
    // index each batch would scan the whole sessions table. Partial: active sessions (most
    // of the table's traffic) do not pay for it.
    // A verifier that starts skips the log entries whose tokens have all expired; finding
    // the first entry that still matters reads only the recent ones through revocations_by_time.
    // IF NOT EXISTS: on a large PostgreSQL table an operator may build them CONCURRENTLY first.
    sql: `
CREATE INDEX IF NOT EXISTS sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS revocations_by_time ON revocations (at);
`,
  },
  {
    version: 6,
    name: 'users.email_verified',
    // Apps that match accounts by email (nodebb-plugin-session-sharing looks the shared
    // cookie's email up in the forum's own users) must only ever be given a verified one.
    // Existing users start unverified: nobody said their emails were checked.
    sql: `
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 7,
    name: 'OpenID Connect: client metadata, authorization codes, consents, refresh token scope',
    // Apps registered before keep working: no redirect URIs (so no authorization endpoint
    // until an admin adds them), confidential (client_secret_basic), RS256 ID tokens.
    sql: `
ALTER TABLE apps ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN grant_types TEXT NOT NULL DEFAULT '["authorization_code","refresh_token"]';
ALTER TABLE apps ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
ALTER TABLE apps ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256';
ALTER TABLE refresh_tokens ADD COLUMN scope TEXT;
CREATE TABLE authorization_codes (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  client_id TEXT NOT NULL,
  handle TEXT NOT NULL,
  user_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT,
  nonce TEXT,
  scope TEXT NOT NULL,
  auth_time BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);
CREATE TABLE consents (
  user_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, client_id)
);
`,
  },
  {
    version: 8,
    name: 'Shared Signals transmitter: streams, stream subjects, SET outbox',
    // The SET outbox is apart from the logout outbox (deliveries): a SET belongs to a stream,
    // not to an app and a session, carries its claims (signed at each attempt, with the same
    // jti), and is ordered per stream and subject.
    sql: `
CREATE TABLE ssf_streams (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  audience TEXT NOT NULL,
  events_requested TEXT NOT NULL,
  events_delivered TEXT NOT NULL,
  delivery_method TEXT NOT NULL,
  endpoint_url TEXT NOT NULL,
  authorization_header TEXT,
  description TEXT,
  status TEXT NOT NULL,
  status_reason TEXT,
  subject_format TEXT NOT NULL,
  min_verification_interval INTEGER NOT NULL,
  last_verification_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX ssf_streams_by_client ON ssf_streams (client_id, created_at);
CREATE TABLE ssf_stream_subjects (
  stream_id TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  included INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (stream_id, subject_key)
);
CREATE TABLE ssf_events (
  id SERIAL_PK,
  stream_id TEXT NOT NULL,
  jti TEXT NOT NULL UNIQUE,
  subject_key TEXT NOT NULL,
  event_type TEXT NOT NULL,
  claims TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  lease_owner TEXT,
  lease_expires_at BIGINT,
  last_attempt_at BIGINT,
  last_error TEXT,
  last_status INTEGER,
  created_at BIGINT NOT NULL,
  horizon_at BIGINT NOT NULL,
  delivered_at BIGINT
);
-- The push claim's scan (due pending events) and its ordering check (an older pending event
-- of the same stream and subject), both on pending rows only.
CREATE INDEX ssf_events_due ON ssf_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX ssf_events_pending_by_subject ON ssf_events (stream_id, subject_key, id) WHERE status = 'pending';
CREATE INDEX ssf_events_by_stream ON ssf_events (stream_id, status, id);
CREATE INDEX ssf_events_by_status ON ssf_events (status, id);
`,
  },
  {
    version: 10,
    name: 'admin console sign-ins; revocation log by user',
    // The console's own sessions (separate from user sessions; only the secret's hash). The
    // console's revocation log filtered by user reads that user's entries, newest first,
    // through revocations_by_sub instead of walking the whole log backwards.
    sql: `
CREATE TABLE console_sessions (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  ended_at BIGINT
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
CREATE INDEX IF NOT EXISTS revocations_by_sub ON revocations (sub, cursor);
`,
  },
  {
    version: 11,
    name: 'SET claims that do not grow with the backlog',
    // The push claim walks ssf_events_due in due order and checks, for each SET, that no
    // older SET of the same stream and subject is pending, through
    // ssf_events_pending_by_subject. PostgreSQL's planner, misled by statistics (below), did
    // that check with a scan of all of ssf_events_due instead, once per SET claimed: every
    // claim read the backlog many times over, and the push fell behind for good (a 56-second
    // stall after an autoanalyze; 8.9 s per claim at 20,000 pending; benchmarks.md §9).
    // `next_attempt_at IS NOT NULL` (always true: the column is NOT NULL) makes the index
    // usable only by a query with a condition on next_attempt_at, such as the claim's due
    // scan, and no longer by that check. SQLite's INDEXED BY still finds it (a comparison on a
    // column implies that it is not null).
    sql: `
DROP INDEX ssf_events_due;
CREATE INDEX ssf_events_due ON ssf_events (next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
`,
    // PostgreSQL: no statistics for ssf_events.status. Autoanalyze samples some instant, and
    // at 100 revocations a second most instants have no SET pending. With an estimate of
    // about one pending row every plan looks cheap: the check above went to
    // ssf_events_by_stream (stream_id, status, id) and filtered by subject. Without
    // statistics an equality on status is estimated at 0.5% of the rows, never almost none,
    // so the lookup by subject wins. Changing the type to itself drops the statistics already
    // gathered (SET STATISTICS 0 only stops new ones), without rewriting the table.
    postgres: `
ALTER TABLE ssf_events ALTER COLUMN status SET STATISTICS 0, ALTER COLUMN status TYPE TEXT;
`,
  },
  {
    version: 12,
    name: 'room for a SET lease in its own page',
    sql: '',
    // PostgreSQL: inserts fill ssf_events pages to 45%, so the push claim's UPDATE
    // (lease_owner, lease_expires_at: in no index, and in no index's predicate) finds room on
    // the same page for the new version of every SET there and is a HOT update: no entry in
    // any of the table's six indexes, a WAL record of about 110 bytes instead of 1,500 (the
    // new version is logged as its difference from the old one, which only works on the same
    // page), and the old version is pruned with the page, without VACUUM. The update that
    // marks it delivered changes status (in indexes and their predicates), so it is never
    // HOT, but it too finds room on the page: 620 instead of 1,370 bytes of WAL. At the
    // default fillfactor (100) a SET's page was full when its claim came: in a one-minute
    // benchmark run 12% of the updates were HOT, at 50 all the claims; 45 leaves room for
    // every row of a page to get a new version of its size (benchmarks.md §9). The price: the
    // table's pages hold half as many SETs (purged after their retention). New pages only;
    // existing ones fill as they are.
    postgres: `
ALTER TABLE ssf_events SET (fillfactor = 45);
`,
  },
  {
    version: 13,
    name: 'held SETs out of the push claim',
    // `held` = 1: a pending SET no push may take now (its stream polls, or is a paused push
    // stream and the SET is not about the stream itself). The push claim walked every pending
    // SET in due order and skipped these by their stream: a poll stream not polled for a while,
    // or a paused stream, holds up to the horizon's worth of them, and every claim of every
    // other stream read them all (93 ms per claim on PostgreSQL, 67 ms on SQLite, with 50,000
    // held; bench/ssf-held.mjs, benchmarks.md §9): one receiver's outage slowed every push.
    // ssf_events_due now leaves them out. Rows that are pending when this runs are set from
    // their streams' state.
    //
    // ssf_events_held finds held SETs of streams that take pushes again (the store's
    // releaseHeldSsfEvents, the repair of a status change that raced a SET's insert), and
    // ssf_events_horizon the pending SETs past their horizon (expireSsfEvents read every
    // pending SET, 25 ms a pass on PostgreSQL with 50,000 held). `horizon_at IS NOT NULL`
    // (always true) keeps it for queries with a condition on horizon_at, as migration 11 did
    // for ssf_events_due: with `status = 'pending'` alone, PostgreSQL took it for the claim's
    // check of an older SET of the same subject, and read every pending SET for each one
    // claimed (60,080 rows for a claim of 20 at 3,000 pending, in postgres.test.ts).
    sql: `
ALTER TABLE ssf_events ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
UPDATE ssf_events SET held = COALESCE((SELECT CASE WHEN s.delivery_method = 'push' AND (s.status = 'enabled' OR (s.status = 'paused' AND ssf_events.subject_key LIKE 'stream:%')) THEN 0 ELSE 1 END FROM ssf_streams s WHERE s.id = ssf_events.stream_id), 1)
  WHERE status = 'pending';
DROP INDEX ssf_events_due;
CREATE INDEX ssf_events_due ON ssf_events (next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL AND held = 0;
CREATE INDEX ssf_events_held ON ssf_events (stream_id) WHERE status = 'pending' AND held = 1;
CREATE INDEX ssf_events_horizon ON ssf_events (horizon_at) WHERE status = 'pending' AND horizon_at IS NOT NULL;
`,
  },
];

function forDialect(sql: string, dialect: SqlDriver['dialect']): string {
  return dialect === 'postgres'
    ? sql.replace(/SERIAL_PK/g, 'BIGSERIAL PRIMARY KEY')
    : sql.replace(/SERIAL_PK/g, 'INTEGER PRIMARY KEY AUTOINCREMENT').replace(/BIGINT/g, 'INTEGER');
}

/**
 * Applies pending migrations in one transaction. On PostgreSQL an advisory lock makes
 * several nodes starting at once apply each migration exactly once.
 */
export async function migrate(driver: SqlDriver): Promise<number[]> {
  return driver.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.get('SELECT pg_advisory_xact_lock(727274)');
    // Under the lock: two nodes running CREATE TABLE IF NOT EXISTS at once on PostgreSQL can
    // both pass the existence check, and the second fails on pg_type's unique index.
    await tx.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const done = new Set((await tx.all<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      if (m.sql) await tx.exec(forDialect(m.sql, tx.dialect));
      if (m.postgres && tx.dialect === 'postgres') await tx.exec(m.postgres);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
      applied.push(m.version);
    }
    return applied;
  });
}
