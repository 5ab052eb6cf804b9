import { AsyncLocalStorage } from 'node:async_hooks';
import {
  TesseraError,
  type AdminTokenRecord,
  type AppPatch,
  type AppRecord,
  type AuditEvent,
  type AuthorizationCodeRecord,
  type ConsentRecord,
  type Delivery,
  type DeliveryStatus,
  type NewSession,
  type RefreshTokenRecord,
  type RevocationEvent,
  type SigningKeyRecord,
  type SessionApp,
  type SessionEnd,
  type SessionRecord,
  type Store,
  type StoreOperations,
  type UserPatch,
  type UserRecord,
  type SsfEvent,
  type SsfStream,
  type SsfStreamPatch,
  type SsfStreamSubject,
} from '@tessera/core';
import type { Row, SqlDriver } from './driver.js';
import { migrate } from './migrations.js';

/** The PostgreSQL NOTIFY channel that announces new revocation log entries (payload: the newest cursor). */
export const REVOCATION_CHANNEL = 'tessera_revocations';
/**
 * The PostgreSQL NOTIFY channel that announces a changed or deleted app (payload: its client
 * id): every node re-checks the long-lived connections (revocation streams) opened with that
 * app's credentials, and closes those whose secret was rotated or whose app is gone.
 */
export const CREDENTIAL_CHANNEL = 'tessera_credentials';

/** The PostgreSQL NOTIFY channel that announces new SETs in the Shared Signals outbox. */
export const SSF_CHANNEL = 'tessera_ssf';

// Keeps `IN (…)` lists under every driver's parameter limit.
const CHUNK = 500;

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toUser(r: Row): UserRecord {
  return {
    id: String(r.id),
    username: String(r.username),
    email: strOrNull(r.email),
    emailVerified: num(r.email_verified) === 1,
    firstName: strOrNull(r.first_name),
    lastName: strOrNull(r.last_name),
    picture: strOrNull(r.picture),
    disabled: num(r.disabled) === 1,
    passwordHash: strOrNull(r.password_hash),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toApp(r: Row): AppRecord {
  return {
    clientId: String(r.client_id),
    name: String(r.name),
    trusted: num(r.trusted) === 1,
    allowedOrigins: JSON.parse(String(r.allowed_origins)) as string[],
    returnUrls: JSON.parse(String(r.return_urls)) as string[],
    backchannelLogoutUri: strOrNull(r.backchannel_logout_uri),
    connectors: JSON.parse(String(r.connectors)) as Record<string, unknown>,
    oidc: {
      redirectUris: JSON.parse(String(r.redirect_uris)) as string[],
      postLogoutRedirectUris: JSON.parse(String(r.post_logout_redirect_uris)) as string[],
      grantTypes: JSON.parse(String(r.grant_types)) as AppRecord['oidc']['grantTypes'],
      tokenEndpointAuthMethod: String(r.token_endpoint_auth_method) as AppRecord['oidc']['tokenEndpointAuthMethod'],
      backchannelLogoutSessionRequired: num(r.backchannel_logout_session_required) === 1,
      idTokenSignedResponseAlg: String(r.id_token_signed_response_alg) as AppRecord['oidc']['idTokenSignedResponseAlg'],
    },
    secretHash: String(r.secret_hash),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toSession(r: Row): SessionRecord {
  return {
    tokenId: String(r.token_id),
    handle: String(r.handle),
    userId: String(r.user_id),
    secretHash: String(r.secret_hash),
    ip: strOrNull(r.ip),
    userAgent: strOrNull(r.user_agent),
    createdAt: num(r.created_at),
    lastSeenAt: num(r.last_seen_at),
    idleTimeoutMs: num(r.idle_timeout_ms),
    expiresAt: num(r.expires_at),
    idleExpiresAt: num(r.idle_expires_at),
    apps: JSON.parse(String(r.apps)) as SessionApp[],
    endedAt: numOrNull(r.ended_at),
    endedBy: strOrNull(r.ended_by) as SessionRecord['endedBy'],
    endReason: strOrNull(r.end_reason) as SessionRecord['endReason'],
  };
}

function toEvent(r: Row): RevocationEvent {
  return {
    cursor: num(r.cursor),
    sid: String(r.sid),
    sub: String(r.sub),
    reason: String(r.reason) as RevocationEvent['reason'],
    actor: String(r.actor) as RevocationEvent['actor'],
    at: num(r.at),
    app: strOrNull(r.app),
  };
}

/** A SET still pending, as written where rows are found by id or jti (see deliverSsfEvents). */
const SSF_NOT_SETTLED = "status NOT IN ('delivered', 'dead')";

/** The columns the logout outbox (deliveries) and the SET outbox (ssf_events) share: attempts, lease, horizon. */
function attemptStateOf(r: Row) {
  return {
    attempts: num(r.attempts),
    nextAttemptAt: num(r.next_attempt_at),
    leaseOwner: strOrNull(r.lease_owner),
    leaseExpiresAt: numOrNull(r.lease_expires_at),
    lastAttemptAt: numOrNull(r.last_attempt_at),
    lastError: strOrNull(r.last_error),
    lastStatus: numOrNull(r.last_status),
    createdAt: num(r.created_at),
    horizonAt: num(r.horizon_at),
    deliveredAt: numOrNull(r.delivered_at),
  };
}

function toDelivery(r: Row, handles: string[]): Delivery {
  return {
    id: num(r.id),
    cursor: num(r.cursor),
    sub: String(r.sub),
    sid: strOrNull(r.sid),
    handles,
    clientId: String(r.client_id),
    channel: String(r.channel) as Delivery['channel'],
    reason: String(r.reason) as Delivery['reason'],
    status: String(r.status) as DeliveryStatus,
    ...attemptStateOf(r),
  };
}


function toStream(r: Row): SsfStream {
  return {
    id: String(r.id),
    clientId: String(r.client_id),
    audience: JSON.parse(String(r.audience)) as string[],
    eventsRequested: JSON.parse(String(r.events_requested)) as string[],
    eventsDelivered: JSON.parse(String(r.events_delivered)) as string[],
    deliveryMethod: String(r.delivery_method) as SsfStream['deliveryMethod'],
    endpointUrl: String(r.endpoint_url),
    authorizationHeader: strOrNull(r.authorization_header),
    description: strOrNull(r.description),
    status: String(r.status) as SsfStream['status'],
    statusReason: strOrNull(r.status_reason),
    subjectFormat: String(r.subject_format) as SsfStream['subjectFormat'],
    minVerificationInterval: num(r.min_verification_interval),
    lastVerificationAt: numOrNull(r.last_verification_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

const STREAM_COLUMNS: Record<Exclude<keyof SsfStreamPatch, 'updatedAt'>, [string, (v: unknown) => unknown]> = {
  audience: ['audience', (v) => JSON.stringify(v)],
  eventsRequested: ['events_requested', (v) => JSON.stringify(v)],
  eventsDelivered: ['events_delivered', (v) => JSON.stringify(v)],
  deliveryMethod: ['delivery_method', (v) => v],
  endpointUrl: ['endpoint_url', (v) => v],
  authorizationHeader: ['authorization_header', (v) => v],
  description: ['description', (v) => v],
  status: ['status', (v) => v],
  statusReason: ['status_reason', (v) => v],
  subjectFormat: ['subject_format', (v) => v],
  lastVerificationAt: ['last_verification_at', (v) => v],
};

/**
 * Whether a pending SET of stream `s` about `subject` is held (1) or may be pushed now (0):
 * held when its stream polls (a poll takes it, never the push claim), and when its stream is
 * a paused push stream and the SET is not about the stream itself (a pause holds the
 * subjects' SETs; verification and stream-updated still go out). A SET whose stream is gone
 * is held (nothing will push it; the horizon ends it). The push claim reads only unheld SETs
 * (ssf_events_due), so a poll stream's or a paused stream's backlog costs it nothing
 * (migration 13). The claim still checks the stream itself: this is where to look, not
 * permission.
 */
function heldSql(subject = 'ssf_events.subject_key', stream = 'ssf_events.stream_id'): string {
  return `COALESCE((SELECT CASE WHEN s.delivery_method = 'push' AND (s.status = 'enabled' OR (s.status = 'paused' AND ${subject} LIKE 'stream:%')) THEN 0 ELSE 1 END FROM ssf_streams s WHERE s.id = ${stream}), 1)`;
}
/** heldSql for a row being inserted: its subject key and stream id as parameters, in that order. */
const INSERT_HELD = heldSql('CAST(? AS TEXT)', '?');

function toSsfEvent(r: Row): SsfEvent {
  return {
    id: num(r.id),
    streamId: String(r.stream_id),
    jti: String(r.jti),
    subjectKey: String(r.subject_key),
    eventType: String(r.event_type),
    claims: JSON.parse(String(r.claims)) as Record<string, unknown>,
    status: String(r.status) as SsfEvent['status'],
    ...attemptStateOf(r),
  };
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

const USER_COLUMNS: Record<Exclude<keyof UserPatch, 'updatedAt'>, string> = {
  username: 'username',
  email: 'email',
  emailVerified: 'email_verified',
  firstName: 'first_name',
  lastName: 'last_name',
  picture: 'picture',
  disabled: 'disabled',
  passwordHash: 'password_hash',
};

const APP_COLUMNS: Record<Exclude<keyof AppPatch, 'updatedAt'>, [string, (v: unknown) => unknown]> = {
  name: ['name', (v) => v],
  trusted: ['trusted', (v) => (v ? 1 : 0)],
  allowedOrigins: ['allowed_origins', (v) => JSON.stringify(v)],
  returnUrls: ['return_urls', (v) => JSON.stringify(v)],
  backchannelLogoutUri: ['backchannel_logout_uri', (v) => v],
  connectors: ['connectors', (v) => JSON.stringify(v)],
  secretHash: ['secret_hash', (v) => v],
  // Written as several columns: see updateApp.
  oidc: ['', (v) => v],
};

/** The columns of an app's OIDC metadata, with their encoders. */
function oidcColumns(m: AppRecord['oidc']): Array<[string, unknown]> {
  return [
    ['redirect_uris', JSON.stringify(m.redirectUris)],
    ['post_logout_redirect_uris', JSON.stringify(m.postLogoutRedirectUris)],
    ['grant_types', JSON.stringify(m.grantTypes)],
    ['token_endpoint_auth_method', m.tokenEndpointAuthMethod],
    ['backchannel_logout_session_required', m.backchannelLogoutSessionRequired ? 1 : 0],
    ['id_token_signed_response_alg', m.idTokenSignedResponseAlg],
  ];
}

function toCode(r: Row): AuthorizationCodeRecord {
  return {
    id: String(r.id),
    secretHash: String(r.secret_hash),
    clientId: String(r.client_id),
    handle: String(r.handle),
    userId: String(r.user_id),
    redirectUri: String(r.redirect_uri),
    codeChallenge: strOrNull(r.code_challenge),
    nonce: strOrNull(r.nonce),
    scope: String(r.scope),
    authTime: num(r.auth_time),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    usedAt: numOrNull(r.used_at),
  };
}

const toSubject = (r: Row): SsfStreamSubject => ({ streamId: String(r.stream_id), key: String(r.subject_key), included: num(r.included) === 1, createdAt: num(r.created_at) });

const toConsent = (r: Row): ConsentRecord => ({ userId: String(r.user_id), clientId: String(r.client_id), scope: String(r.scope), createdAt: num(r.created_at) });

/** The log entries of transactions that deferred them (deferRevocationLog), not yet written. */
const deferredLogs = new WeakMap<SqlDriver, RevocationEvent[]>();

/**
 * The sessions a transaction ended, as its UPDATE … RETURNING * reported them: a revoking
 * transaction reads them back right away (findSessionsByHandles, to plan the apps' notices
 * and the SETs), and on PostgreSQL that read was a round trip of its own. An entry goes as
 * soon as the same transaction changes that session again.
 */
const endedRows = new WeakMap<SqlDriver, Map<string, Row>>();

/**
 * The users of the sessions a PostgreSQL transaction ended, read by the same statement
 * (markEnded): a revoking transaction reads them next (findUserById, to address its SETs),
 * and that read was a round trip of its own. Dropped as soon as the transaction writes to
 * the users table.
 */
const endedUsers = new WeakMap<SqlDriver, Map<string, Row>>();

/**
 * The transactions that sent the revocation NOTIFY. Every node wakes its push worker and long
 * polls on that channel too, so their SETs need no NOTIFY of their own.
 */
const notifiedRevocation = new WeakSet<SqlDriver>();

/**
 * The store operations over one driver (the root driver, or a transaction's), and a
 * transaction's last step: its deferred log entries, written together with the COMMIT where
 * the driver can.
 */
function createOperations(db: SqlDriver, inTransaction = false): { ops: StoreOperations; commitDeferredLog: () => Promise<RevocationEvent[]> } {
  // Row locks for read-modify-write of a session's app list; SQLite serialises writers anyway.
  const forUpdate = db.dialect === 'postgres' ? ' FOR UPDATE' : '';

  /** Makes `clientId` a member of an active session (inside a transaction); false if it is one already or the session ended. */
  async function addMember(tx: SqlDriver, handle: string, clientId: string, at: number): Promise<boolean> {
    const row = await tx.get<{ apps: string }>(`SELECT apps FROM sessions WHERE handle = ? AND ended_at IS NULL${forUpdate}`, [handle]);
    if (!row) return false;
    const apps = JSON.parse(row.apps) as SessionApp[];
    if (apps.some((a) => a.clientId === clientId && a.leftAt === null)) return false;
    const next = apps.filter((a) => a.clientId !== clientId).concat({ clientId, joinedAt: at, leftAt: null });
    await writeApps(tx, handle, next);
    return true;
  }

  async function insertRefreshToken(tx: SqlDriver, t: RefreshTokenRecord): Promise<void> {
    await tx.run(
      'INSERT INTO refresh_tokens (id, secret_hash, handle, client_id, created_at, expires_at, used_at, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [t.id, t.secretHash, t.handle, t.clientId, t.createdAt, t.expiresAt, t.usedAt, t.scope ?? null],
    );
  }

  /** Tells every node (on commit, like the revocation NOTIFY) that an app's credentials may have changed. */
  async function notifyCredentialChange(tx: SqlDriver, clientId: string): Promise<void> {
    if (tx.dialect === 'postgres') await tx.get('SELECT pg_notify(?, ?)', [CREDENTIAL_CHANNEL, clientId]);
  }

  /**
   * A statement of SET delivery (a push or poll claim, a push outcome), with `settings` for
   * it alone. On PostgreSQL, outside a caller's transaction, it runs in a transaction of its
   * own, in one message: BEGIN, a SET LOCAL per setting, the statement, COMMIT (defer,
   * commitWith; inside a caller's transaction commitWith would commit that transaction too,
   * so there the statement runs as it is, and so it does on SQLite).
   *
   * Always with `synchronous_commit = off`: its COMMIT returns without waiting for the WAL to
   * reach the disk. Each commit that waits is an fsync, and at 1,000 SETs a second the push
   * worker's commits outnumbered the revocations' (140 a second against 100): sampled, most
   * of the time an active backend spent was waiting on WAL syncs, the claims' and the
   * revocations' in one queue, while a revoking transaction holds the revocation counter's
   * lock until its own sync is done (benchmarks.md §9).
   *
   * Why losing these commits is safe: a crash of PostgreSQL loses at most the last moments of
   * WAL (3 × wal_writer_delay, 600 ms by default), a suffix, never a hole. A lost lease
   * leaves the SET pending, to be claimed again (pushed, or served to the next poll); a lost
   * outcome leaves it pending or leased, so it is pushed again with the same claims and jti,
   * which a receiver dedupes (docs/ssf.md; at least once, as after a node dies mid-push). A
   * lost "delivered" cannot let a younger SET of the same subject go first: that SET's claim
   * comes later in the WAL, so it is lost too. What must be durable, the revocation and the
   * SETs it queues, commits with its sync as before. A poll's acknowledgements
   * (settleSsfEvents) are not among these: an acknowledged SET is not served again.
   */
  async function ssfDeliveryStatement<R = Row>(sql: string, params: readonly unknown[], settings: readonly string[] = []): Promise<R[]> {
    if (db.dialect !== 'postgres' || inTransaction) return db.all<R>(sql, params);
    return db.transaction(async (tx) => {
      for (const setting of ['synchronous_commit = off', ...settings]) await tx.defer!(`SET LOCAL ${setting}`);
      return tx.commitWith!<R>(sql, params);
    });
  }

  /**
   * Appends log entries with the next cursors. The counter's UPDATE locks its single row
   * until commit, which makes every revoking transaction take cursors in commit order: a
   * later transaction cannot get a cursor until the earlier one has committed, so readers
   * never see a gap fill in late (decision 0002).
   *
   * The lock is taken here, after the transaction has changed its session rows, not at its
   * start: every revocation waits for it, so the time it is held is what bounds revocations
   * per second (on PostgreSQL each statement under it is a round trip). Taking it last cannot
   * deadlock: the statements that follow it in a revoking transaction (outbox rows, audit)
   * wait for no session or user row, so its holder always gets to commit.
   */
  async function appendLog(tx: SqlDriver, entries: Omit<RevocationEvent, 'cursor'>[]): Promise<RevocationEvent[]> {
    if (entries.length === 0) return [];
    const deferred = deferredLogs.get(tx);
    if (deferred) {
      // Cursor 0 until flushRevocationLog gives these very objects their cursors.
      const events = entries.map((e) => ({ ...e, cursor: 0 }));
      deferred.push(...events);
      return events;
    }
    return writeLog(tx, entries);
  }

  /**
   * Writes log entries with the next cursors. With `commit`, the caller has nothing left to do
   * in the transaction: on PostgreSQL the statement then travels with the COMMIT
   * (SqlDriver.commitWith), so the counter's lock is held only while the server runs them,
   * not over a round trip to this node and back.
   */
  async function writeLog(tx: SqlDriver, entries: Omit<RevocationEvent, 'cursor'>[], commit = false): Promise<RevocationEvent[]> {
    if (entries.length === 0) return [];
    const row = (e: Omit<RevocationEvent, 'cursor'>) => [e.sid, e.sub, e.reason, e.actor, e.at, e.app];
    let first: number;
    // How many entries the counter's statement wrote itself (PostgreSQL: the first chunk).
    let written = 0;
    if (tx.dialect === 'postgres') {
      // One round trip for what three statements did (the counter, the NOTIFY, the first
      // rows), as each one made under the lock holds back every other revocation. The NOTIFY
      // is delivered only when (and if) the transaction commits: every node LISTENing wakes
      // its feed and outbox right after the end is durable, never before. Its payload is the
      // last cursor, the counter's new value; the WHERE reads `notified` so that the call is
      // part of the query.
      const head = entries.slice(0, CHUNK);
      const run = commit && head.length === entries.length && tx.commitWith ? tx.commitWith.bind(tx) : tx.all.bind(tx);
      const rows = await run<{ cursor: unknown }>(
        `WITH c AS (UPDATE revocation_counter SET value = value + ? WHERE id = 1 RETURNING value, pg_notify(?, value::text) IS NULL AS notified)
         INSERT INTO revocations (cursor, sid, sub, reason, actor, at, app)
         SELECT c.value - ? + v.n, v.sid, v.sub, v.reason, v.actor, v.at, v.app
         FROM c, (VALUES ${head.map(() => '(?::bigint, ?::text, ?::text, ?::text, ?::text, ?::bigint, ?::text)').join(', ')}) AS v (n, sid, sub, reason, actor, at, app)
         WHERE c.notified IS NOT NULL
         RETURNING cursor`,
        [entries.length, REVOCATION_CHANNEL, entries.length, ...head.flatMap((e, i) => [i + 1, ...row(e)])],
      );
      notifiedRevocation.add(tx);
      first = Math.min(...rows.map((r) => num(r.cursor)));
      written = head.length;
    } else {
      const counter = await tx.get<{ value: unknown }>('UPDATE revocation_counter SET value = value + ? WHERE id = 1 RETURNING value', [entries.length]);
      first = num(counter!.value) - entries.length + 1;
    }
    const events = entries.map((e, i) => ({ ...e, cursor: first + i }));
    for (const part of chunks(events.slice(written))) {
      await tx.run(
        `INSERT INTO revocations (cursor, sid, sub, reason, actor, at, app) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        part.flatMap((e) => [e.cursor, ...row(e)]),
      );
    }
    return events;
  }

  async function markEnded(tx: SqlDriver, where: string, params: unknown[], end: SessionEnd): Promise<Row[]> {
    // RETURNING reports only the rows this statement changed: a concurrent end of the same
    // session (another node, the sweeper) cannot make both write a log entry. An ended
    // session's logout tokens go with it: on PostgreSQL in the same statement (a
    // data-modifying WITH), on SQLite in finishEnd.
    const update = `UPDATE sessions SET ended_at = ?, ended_by = ?, end_reason = ? WHERE ended_at IS NULL AND ${where} RETURNING *`;
    // On PostgreSQL, in a transaction, each ended session's user comes along (as JSON, read
    // like readRevocationContext's rows) for findUserById.
    const withUser = inTransaction ? ', (SELECT row_to_json(u) FROM users u WHERE u.id = ended.user_id) AS ended_user' : '';
    const rows = await tx.all(
      tx.dialect === 'postgres' ? `WITH ended AS (${update}), tokens AS (DELETE FROM logout_tokens WHERE handle IN (SELECT handle FROM ended)) SELECT ended.*${withUser} FROM ended` : update,
      [end.at, end.actor, end.reason, ...params],
    );
    if (inTransaction) {
      let memo = endedRows.get(tx);
      if (!memo) endedRows.set(tx, (memo = new Map()));
      let users = endedUsers.get(tx);
      for (const row of rows) {
        const user = row.ended_user as Row | null | undefined;
        delete row.ended_user;
        memo.set(String(row.handle), row);
        if (user) {
          if (!users) endedUsers.set(tx, (users = new Map()));
          users.set(String(user.id), user);
        }
      }
    }
    return rows;
  }

  async function finishEnd(tx: SqlDriver, rows: Row[], end: SessionEnd): Promise<RevocationEvent[]> {
    const handles = rows.map((r) => String(r.handle));
    if (tx.dialect === 'sqlite') for (const part of chunks(handles)) await tx.run(`DELETE FROM logout_tokens WHERE handle IN (${placeholders(part.length)})`, part);
    return appendLog(tx, rows.map((r) => ({ sid: String(r.handle), sub: String(r.user_id), reason: end.reason, actor: end.actor, at: end.at, app: null })));
  }

  /** A write nobody waits for: SqlDriver.defer where the driver has it, else run at once. */
  async function deferredWrite(sql: string, params: unknown[]): Promise<void> {
    if (db.defer) await db.defer(sql, params);
    else await db.run(sql, params);
  }

  /** Writes a session's app list (and forgets what markEnded remembered of it). */
  async function writeApps(tx: SqlDriver, handle: string, apps: SessionApp[]): Promise<void> {
    endedRows.get(tx)?.delete(handle);
    await tx.run('UPDATE sessions SET apps = ? WHERE handle = ?', [JSON.stringify(apps), handle]);
  }

  /** Deliveries from rows, each with the session handles it covers. */
  async function attachHandles(rows: Row[]): Promise<Delivery[]> {
    if (rows.length === 0) return [];
    const byId = new Map<number, string[]>();
    for (const part of chunks(rows.map((r) => num(r.id)))) {
      const links = await db.all<{ handle: string; delivery_id: unknown }>(`SELECT handle, delivery_id FROM delivery_sessions WHERE delivery_id IN (${placeholders(part.length)}) ORDER BY handle`, part);
      for (const l of links) byId.set(num(l.delivery_id), [...(byId.get(num(l.delivery_id)) ?? []), l.handle]);
    }
    return rows.map((r) => toDelivery(r, byId.get(num(r.id)) ?? []));
  }

  /** flushRevocationLog; with `commit`, the store's transaction commits with the log's statement. */
  async function flushDeferred(commit: boolean): Promise<RevocationEvent[]> {
    const pending = deferredLogs.get(db);
    deferredLogs.delete(db);
    if (!pending) return [];
    // The same event objects the ends returned get their cursors.
    const written = await writeLog(db, pending, commit);
    pending.forEach((event, i) => {
      event.cursor = written[i]!.cursor;
    });
    return pending;
  }

  const ops: StoreOperations = {
    deferRevocationLog() {
      // Outside a transaction each statement commits by itself: there is nothing to defer to.
      if (!inTransaction) throw new Error('deferRevocationLog() needs a transaction');
      if (!deferredLogs.has(db)) deferredLogs.set(db, []);
    },

    flushRevocationLog: () => flushDeferred(false),

    async createUser(user) {
      try {
        await db.run(
          `INSERT INTO users (id, username, username_lower, email, email_lower, email_verified, first_name, last_name, picture, disabled, password_hash, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [user.id, user.username, user.username.toLowerCase(), user.email, user.email?.toLowerCase() ?? null, user.emailVerified ? 1 : 0, user.firstName, user.lastName, user.picture, user.disabled ? 1 : 0, user.passwordHash, user.createdAt, user.updatedAt],
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw new TesseraError('USER_CONFLICT');
        throw error;
      }
      return { ...user };
    },

    async findUserById(id) {
      const row = endedUsers.get(db)?.get(id) ?? (await db.get('SELECT * FROM users WHERE id = ?', [id]));
      return row ? toUser(row) : null;
    },

    async findUserByLogin(login) {
      const lower = login.toLowerCase();
      const row = await db.get('SELECT * FROM users WHERE username_lower = ? OR email_lower = ? ORDER BY CASE WHEN username_lower = ? THEN 0 ELSE 1 END LIMIT 1', [lower, lower, lower]);
      return row ? toUser(row) : null;
    },

    async searchUsers(query, limit) {
      const q = query.toLowerCase();
      if (q === '') return (await db.all('SELECT * FROM users ORDER BY username_lower LIMIT ?', [limit])).map(toUser);
      // instr/strpos: a plain substring test (LIKE would read % and _ in the query as wildcards,
      // and SQLite's LIKE folds case differently from PostgreSQL's).
      const contains = db.dialect === 'postgres' ? (column: string) => `strpos(${column}, ?) > 0` : (column: string) => `instr(${column}, ?) > 0`;
      const rows = await db.all(`SELECT * FROM users WHERE ${contains('username_lower')} OR ${contains('COALESCE(email_lower, \'\')')} ORDER BY username_lower LIMIT ?`, [q, q, limit]);
      return rows.map(toUser);
    },

    async updateUser(id, patch) {
      const sets = ['updated_at = ?'];
      const params: unknown[] = [patch.updatedAt];
      for (const [key, column] of Object.entries(USER_COLUMNS) as [keyof typeof USER_COLUMNS, string][]) {
        const value = patch[key];
        if (value === undefined) continue;
        sets.push(`${column} = ?`);
        params.push(key === 'disabled' || key === 'emailVerified' ? (value ? 1 : 0) : value);
        if (key === 'username' || key === 'email') {
          sets.push(`${column}_lower = ?`);
          params.push(typeof value === 'string' ? value.toLowerCase() : null);
        }
      }
      endedUsers.delete(db);
      try {
        const changed = await db.run(`UPDATE users SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
        if (changed === 0) return null;
      } catch (error) {
        if (isUniqueViolation(error)) throw new TesseraError('USER_CONFLICT');
        throw error;
      }
      return ops.findUserById(id);
    },

    async deleteUser(id) {
      // A consent belongs to the person: it goes with the account (a new account with the
      // same id must be asked again).
      endedUsers.delete(db);
      await db.run('DELETE FROM consents WHERE user_id = ?', [id]);
      return (await db.run('DELETE FROM users WHERE id = ?', [id])) > 0;
    },

    async createApp(app) {
      try {
        await db.run(
          `INSERT INTO apps (client_id, name, trusted, allowed_origins, return_urls, backchannel_logout_uri, connectors, secret_hash, created_at, updated_at, ${oidcColumns(app.oidc).map(([c]) => c).join(', ')})
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [app.clientId, app.name, app.trusted ? 1 : 0, JSON.stringify(app.allowedOrigins), JSON.stringify(app.returnUrls), app.backchannelLogoutUri, JSON.stringify(app.connectors), app.secretHash, app.createdAt, app.updatedAt, ...oidcColumns(app.oidc).map(([, v]) => v)],
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw new TesseraError('APP_CONFLICT');
        throw error;
      }
      return { ...app };
    },

    async findApp(clientId) {
      const row = await db.get('SELECT * FROM apps WHERE client_id = ?', [clientId]);
      return row ? toApp(row) : null;
    },

    async readRevocationContext(options) {
      if (db.dialect === 'postgres') {
        // One statement: each table's rows as a JSON array of objects named by column, as the
        // row mappers read them (BIGINTs as numbers, TEXT as strings). In a transaction it is
        // pipelined: sent with the transaction's next statement (the revocation's own UPDATE),
        // not in a round trip of its own.
        const read = <T>(sql: string) => (db.pipeline ? db.pipeline<T>(sql) : db.all<T>(sql));
        const [row] = await read<{ apps: Row[]; streams: Row[] | null; subjects: Row[] | null }>(
          `SELECT (SELECT COALESCE(json_agg(a ORDER BY a.created_at, a.client_id), '[]'::json) FROM apps a) AS apps${options.ssf ? `,
                  (SELECT COALESCE(json_agg(s ORDER BY s.created_at, s.id), '[]'::json) FROM ssf_streams s WHERE s.status <> 'disabled') AS streams,
                  (SELECT COALESCE(json_agg(j ORDER BY j.stream_id, j.subject_key), '[]'::json) FROM ssf_stream_subjects j
                    WHERE j.stream_id IN (SELECT id FROM ssf_streams WHERE status <> 'disabled')) AS subjects` : ''}`,
        );
        return { apps: row!.apps.map(toApp), streams: (row!.streams ?? []).map(toStream), subjects: (row!.subjects ?? []).map(toSubject) };
      }
      // SQLite runs each statement when it is called: the three are issued before anything
      // else of the transaction (a caller may start its own work without waiting for these),
      // so the subject rules are read by the streams' status, not by their ids.
      const [apps, streams, subjects] = await Promise.all([
        ops.listApps(),
        options.ssf ? ops.listSsfStreams() : [],
        options.ssf
          ? db.all("SELECT * FROM ssf_stream_subjects WHERE stream_id IN (SELECT id FROM ssf_streams WHERE status <> 'disabled') ORDER BY stream_id, subject_key")
          : [],
      ]);
      return { apps, streams: streams.filter((s) => s.status !== 'disabled'), subjects: subjects.map(toSubject) };
    },

    async listApps() {
      return (await db.all('SELECT * FROM apps ORDER BY created_at, client_id')).map(toApp);
    },

    async updateApp(clientId, patch) {
      const sets = ['updated_at = ?'];
      const params: unknown[] = [patch.updatedAt];
      for (const [key, [column, encode]] of Object.entries(APP_COLUMNS) as [keyof typeof APP_COLUMNS, [string, (v: unknown) => unknown]][]) {
        if (patch[key] === undefined) continue;
        if (key === 'oidc') {
          for (const [c, v] of oidcColumns(patch.oidc!)) {
            sets.push(`${c} = ?`);
            params.push(v);
          }
          continue;
        }
        sets.push(`${column} = ?`);
        params.push(encode(patch[key]));
      }
      const changed = await db.run(`UPDATE apps SET ${sets.join(', ')} WHERE client_id = ?`, [...params, clientId]);
      if (changed > 0) await notifyCredentialChange(db, clientId);
      return changed === 0 ? null : ops.findApp(clientId);
    },

    async deleteApp(clientId) {
      // Consents given to a deleted app must not carry over to a new app registered later
      // with the same client id.
      await db.run('DELETE FROM consents WHERE client_id = ?', [clientId]);
      const deleted = (await db.run('DELETE FROM apps WHERE client_id = ?', [clientId])) > 0;
      if (deleted) await notifyCredentialChange(db, clientId);
      return deleted;
    },

    async createSession(s) {
      const idleExpiresAt = Math.min(s.createdAt + s.idleTimeoutMs, s.expiresAt);
      await db.run(
        `INSERT INTO sessions (token_id, handle, user_id, secret_hash, ip, user_agent, created_at, last_seen_at, idle_timeout_ms, expires_at, idle_expires_at, apps)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [s.tokenId, s.handle, s.userId, s.secretHash, s.ip, s.userAgent, s.createdAt, s.createdAt, s.idleTimeoutMs, s.expiresAt, idleExpiresAt, JSON.stringify(s.apps)],
      );
      return { ...s, lastSeenAt: s.createdAt, idleExpiresAt, apps: [...s.apps], endedAt: null, endedBy: null, endReason: null };
    },

    async findSessionByTokenId(tokenId) {
      const row = await db.get('SELECT * FROM sessions WHERE token_id = ?', [tokenId]);
      return row ? toSession(row) : null;
    },

    async findSessionByHandle(handle) {
      const row = await db.get('SELECT * FROM sessions WHERE handle = ?', [handle]);
      return row ? toSession(row) : null;
    },

    async listSessionsByUser(userId, options = {}) {
      const sql = options.includeEnded
        ? 'SELECT * FROM sessions WHERE user_id = ? ORDER BY created_at DESC, handle'
        : 'SELECT * FROM sessions WHERE user_id = ? AND ended_at IS NULL ORDER BY created_at DESC, handle';
      return (await db.all(sql, [userId])).map(toSession);
    },

    async operationalCounts() {
      const dead = num((await db.get<{ n: unknown }>("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'dead'"))?.n ?? 0);
      if (db.dialect === 'postgres') {
        // Counting 100M sessions on every scrape would take seconds; the partial indexes'
        // row estimates (kept by autovacuum's ANALYZE) are what a dashboard needs.
        const rows = await db.all<{ relname: string; n: unknown }>(
          "SELECT c.relname, c.reltuples AS n FROM pg_class c WHERE c.relname IN ('sessions_by_deadline', 'deliveries_due') AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
        );
        const estimate = (name: string) => Math.max(0, Math.round(num(rows.find((r) => r.relname === name)?.n ?? 0)));
        return { activeSessions: estimate('sessions_by_deadline'), pendingDeliveries: estimate('deliveries_due'), deadDeliveries: dead, estimated: true };
      }
      const active = num((await db.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL'))?.n ?? 0);
      const pending = num((await db.get<{ n: unknown }>("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'pending'"))?.n ?? 0);
      return { activeSessions: active, pendingDeliveries: pending, deadDeliveries: dead, estimated: false };
    },

    async touchSession(tokenId, lastSeenAt, idleExpiresAt) {
      // Never moves time backwards (two nodes touching at once) and never revives an ended
      // session. The idle deadline is capped at the absolute end here too: the sweeper looks
      // at idle_expires_at alone, so an uncapped value would let a session outlive expires_at.
      await db.run(
        'UPDATE sessions SET last_seen_at = ?, idle_expires_at = CASE WHEN ? < expires_at THEN ? ELSE expires_at END WHERE token_id = ? AND ended_at IS NULL AND last_seen_at < ?',
        [lastSeenAt, idleExpiresAt, idleExpiresAt, tokenId, lastSeenAt],
      );
    },

    joinSession(handle, clientId, at) {
      return db.transaction((tx) => addMember(tx, handle, clientId, at));
    },

    endSessions(handles, end) {
      if (handles.length === 0) return Promise.resolve([]);
      return db.transaction(async (tx) => {
        const rows: Row[] = [];
        for (const part of chunks([...new Set(handles)])) rows.push(...(await markEnded(tx, `handle IN (${placeholders(part.length)})`, part, end)));
        return finishEnd(tx, rows, end);
      });
    },

    endUserSessions(userId, selector, end) {
      return db.transaction(async (tx) => {
        const rows = selector.exceptHandle
          ? await markEnded(tx, 'user_id = ? AND handle <> ?', [userId, selector.exceptHandle], end)
          : await markEnded(tx, 'user_id = ?', [userId], end);
        return finishEnd(tx, rows, end);
      });
    },

    leaveSessions(handles, clientId, end) {
      if (handles.length === 0) return Promise.resolve([]);
      return db.transaction(async (tx) => {
        const left: Omit<RevocationEvent, 'cursor'>[] = [];
        for (const part of chunks([...new Set(handles)])) {
          const rows = await tx.all<{ handle: string; user_id: string; apps: string }>(
            `SELECT handle, user_id, apps FROM sessions WHERE ended_at IS NULL AND handle IN (${placeholders(part.length)})${forUpdate}`,
            part,
          );
          for (const row of rows) {
            const apps = JSON.parse(row.apps) as SessionApp[];
            const member = apps.find((a) => a.clientId === clientId && a.leftAt === null);
            if (!member) continue;
            member.leftAt = end.at;
            await writeApps(tx, String(row.handle), apps);
            left.push({ sid: row.handle, sub: row.user_id, reason: end.reason, actor: end.actor, at: end.at, app: clientId });
          }
        }
        return appendLog(tx, left);
      });
    },

    endExpiredSessions(now, limit) {
      if (limit <= 0) return Promise.resolve([]);
      const end: SessionEnd = { at: now, reason: 'expired', actor: 'system' };
      return db.transaction(async (tx) => {
        const due = await tx.all<{ handle: string }>('SELECT handle FROM sessions WHERE ended_at IS NULL AND idle_expires_at <= ? ORDER BY idle_expires_at LIMIT ?', [now, limit]);
        // The UPDATE checks the deadline again on each row it changes: a session touched
        // since the SELECT (by another request or node) is no longer due and must not be
        // ended as expired.
        const rows: Row[] = [];
        for (const part of chunks(due.map((r) => r.handle))) {
          rows.push(...(await markEnded(tx, `idle_expires_at <= ? AND handle IN (${placeholders(part.length)})`, [now, ...part], end)));
        }
        return finishEnd(tx, rows, end);
      });
    },

    async revocationHead() {
      const row = await db.get<{ value: unknown }>('SELECT value FROM revocation_counter WHERE id = 1');
      return num(row?.value ?? 0);
    },

    async firstRevocationSince(at) {
      // Through revocations_by_time: only the entries written since `at` are read. `cursor + 0`
      // keeps both planners from answering MIN(cursor) by walking the primary key from the
      // oldest entry, which reads every old entry before the first recent one.
      const row = await db.get<{ c: unknown }>('SELECT MIN(cursor + 0) AS c FROM revocations WHERE at >= ?', [at]);
      return row?.c === null || row?.c === undefined ? null : num(row.c);
    },

    async listRevocations(after, limit) {
      return (await db.all('SELECT * FROM revocations WHERE cursor > ? ORDER BY cursor LIMIT ?', [after, limit])).map(toEvent);
    },

    async findRevocations(filter) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.before !== undefined) { where.push('r.cursor < ?'); params.push(filter.before); }
      if (filter.userId !== undefined) { where.push('r.sub = ?'); params.push(filter.userId); }
      if (filter.reason !== undefined) { where.push('r.reason = ?'); params.push(filter.reason); }
      if (filter.clientId !== undefined) {
        // The app's own part, or a whole-session end of a session it had joined. The joined
        // apps are JSON text ([{"clientId":…}]); the exact quoted id is looked for as a substring.
        const needle = JSON.stringify({ clientId: filter.clientId }).slice(1, -1);
        const contains = db.dialect === 'postgres' ? 'strpos(s.apps, ?) > 0' : 'instr(s.apps, ?) > 0';
        where.push(`(r.app = ? OR (r.app IS NULL AND EXISTS (SELECT 1 FROM sessions s WHERE s.handle = r.sid AND ${contains})))`);
        params.push(filter.clientId, needle);
      }
      const rows = await db.all(`SELECT r.* FROM revocations r${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY r.cursor DESC LIMIT ?`, [...params, filter.limit]);
      return rows.map(toEvent);
    },

    async countRevocationsSince(at) {
      // Through revocations_by_time: only the recent entries are read.
      const rows = await db.all<{ reason: string; n: unknown }>('SELECT reason, COUNT(*) AS n FROM revocations WHERE at >= ? GROUP BY reason', [at]);
      return Object.fromEntries(rows.map((r) => [String(r.reason), num(r.n)]));
    },

    async createLogoutToken(tokenHash, handle, expiresAt) {
      await db.run('INSERT INTO logout_tokens (token_hash, handle, expires_at) VALUES (?, ?, ?)', [tokenHash, handle, expiresAt]);
    },

    async consumeLogoutToken(tokenHash, now) {
      // DELETE … RETURNING makes the token single-use even under concurrent requests.
      const row = await db.get<{ handle: string; expires_at: unknown }>('DELETE FROM logout_tokens WHERE token_hash = ? RETURNING handle, expires_at', [tokenHash]);
      if (!row || num(row.expires_at) <= now) return null;
      return row.handle;
    },

    async purgeLogoutTokens(now) {
      return db.run('DELETE FROM logout_tokens WHERE expires_at <= ?', [now]);
    },

    async createAdminToken(token: AdminTokenRecord) {
      await db.run('INSERT INTO admin_tokens (id, secret_hash, label, created_at) VALUES (?, ?, ?, ?)', [token.id, token.secretHash, token.label, token.createdAt]);
    },

    async findAdminToken(id) {
      const row = await db.get('SELECT * FROM admin_tokens WHERE id = ?', [id]);
      return row ? { id: String(row.id), secretHash: String(row.secret_hash), label: String(row.label), createdAt: num(row.created_at) } : null;
    },

    async countAdminTokens() {
      const row = await db.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM admin_tokens');
      return num(row?.n ?? 0);
    },

    async createConsoleSession(session) {
      await db.run('INSERT INTO console_sessions (id, secret_hash, created_at, expires_at, ended_at) VALUES (?, ?, ?, ?, ?)', [session.id, session.secretHash, session.createdAt, session.expiresAt, session.endedAt]);
    },

    async findConsoleSession(id) {
      const r = await db.get('SELECT * FROM console_sessions WHERE id = ?', [id]);
      return r ? { id: String(r.id), secretHash: String(r.secret_hash), createdAt: num(r.created_at), expiresAt: num(r.expires_at), endedAt: numOrNull(r.ended_at) } : null;
    },

    async endConsoleSession(id, at) {
      return (await db.run('UPDATE console_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL', [at, id])) > 0;
    },

    async purgeConsoleSessions(before) {
      return db.run('DELETE FROM console_sessions WHERE expires_at < ? OR ended_at < ?', [before, before]);
    },

    async insertSigningKey(key: SigningKeyRecord) {
      // ON CONFLICT DO NOTHING: nodes racing to create the key of a rotation period agree
      // on whichever insert won, because the kid is derived from the period.
      const changed = await db.run(
        `INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk, activates_at, retires_at, expires_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING`,
        [key.kid, key.alg, JSON.stringify(key.publicJwk), JSON.stringify(key.privateJwk), key.activatesAt, key.retiresAt, key.expiresAt, key.createdAt],
      );
      return changed > 0;
    },

    async listSigningKeys(now) {
      const rows = await db.all('SELECT * FROM signing_keys WHERE expires_at > ? ORDER BY activates_at, kid', [now]);
      return rows.map((r) => ({
        kid: String(r.kid),
        alg: String(r.alg) as SigningKeyRecord['alg'],
        publicJwk: JSON.parse(String(r.public_jwk)) as Record<string, unknown>,
        privateJwk: JSON.parse(String(r.private_jwk)) as Record<string, unknown>,
        activatesAt: num(r.activates_at),
        retiresAt: num(r.retires_at),
        expiresAt: num(r.expires_at),
        createdAt: num(r.created_at),
      }));
    },

    async deleteExpiredSigningKeys(now) {
      return db.run('DELETE FROM signing_keys WHERE expires_at <= ?', [now]);
    },

    async createRefreshToken(t: RefreshTokenRecord) {
      await insertRefreshToken(db, t);
    },

    async findRefreshToken(id) {
      const r = await db.get('SELECT * FROM refresh_tokens WHERE id = ?', [id]);
      return r
        ? { id: String(r.id), secretHash: String(r.secret_hash), handle: String(r.handle), clientId: String(r.client_id), createdAt: num(r.created_at), expiresAt: num(r.expires_at), usedAt: numOrNull(r.used_at), scope: strOrNull(r.scope) }
        : null;
    },

    rotateRefreshToken(id, at, next) {
      // One transaction, so a spent token never lacks its successor, and one write to the
      // database (SQLite: one WAL commit) where the spend and the insert were two. The
      // conditional UPDATE is the single-use guarantee: of two concurrent refreshes with the
      // same token, exactly one changes the row; the other inserts nothing.
      return db.transaction(async (tx) => {
        if ((await tx.run('UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL', [at, id])) === 0) return false;
        await insertRefreshToken(tx, next);
        return true;
      });
    },

    async purgeRefreshTokens(now) {
      return db.run('DELETE FROM refresh_tokens WHERE expires_at <= ?', [now]);
    },

    async createAuthorizationCode(c) {
      await db.run(
        `INSERT INTO authorization_codes (id, secret_hash, client_id, handle, user_id, redirect_uri, code_challenge, nonce, scope, auth_time, created_at, expires_at, used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [c.id, c.secretHash, c.clientId, c.handle, c.userId, c.redirectUri, c.codeChallenge, c.nonce, c.scope, c.authTime, c.createdAt, c.expiresAt, c.usedAt],
      );
    },

    async findAuthorizationCode(id) {
      const r = await db.get('SELECT * FROM authorization_codes WHERE id = ?', [id]);
      return r ? toCode(r) : null;
    },

    redeemAuthorizationCode(id, at) {
      return db.transaction(async (tx) => {
        // The conditional UPDATE lets exactly one of two concurrent redemptions through; the
        // other waits for this transaction (PostgreSQL's row lock, SQLite's write lock) and
        // then changes nothing: a replay, which finds the join below already committed.
        const code = await tx.get<{ client_id: string; handle: string }>('UPDATE authorization_codes SET used_at = ? WHERE id = ? AND used_at IS NULL RETURNING client_id, handle', [at, id]);
        if (!code) return false;
        await addMember(tx, String(code.handle), String(code.client_id), at);
        return true;
      });
    },

    async purgeAuthorizationCodes(now) {
      return db.run('DELETE FROM authorization_codes WHERE expires_at <= ?', [now]);
    },

    async saveConsent(c) {
      await db.run(
        `INSERT INTO consents (user_id, client_id, scope, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at`,
        [c.userId, c.clientId, c.scope, c.createdAt],
      );
    },

    async findConsent(userId, clientId) {
      const r = await db.get('SELECT * FROM consents WHERE user_id = ? AND client_id = ?', [userId, clientId]);
      return r ? toConsent(r) : null;
    },

    async listConsents(userId) {
      return (await db.all('SELECT * FROM consents WHERE user_id = ? ORDER BY created_at DESC, client_id', [userId])).map(toConsent);
    },

    async deleteConsent(userId, clientId) {
      return (await db.run('DELETE FROM consents WHERE user_id = ? AND client_id = ?', [userId, clientId])) > 0;
    },

    async findSessionsByHandles(handles) {
      const unique = [...new Set(handles)];
      const memo = endedRows.get(db);
      if (memo && unique.every((h) => memo.has(h))) return unique.map((h) => toSession(memo.get(h)!));
      const found: SessionRecord[] = [];
      for (const part of chunks(unique)) {
        found.push(...(await db.all(`SELECT * FROM sessions WHERE handle IN (${placeholders(part.length)})`, part)).map(toSession));
      }
      return found;
    },

    enqueueDeliveries(deliveries) {
      if (deliveries.length === 0) return Promise.resolve();
      return db.transaction(async (tx) => {
        for (const part of chunks(deliveries)) {
          const rows = await tx.all<{ id: unknown; cursor: unknown; client_id: string; channel: string }>(
            `INSERT INTO deliveries (cursor, sub, sid, client_id, channel, reason, status, attempts, next_attempt_at, created_at, horizon_at)
             VALUES ${part.map(() => "(?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)").join(', ')} RETURNING id, cursor, client_id, channel`,
            part.flatMap((d) => [d.cursor, d.sub, d.sid, d.clientId, d.channel, d.reason, d.createdAt, d.createdAt, d.horizonAt]),
          );
          // RETURNING promises no row order, so rows are matched back by (cursor, app, channel),
          // which is unique within one plan.
          const key = (cursor: unknown, clientId: string, channel: string) => `${num(cursor)}|${clientId}|${channel}`;
          const ids = new Map(rows.map((r) => [key(r.cursor, r.client_id, r.channel), num(r.id)]));
          const links = part.flatMap((d) => d.handles.map((handle) => [handle, ids.get(key(d.cursor, d.clientId, d.channel))!] as const));
          for (const linkPart of chunks(links)) {
            await tx.run(`INSERT INTO delivery_sessions (handle, delivery_id) VALUES ${linkPart.map(() => '(?, ?)').join(', ')}`, linkPart.flat());
          }
        }
      });
    },

    async claimDeliveries(owner, now, leaseUntil, limit, excludeClients = []) {
      const exclude = excludeClients.length > 0 ? ` AND client_id NOT IN (${placeholders(excludeClients.length)})` : '';
      // SKIP LOCKED: several nodes claim at once without waiting on each other's rows;
      // SQLite serialises writers, so it needs no such clause.
      const skip = db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
      // Without table statistics SQLite prefers the (status, id) index and sorts every
      // pending row by next_attempt_at on each claim (a temp B-tree over the whole backlog,
      // claim after claim); the partial index of due deliveries gives them already in order.
      const index = db.dialect === 'sqlite' ? ' INDEXED BY deliveries_due' : '';
      const rows = await db.all(
        `UPDATE deliveries SET lease_owner = ?, lease_expires_at = ?
         WHERE id IN (SELECT id FROM deliveries${index} WHERE status = 'pending' AND next_attempt_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)${exclude}
                      ORDER BY next_attempt_at LIMIT ?${skip})
         RETURNING *`,
        [owner, leaseUntil, now, now, ...excludeClients, limit],
      );
      return attachHandles(rows);
    },

    async completeDelivery(id, owner, outcome) {
      // `status NOT IN ('delivered', 'dead')`, not `status = 'pending'`: the latter lets
      // PostgreSQL use the partial index of pending deliveries, and with statistics from a
      // quiet moment (few pending) it does, walking every pending row of a burst to find this
      // one id, once per completion.
      const changed = outcome.status === 'delivered'
        ? await db.run(
          `UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_attempt_at = ?, delivered_at = ?, last_status = ?, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL
           WHERE id = ? AND lease_owner = ? AND status NOT IN ('delivered', 'dead')`,
          [outcome.at, outcome.at, outcome.httpStatus, id, owner],
        )
        : await db.run(
          `UPDATE deliveries SET status = ?, attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?, last_status = ?, last_error = ?, lease_owner = NULL, lease_expires_at = NULL
           WHERE id = ? AND lease_owner = ? AND status NOT IN ('delivered', 'dead')`,
          [outcome.status, outcome.at, outcome.nextAttemptAt, outcome.httpStatus, outcome.error.slice(0, 500), id, owner],
        );
      return changed > 0;
    },

    async releaseDeliveries(owner) {
      return db.run("UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ? AND status = 'pending'", [owner]);
    },

    async listDeliveriesBySession(handle) {
      return attachHandles(await db.all('SELECT d.* FROM deliveries d JOIN delivery_sessions s ON s.delivery_id = d.id WHERE s.handle = ? ORDER BY d.id', [handle]));
    },

    async listDeliveries(filter) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.status) {
        where.push('status = ?');
        params.push(filter.status);
      }
      if (filter.clientId) {
        where.push('client_id = ?');
        params.push(filter.clientId);
      }
      const sql = `SELECT * FROM deliveries${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
      return attachHandles(await db.all(sql, [...params, filter.limit]));
    },

    async findDelivery(id) {
      const [found] = await attachHandles(await db.all('SELECT * FROM deliveries WHERE id = ?', [id]));
      return found ?? null;
    },

    async retryDelivery(id, now, horizonAt) {
      const changed = await db.run(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, horizon_at = ?, lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND status <> 'delivered'",
        [now, horizonAt, id],
      );
      return changed > 0 ? ops.findDelivery(id) : null;
    },

    async countDeliveries() {
      // One index range count per status (deliveries_by_status), not a scan of the history;
      // in one statement, so that the three are of one moment (separate statements let a
      // delivery finishing in between be counted both pending and delivered).
      const row = await db.get<Record<DeliveryStatus, unknown>>(
        `SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'pending') AS pending,
                (SELECT COUNT(*) FROM deliveries WHERE status = 'delivered') AS delivered,
                (SELECT COUNT(*) FROM deliveries WHERE status = 'dead') AS dead`,
      );
      return { pending: num(row?.pending ?? 0), delivered: num(row?.delivered ?? 0), dead: num(row?.dead ?? 0) };
    },

    async createSsfStream(st) {
      await db.run(
        `INSERT INTO ssf_streams (id, client_id, audience, events_requested, events_delivered, delivery_method, endpoint_url, authorization_header, description, status, status_reason, subject_format, min_verification_interval, last_verification_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [st.id, st.clientId, JSON.stringify(st.audience), JSON.stringify(st.eventsRequested), JSON.stringify(st.eventsDelivered), st.deliveryMethod, st.endpointUrl, st.authorizationHeader, st.description, st.status, st.statusReason, st.subjectFormat, st.minVerificationInterval, st.lastVerificationAt, st.createdAt, st.updatedAt],
      );
      return { ...st };
    },

    async findSsfStream(id) {
      const r = await db.get('SELECT * FROM ssf_streams WHERE id = ?', [id]);
      return r ? toStream(r) : null;
    },

    async listSsfStreams(filter = {}) {
      if (filter.ids !== undefined) {
        const rows: Row[] = [];
        for (const part of chunks([...filter.ids])) rows.push(...(await db.all(`SELECT * FROM ssf_streams WHERE id IN (${placeholders(part.length)})`, part)));
        return rows.map(toStream).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      }
      const rows = filter.clientId !== undefined
        ? await db.all('SELECT * FROM ssf_streams WHERE client_id = ? ORDER BY created_at, id', [filter.clientId])
        : await db.all('SELECT * FROM ssf_streams ORDER BY created_at, id');
      return rows.map(toStream);
    },

    async updateSsfStream(id, patch) {
      const sets = ['updated_at = ?'];
      const params: unknown[] = [patch.updatedAt];
      for (const [key, [column, encode]] of Object.entries(STREAM_COLUMNS) as [keyof typeof STREAM_COLUMNS, [string, (v: unknown) => unknown]][]) {
        if (patch[key] === undefined) continue;
        sets.push(`${column} = ?`);
        params.push(encode(patch[key]));
      }
      const changed = await db.run(`UPDATE ssf_streams SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
      if (changed === 0) return null;
      // Held or not follows the stream's status and delivery method (heldSql). A SET inserted
      // by a transaction still open now keeps what it saw; releaseHeldSsfEvents mends the case
      // that matters (held under a stream that takes pushes again).
      if (patch.status !== undefined || patch.deliveryMethod !== undefined) {
        await db.run(`UPDATE ssf_events SET held = ${heldSql()} WHERE stream_id = ? AND status = 'pending'`, [id]);
      }
      return ops.findSsfStream(id);
    },

    deleteSsfStream(id) {
      return db.transaction(async (tx) => {
        await tx.run('DELETE FROM ssf_events WHERE stream_id = ?', [id]);
        await tx.run('DELETE FROM ssf_stream_subjects WHERE stream_id = ?', [id]);
        return (await tx.run('DELETE FROM ssf_streams WHERE id = ?', [id])) > 0;
      });
    },

    async saveSsfSubject(sub) {
      await db.run(
        `INSERT INTO ssf_stream_subjects (stream_id, subject_key, included, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (stream_id, subject_key) DO UPDATE SET included = excluded.included, created_at = excluded.created_at`,
        [sub.streamId, sub.key, sub.included ? 1 : 0, sub.createdAt],
      );
    },

    async listSsfSubjects(streamIds) {
      const found: SsfStreamSubject[] = [];
      for (const part of chunks([...new Set(streamIds)])) {
        const rows = await db.all(`SELECT * FROM ssf_stream_subjects WHERE stream_id IN (${placeholders(part.length)}) ORDER BY stream_id, subject_key`, part);
        found.push(...rows.map(toSubject));
      }
      return found;
    },

    async enqueueSsfEvents(events) {
      if (events.length === 0) return;
      // Delivered on commit only: every node's push worker and waiting long polls wake then.
      // A revoking transaction sends the revocation NOTIFY (or has sent it), which wakes them
      // as well (one statement less per revocation).
      if (db.dialect === 'postgres' && !notifiedRevocation.has(db) && !(deferredLogs.get(db)?.length)) await db.get('SELECT pg_notify(?, ?)', [SSF_CHANNEL, '']);
      for (const part of chunks(events)) {
        // Nobody reads them back in the transaction that plans them.
        await deferredWrite(
          `INSERT INTO ssf_events (stream_id, jti, subject_key, event_type, claims, status, attempts, next_attempt_at, created_at, horizon_at, held)
           VALUES ${part.map(() => `(?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ${INSERT_HELD})`).join(', ')}`,
          part.flatMap((e) => [e.streamId, e.jti, e.subjectKey, e.eventType, JSON.stringify(e.claims), e.createdAt, e.createdAt, e.horizonAt, e.subjectKey, e.streamId]),
        );
      }
    },

    async claimSsfPushEvents(owner, now, leaseUntil, limit) {
      // SKIP LOCKED: nodes claim at once without waiting on each other's rows. The NOT EXISTS
      // keeps per-subject order across nodes: while an older event of the same subject is
      // pending (leased elsewhere, or waiting for its retry) the younger one stays put.
      const skip = db.dialect === 'postgres' ? ' FOR UPDATE OF e SKIP LOCKED' : '';
      // Due rows in next_attempt_at order straight from the partial index of pending rows, so a
      // claim stops after `limit` rows instead of sorting the whole backlog (ordering by id
      // would); per-subject order is kept by the NOT EXISTS, not by the ORDER BY. Held SETs
      // (heldSql: a poll stream's, a paused stream's) are not in that index at all, so no
      // backlog of theirs is walked; the join still checks each stream as it is now.
      const index = db.dialect === 'sqlite' ? ' INDEXED BY ssf_events_due' : '';
      const sql = `UPDATE ssf_events SET lease_owner = ?, lease_expires_at = ?
         WHERE id IN (SELECT e.id FROM ssf_events e${index} JOIN ssf_streams s ON s.id = e.stream_id
                      WHERE e.status = 'pending' AND e.held = 0 AND e.next_attempt_at <= ? AND e.horizon_at > ? AND (e.lease_expires_at IS NULL OR e.lease_expires_at <= ?)
                        AND (s.status = 'enabled' OR (s.status = 'paused' AND e.subject_key LIKE 'stream:%')) AND s.delivery_method = 'push'
                        AND NOT EXISTS (SELECT 1 FROM ssf_events p WHERE p.stream_id = e.stream_id AND p.subject_key = e.subject_key AND p.status = 'pending' AND p.id < e.id)
                      ORDER BY e.next_attempt_at LIMIT ?${skip})
         RETURNING *`;
      const params = [owner, leaseUntil, now, now, now, limit];
      // PostgreSQL: no bitmap scans in the claim. A SET leaves the partial indexes of pending
      // rows when it is delivered, but its old index entry stays until VACUUM (a minute or
      // more away at 1,000 SETs a second). A plain index scan that meets such an entry marks
      // it dead, and later scans skip it; a bitmap scan never does, and visits every one
      // again. As the table grows the planner came to pick a bitmap scan per stream (no
      // autoanalyze had run yet), and then each claim read every SET delivered since the last
      // vacuum: 0.5 ms at first, 16-50 ms 30-50 s later at 100 revocations a second with 10
      // streams. The settings hold for the claim alone (ssfDeliveryStatement).
      //
      // And no sorts, hash joins, merge joins or materialised scans: the claim must read due
      // SETs in order from ssf_events_due and stop after `limit`, whatever the backlog. With
      // statistics taken while few SETs were pending (autoanalyze at a quiet moment) every plan
      // looks cheap, and PostgreSQL picked ones that read and sorted the whole backlog on each
      // claim; under a backlog the push then fell below the revocation rate and never caught
      // up (535 ms per claim at 70,000 pending; bench/ssf-claim-plan.mjs, benchmarks.md §9).
      // With these off, the plan walks ssf_events_due in order, looks up each stream, and
      // checks subject order through ssf_events_pending_by_subject (migration 11 takes away
      // the statistics that made a scan of a whole index look as cheap as that lookup).
      const rows = await ssfDeliveryStatement(sql, params, ['enable_bitmapscan = off', 'enable_sort = off', 'enable_hashjoin = off', 'enable_mergejoin = off', 'enable_material = off']);
      return rows.map(toSsfEvent).sort((a, b) => a.id - b.id);
    },

    async claimSsfPollEvents(streamId, owner, now, leaseUntil, limit, streamEventsOnly = false) {
      const skip = db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
      const only = streamEventsOnly ? " AND subject_key LIKE 'stream:%'" : '';
      // PostgreSQL: no bitmap scans and no sorts, so that the claim reads the stream's pending
      // SETs in id order from ssf_events_by_stream (stream_id, status, id) and stops after
      // `limit`. Otherwise, with statistics from a quiet moment, it read every pending SET of
      // the stream through ssf_events_pending_by_subject and sorted them, on every poll: 3,040
      // rows for a claim of 20 with 3,000 pending (postgres.test.ts). Why bitmap scans go: as
      // for the push claim.
      const rows = await ssfDeliveryStatement(
        `UPDATE ssf_events SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1, last_attempt_at = ?
         WHERE id IN (SELECT id FROM ssf_events WHERE stream_id = ? AND status = 'pending' AND horizon_at > ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)${only}
                      ORDER BY id LIMIT ?${skip})
         RETURNING *`,
        [owner, leaseUntil, now, streamId, now, now, limit],
        ['enable_bitmapscan = off', 'enable_sort = off'],
      );
      return rows.map(toSsfEvent).sort((a, b) => a.id - b.id);
    },

    async hasSsfPollEvents(streamId, now, streamEventsOnly = false) {
      const only = streamEventsOnly ? " AND subject_key LIKE 'stream:%'" : '';
      const row = await db.get(`SELECT 1 AS x FROM ssf_events WHERE stream_id = ? AND status = 'pending' AND horizon_at > ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)${only} LIMIT 1`, [streamId, now, now]);
      return row !== undefined;
    },

    async deliverSsfEvents(ids, owner, at, httpStatus) {
      // `status NOT IN ('delivered', 'dead')` here and below, where rows are found by id or jti,
      // not `status = 'pending'`: the latter lets PostgreSQL use a partial index of pending
      // rows, and (ssf_events.status has no statistics, migration 11) it did, walking every
      // pending SET and every dead entry to find a batch of ids (200-300 ms each, 647 times in
      // one five-minute run). The same as completeDelivery does for deliveries.
      const done: number[] = [];
      let successors = false;
      for (const part of chunks(ids)) {
        // The successor check rides on the same statement (the pending-by-subject index): the
        // worker then claims again only when a delivery let a waiting event go.
        const rows = await ssfDeliveryStatement<{ id: unknown; successor: unknown }>(
          `UPDATE ssf_events SET status = 'delivered', attempts = attempts + 1, last_attempt_at = ?, delivered_at = ?, last_status = ?, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL
           WHERE id IN (${placeholders(part.length)}) AND lease_owner = ? AND ${SSF_NOT_SETTLED}
           RETURNING id, EXISTS (SELECT 1 FROM ssf_events p WHERE p.stream_id = ssf_events.stream_id AND p.subject_key = ssf_events.subject_key AND p.status = 'pending' AND p.id > ssf_events.id) AS successor`,
          [at, at, httpStatus, ...part, owner],
        );
        for (const r of rows) {
          done.push(num(r.id));
          if (num(r.successor) === 1) successors = true;
        }
      }
      return { recorded: done.sort((a, b) => a - b), successors };
    },

    async completeSsfEvent(id, owner, outcome) {
      const changed = outcome.status === 'delivered'
        ? await ssfDeliveryStatement(
          `UPDATE ssf_events SET status = 'delivered', attempts = attempts + 1, last_attempt_at = ?, delivered_at = ?, last_status = ?, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL
           WHERE id = ? AND lease_owner = ? AND ${SSF_NOT_SETTLED} RETURNING id`,
          [outcome.at, outcome.at, outcome.httpStatus, id, owner],
        )
        : await ssfDeliveryStatement(
          `UPDATE ssf_events SET status = ?, attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?, last_status = ?, last_error = ?, lease_owner = NULL, lease_expires_at = NULL
           WHERE id = ? AND lease_owner = ? AND ${SSF_NOT_SETTLED} RETURNING id`,
          [outcome.status, outcome.at, outcome.nextAttemptAt, outcome.httpStatus, outcome.error.slice(0, 500), id, owner],
        );
      return changed.length > 0;
    },

    async settleSsfEvents(streamId, jtis, outcome) {
      const settled: string[] = [];
      for (const part of chunks([...new Set(jtis)])) {
        const rows = outcome.status === 'delivered'
          ? await db.all<{ jti: string }>(
            `UPDATE ssf_events SET status = 'delivered', delivered_at = ?, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL
             WHERE stream_id = ? AND ${SSF_NOT_SETTLED} AND jti IN (${placeholders(part.length)}) RETURNING jti`,
            [outcome.at, streamId, ...part],
          )
          : await db.all<{ jti: string }>(
            `UPDATE ssf_events SET status = ?, last_error = ?, last_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL
             WHERE stream_id = ? AND ${SSF_NOT_SETTLED} AND jti IN (${placeholders(part.length)}) RETURNING jti`,
            [outcome.status, outcome.error.slice(0, 500), outcome.at, streamId, ...part],
          );
        settled.push(...rows.map((r) => String(r.jti)));
      }
      return settled;
    },

    async expireSsfEvents(now, limit) {
      // Through ssf_events_horizon: only the SETs past their horizon, not every pending one (a
      // paused or poll stream may hold many). SQLite, without statistics, preferred
      // ssf_events_by_status and a sort of every pending SET, hence INDEXED BY there.
      const index = db.dialect === 'sqlite' ? ' INDEXED BY ssf_events_horizon' : '';
      return db.run(
        `UPDATE ssf_events SET status = 'dead', last_error = COALESCE(last_error, 'not delivered before the horizon'), lease_owner = NULL, lease_expires_at = NULL
         WHERE id IN (SELECT id FROM ssf_events${index} WHERE status = 'pending' AND horizon_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?) ORDER BY horizon_at LIMIT ?)`,
        [now, now, limit],
      );
    },

    async releaseHeldSsfEvents(limit) {
      // Held SETs (heldSql) of streams that take pushes now: a stream enabled, or switched to
      // push, while a transaction that had read it paused or polling was inserting SETs for it
      // (the stream's own UPDATE of its SETs could not see them yet). The enabled push streams
      // are read first, then their held SETs by stream id through ssf_events_held: only such
      // leftovers, never a paused or poll stream's backlog. In one statement with a join, a
      // planner may walk every held SET and look each stream up instead (it cannot know that
      // the enabled streams hold none), which is the backlog this pass must not read.
      const streams = (await db.all<{ id: string }>("SELECT id FROM ssf_streams WHERE status = 'enabled' AND delivery_method = 'push'")).map((r) => r.id);
      let released = 0;
      for (const part of chunks(streams)) {
        if (released >= limit) break;
        released += await db.run(
          `UPDATE ssf_events SET held = 0
           WHERE id IN (SELECT id FROM ssf_events WHERE stream_id IN (${placeholders(part.length)}) AND status = 'pending' AND held = 1 LIMIT ?)`,
          [...part, limit - released],
        );
      }
      return released;
    },

    async retrySsfEvent(streamId, id, now, horizonAt) {
      // Per-subject order still holds: the retried event keeps its id, so it goes out before
      // any younger pending event about the same subject (claimSsfPushEvents' NOT EXISTS).
      const rows = await db.all(
        `UPDATE ssf_events SET status = 'pending', next_attempt_at = ?, horizon_at = ?, lease_owner = NULL, lease_expires_at = NULL, held = ${heldSql()}
         WHERE id = ? AND stream_id = ? AND status = 'dead'
           AND EXISTS (SELECT 1 FROM ssf_streams s WHERE s.id = ssf_events.stream_id AND s.status <> 'disabled')
         RETURNING *`,
        [now, horizonAt, id, streamId],
      );
      // Other nodes' push workers and waiting long polls wake on commit, as for new events.
      if (rows.length > 0 && db.dialect === 'postgres') await db.get('SELECT pg_notify(?, ?)', [SSF_CHANNEL, '']);
      return rows.length > 0 ? toSsfEvent(rows[0]!) : null;
    },

    async dropPendingSsfEvents(streamId) {
      return db.run("DELETE FROM ssf_events WHERE stream_id = ? AND status = 'pending'", [streamId]);
    },

    async releaseSsfEvents(owner) {
      return db.run("UPDATE ssf_events SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ? AND status = 'pending'", [owner]);
    },

    async listSsfEvents(streamId, filter) {
      const rows = filter.status
        ? await db.all('SELECT * FROM ssf_events WHERE stream_id = ? AND status = ? ORDER BY id DESC LIMIT ?', [streamId, filter.status, filter.limit])
        : await db.all('SELECT * FROM ssf_events WHERE stream_id = ? ORDER BY id DESC LIMIT ?', [streamId, filter.limit]);
      return rows.map(toSsfEvent);
    },

    async ssfDeliveryState(streamId) {
      // One statement, so the figures are of one moment.
      const r = await db.get<Record<string, unknown>>(
        `SELECT (SELECT COUNT(*) FROM ssf_events WHERE stream_id = ? AND status = 'pending') AS pending,
                (SELECT COUNT(*) FROM ssf_events WHERE stream_id = ? AND status = 'delivered') AS delivered,
                (SELECT COUNT(*) FROM ssf_events WHERE stream_id = ? AND status = 'dead') AS dead,
                (SELECT MIN(created_at) FROM ssf_events WHERE stream_id = ? AND status = 'pending') AS oldest_pending,
                (SELECT MAX(delivered_at) FROM ssf_events WHERE stream_id = ? AND status = 'delivered') AS last_delivered`,
        [streamId, streamId, streamId, streamId, streamId],
      );
      const failed = await db.get<Record<string, unknown>>(
        'SELECT last_error, last_attempt_at FROM ssf_events WHERE stream_id = ? AND last_error IS NOT NULL ORDER BY last_attempt_at DESC LIMIT 1',
        [streamId],
      );
      return {
        pending: num(r?.pending ?? 0),
        delivered: num(r?.delivered ?? 0),
        dead: num(r?.dead ?? 0),
        oldestPendingAt: numOrNull(r?.oldest_pending),
        lastDeliveredAt: numOrNull(r?.last_delivered),
        lastError: strOrNull(failed?.last_error),
        lastErrorAt: numOrNull(failed?.last_attempt_at),
      };
    },

    async purgeSsfEvents(before, limit) {
      return db.run(
        "DELETE FROM ssf_events WHERE id IN (SELECT id FROM ssf_events WHERE status = 'delivered' AND created_at < ? ORDER BY id LIMIT ?)",
        [before, limit],
      );
    },

    async appendAudit(e: AuditEvent) {
      // Nobody reads the row back in the transaction that writes it.
      await deferredWrite(
        'INSERT INTO audit_events (at, actor, action, user_id, session_handle, client_id, ip, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [e.at, e.actor, e.action, e.userId, e.sessionHandle, e.clientId, e.ip, JSON.stringify(e.details)],
      );
    },

    async listAudit(filter) {
      const rows = filter.userId
        ? await db.all('SELECT * FROM audit_events WHERE user_id = ? ORDER BY id DESC LIMIT ?', [filter.userId, filter.limit])
        : await db.all('SELECT * FROM audit_events ORDER BY id DESC LIMIT ?', [filter.limit]);
      return rows.map((r) => ({
        id: num(r.id), at: num(r.at), actor: String(r.actor), action: String(r.action), userId: strOrNull(r.user_id),
        sessionHandle: strOrNull(r.session_handle), clientId: strOrNull(r.client_id), ip: strOrNull(r.ip), details: JSON.parse(String(r.details)) as Record<string, unknown>,
      }));
    },

    async purgeEndedSessions(before, limit) {
      // Through sessions_by_end, oldest end first; `ended_at IS NOT NULL` keeps the partial
      // index usable and active sessions out of reach.
      return db.run(
        'DELETE FROM sessions WHERE token_id IN (SELECT token_id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ? ORDER BY ended_at LIMIT ?)',
        [before, limit],
      );
    },

    async purgeRevocations(before, limit) {
      const last = await oldPrefixEnd('SELECT cursor AS k, at FROM revocations ORDER BY cursor LIMIT ?', before, limit);
      return last === null ? 0 : db.run('DELETE FROM revocations WHERE cursor <= ?', [last]);
    },

    async purgeDeliveredDeliveries(before, limit) {
      // Through deliveries_by_status (status, id). Delivered rows never change again; the
      // status test in the DELETE keeps it so even if one were put back to pending meanwhile.
      const rows = await db.all<{ id: unknown; created_at: unknown }>("SELECT id, created_at FROM deliveries WHERE status = 'delivered' ORDER BY id LIMIT ?", [limit]);
      const ids = rows.filter((r) => num(r.created_at) < before).map((r) => num(r.id));
      if (ids.length === 0) return 0;
      return db.transaction(async (tx) => {
        let deleted = 0;
        for (const part of chunks(ids)) {
          const gone = (await tx.all<{ id: unknown }>(`DELETE FROM deliveries WHERE status = 'delivered' AND id IN (${placeholders(part.length)}) RETURNING id`, part)).map((r) => num(r.id));
          deleted += gone.length;
          if (gone.length > 0) await tx.run(`DELETE FROM delivery_sessions WHERE delivery_id IN (${placeholders(gone.length)})`, gone);
        }
        return deleted;
      });
    },

    async purgeAudit(before, limit) {
      const last = await oldPrefixEnd('SELECT id AS k, at FROM audit_events ORDER BY id LIMIT ?', before, limit);
      return last === null ? 0 : db.run('DELETE FROM audit_events WHERE id <= ?', [last]);
    },
  };

  /**
   * The key of the last row of the oldest `limit` rows (by key) that are all older than
   * `before`: the end of the prefix an append-only table can lose without a hole. Null when
   * its very first row is young (or it is empty).
   */
  async function oldPrefixEnd(sql: string, before: number, limit: number): Promise<number | null> {
    let last: number | null = null;
    for (const row of await db.all<{ k: unknown; at: unknown }>(sql, [limit])) {
      if (num(row.at) >= before) break;
      last = num(row.k);
    }
    return last;
  }
  return { ops, commitDeferredLog: () => flushDeferred(true) };
}

/** The transaction whose callback is running, while it is still open. */
interface Scope {
  ops: StoreOperations;
  commitDeferredLog: () => Promise<RevocationEvent[]>;
  open: boolean;
}

/**
 * The {@link Store} over a SQL driver. One implementation serves SQLite and PostgreSQL;
 * the conformance suite runs it over both drivers.
 *
 * Calls made on the store itself while a transaction callback runs (a nested
 * `store.transaction`, or `store.x()` where `tx.x()` was meant) join that transaction.
 * Without this, SQLite would wait forever for the connection the outer transaction holds,
 * and PostgreSQL would run them on another connection, outside the transaction and
 * possibly blocked by its locks.
 */
export function createSqlStore(driver: SqlDriver): Store {
  const root = createOperations(driver).ops;
  const scopes = new AsyncLocalStorage<Scope>();
  // A promise left running after its transaction ended falls back to the root driver
  // rather than using a connection that went back to the pool.
  const current = (): StoreOperations => {
    const scope = scopes.getStore();
    return scope?.open ? scope.ops : root;
  };
  const operations = {} as Record<keyof StoreOperations, unknown>;
  for (const key of Object.keys(root) as (keyof StoreOperations)[]) {
    operations[key] = (...args: unknown[]) => (current()[key] as (...a: unknown[]) => unknown)(...args);
  }
  return {
    kind: driver.dialect,
    ...(operations as StoreOperations),
    transaction(fn) {
      const outer = scopes.getStore();
      if (outer?.open) return fn(outer.ops);
      return driver.transaction((tx) => {
        const scope: Scope = { ...createOperations(tx, true), open: true };
        return scopes.run(scope, async () => {
          const result = await fn(scope.ops);
          // Log entries deferred and not yet written go in before the commit (never lost), on
          // PostgreSQL in the same round trip as the COMMIT: the last thing this transaction does.
          await scope.commitDeferredLog();
          return result;
        }).finally(() => {
          scope.open = false;
          // SQLite hands every transaction the same driver object: nothing remembered of this
          // one may be seen by the next.
          endedRows.delete(tx);
          endedUsers.delete(tx);
        });
      });
    },
    // SQLite's data_version changes when another connection commits (the CLI, another
    // process); PostgreSQL has no such cheap signal, so it reports null (no caching).
    changeMarker: async () => driver.dataVersion?.() ?? null,
    isOwnNotification: (processId) => driver.ownsBackend?.(processId) ?? false,
    migrate: async () => void (await migrate(driver)),
    close: () => driver.close(),
  };
}
