import type {
  AdminTokenRecord,
  ConsoleSessionRecord,
  EndReason,
  AppPatch,
  AppRecord,
  AuditEvent,
  AuthorizationCodeRecord,
  ConsentRecord,
  Delivery,
  DeliveryOutcome,
  DeliveryStatus,
  NewDelivery,
  RefreshTokenRecord,
  RevocationEvent,
  SigningKeyRecord,
  SessionApp,
  SessionEnd,
  SessionRecord,
  UserPatch,
  UserRecord,
} from './model.js';
import type { NewSsfEvent, SsfEvent, SsfEventOutcome, SsfStream, SsfStreamDeliveryState, SsfStreamPatch, SsfStreamSubject } from './ssf-model.js';

/** What a new session is made of. */
export interface NewSession {
  tokenId: string;
  secretHash: string;
  handle: string;
  userId: string;
  ip: string | null;
  userAgent: string | null;
  createdAt: number;
  idleTimeoutMs: number;
  expiresAt: number;
  apps: SessionApp[];
}

/** What {@link StoreOperations.findRevocations} returns. */
export interface RevocationFilter {
  /** Only entries with a cursor below this one (the next page of a newest-first listing). */
  before?: number;
  userId?: string;
  reason?: EndReason;
  clientId?: string;
  limit: number;
}

/** Which of a user's active sessions to end. */
export interface UserSessionsSelector {
  /** Keep this session (by handle). */
  exceptHandle?: string;
}

/**
 * The storage port: every operation the domain needs, named after the domain. Adapters
 * (SQLite, PostgreSQL) implement it and pass the same conformance suite
 * (`@tessera/store/conformance`).
 *
 * Rules every adapter keeps:
 * - Ending sessions writes one revocation log entry per ended session (or app part) in the
 *   same transaction as the end itself; cursors grow by exactly one, without gaps, in
 *   commit order.
 * - Bulk operations return what they changed; ending an already-ended session changes
 *   nothing and writes nothing.
 * - An expected absence returns null / false / []; unique conflicts throw TesseraError
 *   `USER_CONFLICT` / `APP_CONFLICT`.
 * - Lookups of a user's sessions use an index on the user.
 */
export interface StoreOperations {
  createUser(user: UserRecord): Promise<UserRecord>;
  findUserById(id: string): Promise<UserRecord | null>;
  /** By username or email, case-insensitively. */
  findUserByLogin(login: string): Promise<UserRecord | null>;
  /**
   * Users whose username or email contains `query` (case-insensitively; every user when it is
   * empty), ordered by username, at most `limit`. A scan bounded by `limit`: it is the admin
   * console's search, not a hot path.
   */
  searchUsers(query: string, limit: number): Promise<UserRecord[]>;
  updateUser(id: string, patch: UserPatch): Promise<UserRecord | null>;
  deleteUser(id: string): Promise<boolean>;

  createApp(app: AppRecord): Promise<AppRecord>;
  findApp(clientId: string): Promise<AppRecord | null>;
  listApps(): Promise<AppRecord[]>;
  updateApp(clientId: string, patch: AppPatch): Promise<AppRecord | null>;
  deleteApp(clientId: string): Promise<boolean>;

  createSession(session: NewSession): Promise<SessionRecord>;
  findSessionByTokenId(tokenId: string): Promise<SessionRecord | null>;
  findSessionByHandle(handle: string): Promise<SessionRecord | null>;
  /** A user's sessions, newest first; only active ones unless `includeEnded`. */
  listSessionsByUser(userId: string, options?: { includeEnded?: boolean }): Promise<SessionRecord[]>;
  /**
   * Figures for monitoring, cheap at any size: active sessions and pending deliveries
   * (PostgreSQL: the planner's estimates from the partial indexes, refreshed by ANALYZE;
   * SQLite: exact counts) and dead deliveries (exact; there are few).
   */
  operationalCounts(): Promise<{ activeSessions: number; pendingDeliveries: number; deadDeliveries: number; estimated: boolean }>;
  /** Records activity: moves lastSeenAt and the idle deadline. */
  touchSession(tokenId: string, lastSeenAt: number, idleExpiresAt: number): Promise<void>;
  /** Records that an app joined an active session; false if it already had (and has not left). */
  joinSession(handle: string, clientId: string, at: number): Promise<boolean>;

  /**
   * Inside a transaction: the revocation log entries it appends from now on (by endSessions,
   * endUserSessions, leaveSessions, endExpiredSessions) are written by
   * {@link flushRevocationLog} instead of at once, and carry cursor 0 until then. Taking
   * cursors takes the log counter's lock (decision 0002), which every revocation waits for:
   * a transaction that does more work after ending its sessions (its outbox rows, its audit
   * line) does that work first and holds the lock only for the log itself. Entries not yet
   * written when the transaction callback returns are written then, before the commit.
   */
  deferRevocationLog(): void;
  /**
   * Writes the log entries deferred since {@link deferRevocationLog} (in the order they were
   * appended) and gives each of them its cursor, on the same event objects the store returned;
   * returns them.
   */
  flushRevocationLog(): Promise<RevocationEvent[]>;
  /**
   * What a revoking transaction plans its notices with: the apps, and (with `ssf`) the
   * Shared Signals streams that are not disabled, oldest first, with their subject rules.
   * The same as listApps, listSsfStreams and listSsfSubjects, read together (one statement
   * on PostgreSQL, where each statement of a revoking transaction is a round trip).
   */
  readRevocationContext(options: { ssf: boolean }): Promise<{ apps: AppRecord[]; streams: SsfStream[]; subjects: SsfStreamSubject[] }>;
  /** Ends the given active sessions; returns one log entry per session ended. */
  endSessions(handles: string[], end: SessionEnd): Promise<RevocationEvent[]>;
  /** Ends a user's active sessions (all, or all but one). */
  endUserSessions(userId: string, selector: UserSessionsSelector, end: SessionEnd): Promise<RevocationEvent[]>;
  /**
   * Ends one app's part of the given sessions (scope `app`): the app leaves, the session
   * goes on for the others. Returns one log entry (with `app` set) per session it left.
   */
  leaveSessions(handles: string[], clientId: string, end: SessionEnd): Promise<RevocationEvent[]>;
  /**
   * Ends up to `limit` sessions whose deadline is at or before `now`. The idle deadline is
   * always capped at the absolute end (adapters enforce the cap on every write), so it alone
   * is the deadline.
   */
  endExpiredSessions(now: number, limit: number): Promise<RevocationEvent[]>;
  /** The cursor of the newest log entry (0 when the log is empty). */
  revocationHead(): Promise<number>;
  /** Log entries with cursor > `after`, in order. */
  listRevocations(after: number, limit: number): Promise<RevocationEvent[]>;
  /**
   * Log entries newest first (the admin console's log), with cursor < `before` when given,
   * of one user (`sub`), one reason, and/or one app: an entry is the app's when only its
   * part ended (`app`) or when the whole session ended and the app had joined it.
   */
  findRevocations(filter: RevocationFilter): Promise<RevocationEvent[]>;
  /** How many log entries of each reason were written at or after `at` (reasons with none are left out). */
  countRevocationsSince(at: number): Promise<Partial<Record<EndReason, number>>>;
  /** The lowest cursor of an entry written at or after `at`, or null when there is none. */
  firstRevocationSince(at: number): Promise<number | null>;

  createLogoutToken(tokenHash: string, handle: string, expiresAt: number): Promise<void>;
  /** Deletes and returns the session handle of an unexpired logout token (one use only). */
  consumeLogoutToken(tokenHash: string, now: number): Promise<string | null>;
  /** Removes expired logout tokens; returns how many. */
  purgeLogoutTokens(now: number): Promise<number>;

  createAdminToken(token: AdminTokenRecord): Promise<void>;
  findAdminToken(id: string): Promise<AdminTokenRecord | null>;
  countAdminTokens(): Promise<number>;

  /** Stores an admin console sign-in (hash of its secret only). */
  createConsoleSession(session: ConsoleSessionRecord): Promise<void>;
  findConsoleSession(id: string): Promise<ConsoleSessionRecord | null>;
  /** Ends a console sign-in (sign-out); false when it was unknown or already ended. */
  endConsoleSession(id: string, at: number): Promise<boolean>;
  /** Deletes console sign-ins that expired or ended before `before`; returns how many. */
  purgeConsoleSessions(before: number): Promise<number>;

  /** Inserts a key unless one with that kid exists (several nodes may try at once); true if inserted. */
  insertSigningKey(key: SigningKeyRecord): Promise<boolean>;
  /** Keys still published at `now` (expiresAt > now), oldest first. */
  listSigningKeys(now: number): Promise<SigningKeyRecord[]>;
  deleteExpiredSigningKeys(now: number): Promise<number>;

  createRefreshToken(token: RefreshTokenRecord): Promise<void>;
  findRefreshToken(id: string): Promise<RefreshTokenRecord | null>;
  /**
   * The rotation of a refresh token, in one transaction: marks `id` used at `at` and stores
   * its successor `next`. False when `id` was used already or is unknown (exactly one of
   * concurrent callers wins), and then `next` is not stored.
   */
  rotateRefreshToken(id: string, at: number, next: RefreshTokenRecord): Promise<boolean>;
  /** Removes refresh tokens past their expiry; returns how many. */
  purgeRefreshTokens(now: number): Promise<number>;

  createAuthorizationCode(code: AuthorizationCodeRecord): Promise<void>;
  findAuthorizationCode(id: string): Promise<AuthorizationCodeRecord | null>;
  /**
   * Redeems a code: marks it used and, in the same transaction, makes its client a member of
   * its session (when the session is still active and the client is not a member already).
   * False when the code was redeemed before (exactly one caller wins). Because the join
   * commits with the spend, a caller that gets false sees the winner's join already done,
   * so revoking after a replay always reaches what the winner was given.
   */
  redeemAuthorizationCode(id: string, at: number): Promise<boolean>;
  /** Removes codes past their expiry; returns how many. */
  purgeAuthorizationCodes(now: number): Promise<number>;

  /** Records (or replaces) a user's consent for an app. */
  saveConsent(consent: ConsentRecord): Promise<void>;
  findConsent(userId: string, clientId: string): Promise<ConsentRecord | null>;
  /** A user's consents, newest first. */
  listConsents(userId: string): Promise<ConsentRecord[]>;
  /** Withdraws a consent; false when there was none. */
  deleteConsent(userId: string, clientId: string): Promise<boolean>;

  /** The sessions with these handles (active or ended); unknown handles are left out. */
  findSessionsByHandles(handles: string[]): Promise<SessionRecord[]>;

  /** Adds planned deliveries to the outbox (in the revoking transaction). */
  enqueueDeliveries(deliveries: NewDelivery[]): Promise<void>;
  /**
   * Leases up to `limit` due deliveries (pending, next attempt at or before `now`, no live
   * lease) to `owner` until `leaseUntil`, skipping `excludeClients`. Two owners never hold
   * the same delivery at once; a lease that expired (a crashed worker) can be taken again.
   */
  claimDeliveries(owner: string, now: number, leaseUntil: number, limit: number, excludeClients?: string[]): Promise<Delivery[]>;
  /** Records an attempt's outcome, if `owner` still holds the lease; false otherwise. */
  completeDelivery(id: number, owner: string, outcome: DeliveryOutcome): Promise<boolean>;
  /** Gives back every lease of `owner` (graceful shutdown); returns how many. */
  releaseDeliveries(owner: string): Promise<number>;
  /** The deliveries that cover a session, oldest first. */
  listDeliveriesBySession(handle: string): Promise<Delivery[]>;
  /** Deliveries newest first, optionally of one status and/or app. */
  listDeliveries(filter: { status?: DeliveryStatus; clientId?: string; limit: number }): Promise<Delivery[]>;
  findDelivery(id: number): Promise<Delivery | null>;
  /** Puts a delivery back to pending now, with a new horizon (admin retry); null if unknown. */
  retryDelivery(id: number, now: number, horizonAt: number): Promise<Delivery | null>;
  /** How many deliveries are in each status. */
  countDeliveries(): Promise<Record<DeliveryStatus, number>>;

  // Shared Signals (SSF) transmitter: streams, their subjects and the SET outbox.
  createSsfStream(stream: SsfStream): Promise<SsfStream>;
  findSsfStream(id: string): Promise<SsfStream | null>;
  /** Streams, oldest first: all, one client's (`clientId`), or those of these ids (`ids`; unknown ids are left out). */
  listSsfStreams(filter?: { clientId?: string; ids?: readonly string[] }): Promise<SsfStream[]>;
  updateSsfStream(id: string, patch: SsfStreamPatch): Promise<SsfStream | null>;
  /** Deletes a stream with its subjects and its events; false if unknown. */
  deleteSsfStream(id: string): Promise<boolean>;
  /** Adds or replaces a subject rule of a stream. */
  saveSsfSubject(subject: SsfStreamSubject): Promise<void>;
  /** The subject rules of these streams (one query for all of them). */
  listSsfSubjects(streamIds: string[]): Promise<SsfStreamSubject[]>;
  /** Adds SETs to the outbox (in the transaction of their cause). */
  enqueueSsfEvents(events: NewSsfEvent[]): Promise<void>;
  /**
   * Leases up to `limit` due events (not past their horizon) of enabled push streams to `owner` until `leaseUntil`,
   * oldest first, never an event while an older pending event of the same stream and
   * subject key exists (so events about one subject never overtake each other, whatever
   * the number of nodes). Two owners never hold the same event at once. Of a paused stream,
   * only the events about the stream itself (subject key `stream:…`: verification,
   * stream-updated) go out; the others are held.
   */
  claimSsfPushEvents(owner: string, now: number, leaseUntil: number, limit: number): Promise<SsfEvent[]>;
  /**
   * Poll delivery (RFC 8936): leases up to `limit` pending events of one stream, oldest
   * first, that are not already out on a live lease nor past their horizon; an unacknowledged event comes back
   * once its lease (the redelivery delay) has passed. `streamEventsOnly` (a paused stream):
   * only events about the stream itself.
   */
  claimSsfPollEvents(streamId: string, owner: string, now: number, leaseUntil: number, limit: number, streamEventsOnly?: boolean): Promise<SsfEvent[]>;
  /** True when the stream has pending events not out on a live lease (a poll would get some). */
  hasSsfPollEvents(streamId: string, now: number, streamEventsOnly?: boolean): Promise<boolean>;
  /**
   * Marks several pushed events delivered at once (one statement for a whole batch of
   * completions), those `owner` still holds; returns the ids it marked, and whether a younger
   * event about the same stream and subject is pending behind one of them (it may be claimed
   * now; a push worker need not look for due events after a delivery otherwise).
   */
  deliverSsfEvents(ids: number[], owner: string, at: number, httpStatus: number): Promise<{ recorded: number[]; successors: boolean }>;
  /** Records a push attempt's outcome if `owner` still holds the lease; false otherwise. */
  completeSsfEvent(id: number, owner: string, outcome: SsfEventOutcome): Promise<boolean>;
  /**
   * Poll acknowledgements and errors: settles the stream's pending events with these jtis
   * (delivered, or dead with the receiver's error); returns the jtis it settled.
   */
  settleSsfEvents(streamId: string, jtis: string[], outcome: SsfEventOutcome): Promise<string[]>;
  /** Marks pending events past their horizon dead; returns how many (at most `limit`). */
  expireSsfEvents(now: number, limit: number): Promise<number>;
  /**
   * A pending event is held while no push may take it (its stream polls, or is paused and the
   * event is not about the stream itself), and the push claim looks only at events not held,
   * so a held backlog never slows it. A stream's update re-decides its pending events; an
   * event inserted by a transaction that read the stream before that update keeps what that
   * transaction saw. This releases such events of enabled push streams (at most `limit`;
   * returns how many), so none stays held under a stream that pushes: the push worker calls
   * it on its timer.
   */
  releaseHeldSsfEvents(limit: number): Promise<number>;
  /**
   * An operator's retry of a dead event: pending again, due at `now`, with a fresh horizon,
   * its lease cleared (its attempts, last error and claims kept: the same `jti` and
   * `event_timestamp` go out). Only a `dead` event of `streamId`, and only while that stream
   * is not disabled (a disabled stream holds nothing). Returns the event, or null when no
   * such dead event is there to retry.
   */
  retrySsfEvent(streamId: string, id: number, now: number, horizonAt: number): Promise<SsfEvent | null>;
  /** Deletes a stream's pending events (a disabled stream holds nothing); returns how many. */
  dropPendingSsfEvents(streamId: string): Promise<number>;
  /** Gives back every lease of `owner`; returns how many. */
  releaseSsfEvents(owner: string): Promise<number>;
  /** A stream's events, newest first, optionally of one status. */
  listSsfEvents(streamId: string, filter: { status?: SsfEvent['status']; limit: number }): Promise<SsfEvent[]>;
  /** Figures of a stream's outbox. */
  ssfDeliveryState(streamId: string): Promise<SsfStreamDeliveryState>;
  /** Deletes delivered (or acknowledged) events created before `before`, oldest first, at most `limit`; pending and dead ones stay. */
  purgeSsfEvents(before: number, limit: number): Promise<number>;

  appendAudit(event: AuditEvent): Promise<void>;
  listAudit(filter: { userId?: string; limit: number }): Promise<AuditEvent[]>;

  // Retention: each call deletes at most `limit` rows and returns how many it deleted, so a
  // job repeats it until the count is below `limit` without holding locks for long.
  /** Deletes sessions that ended before `before`, oldest end first. Active sessions are never touched. */
  purgeEndedSessions(before: number, limit: number): Promise<number>;
  /**
   * Deletes the oldest revocation-log entries written before `before`, in cursor order, and
   * stops at the first one written at or after it: what stays is always a contiguous tail
   * of the log, so a follower never meets a gap.
   */
  purgeRevocations(before: number, limit: number): Promise<number>;
  /** Deletes delivered deliveries created before `before` (with their session links), oldest first; pending and dead ones stay. */
  purgeDeliveredDeliveries(before: number, limit: number): Promise<number>;
  /** Deletes the oldest audit events written before `before`, in id order, stopping at the first younger one. */
  purgeAudit(before: number, limit: number): Promise<number>;
}

/**
 * A store: the operations, plus transactions and lifecycle.
 *
 * @example
 * ```ts
 * await store.transaction(async (tx) => {
 *   await tx.updateUser(id, { disabled: true, updatedAt: now });
 *   return tx.endUserSessions(id, {}, { at: now, reason: 'user_disabled', actor: 'admin' });
 * });
 * ```
 */
export interface Store extends StoreOperations {
  /** `sqlite` or `postgres`. */
  readonly kind: string;
  /**
   * Runs `fn` in one transaction. While `fn` runs, calls made on the store itself (including
   * a nested `transaction`) join that transaction rather than waiting for or bypassing it.
   */
  transaction<T>(fn: (tx: StoreOperations) => Promise<T>): Promise<T>;
  /**
   * A number that changes whenever a commit made by anyone other than this store object
   * (another process or connection) becomes visible; null when the adapter cannot tell.
   * In-process caches use it to know they may still trust what they hold.
   */
  changeMarker(): Promise<number | null>;
  /**
   * True when a database notification (PostgreSQL NOTIFY, which names the backend process
   * that sent it) was sent by one of this store's own connections; false when it came from
   * another node, or when the adapter cannot tell.
   */
  isOwnNotification(processId: number): boolean;
  /** Creates or upgrades the schema. Idempotent, safe to run on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}
