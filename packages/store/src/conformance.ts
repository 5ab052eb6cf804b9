import {
  isTesseraError,
  type AppRecord,
  type AuditEvent,
  type ErrorCode,
  type NewSession,
  type NewSsfEvent,
  type SsfStream,
  type RevocationEvent,
  type SessionEnd,
  type SessionRecord,
  type SigningKeyRecord,
  type Store,
  type StoreOperations,
  type UserRecord,
} from '@tessera/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';

const T0 = 1_700_000_000_000;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

// Ids only need to be unique within one test (every test gets a fresh store), but a
// process-wide sequence keeps them unique without thinking about it.
let sequence = 0;
const nextId = (prefix: string): string => `${prefix}_${++sequence}`;

function userRecord(overrides: Partial<UserRecord> = {}): UserRecord {
  const id = overrides.id ?? nextId('usr');
  return {
    id,
    username: `user-${id}`,
    email: `${id}@example.test`,
    emailVerified: false,
    firstName: 'Ada',
    lastName: 'Lovelace',
    picture: null,
    disabled: false,
    passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

function appRecord(overrides: Partial<AppRecord> = {}): AppRecord {
  return {
    clientId: overrides.clientId ?? nextId('app'),
    name: 'Forum',
    trusted: false,
    allowedOrigins: ['https://forum.example.test'],
    returnUrls: ['https://forum.example.test/', 'https://forum.example.test/bye'],
    backchannelLogoutUri: 'https://forum.example.test/backchannel',
    connectors: { webhook: { url: 'https://forum.example.test/hook', events: ['logout'] }, nodebb: null },
    oidc: {
      redirectUris: ['https://forum.example.test/cb'],
      postLogoutRedirectUris: ['https://forum.example.test/bye'],
      grantTypes: ['authorization_code', 'refresh_token'],
      tokenEndpointAuthMethod: 'client_secret_basic',
      backchannelLogoutSessionRequired: false,
      idTokenSignedResponseAlg: 'RS256',
    },
    secretHash: 'a'.repeat(64),
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

function newSession(overrides: Partial<NewSession> = {}): NewSession {
  const n = ++sequence;
  return {
    tokenId: `tok_${n}`,
    secretHash: `${n}`.padStart(64, '0'),
    handle: `ses_${n}`,
    userId: 'usr_default',
    ip: '203.0.113.7',
    userAgent: 'Mozilla/5.0 (conformance)',
    createdAt: T0,
    idleTimeoutMs: 30 * MINUTE,
    expiresAt: T0 + 24 * HOUR,
    apps: [],
    ...overrides,
  };
}

function auditEvent(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return { at: T0, actor: 'admin', action: 'user.updated', userId: null, sessionHandle: null, clientId: null, ip: null, details: {}, ...overrides };
}

const endBy = (at: number, reason: SessionEnd['reason'] = 'logout', actor: SessionEnd['actor'] = 'user'): SessionEnd => ({ at, reason, actor });

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, `expected a TesseraError ${code}`).not.toBeNull();
  expect(isTesseraError(error) ? error.code : error).toBe(code);
}

/** The whole log, read page by page (which also exercises paging). */
async function readLog(store: StoreOperations, pageSize = 7): Promise<RevocationEvent[]> {
  const all: RevocationEvent[] = [];
  for (;;) {
    const page = await store.listRevocations(all.at(-1)?.cursor ?? 0, pageSize);
    all.push(...page);
    if (page.length < pageSize) return all;
  }
}

function expectGapless(events: RevocationEvent[], from = 1): void {
  expect(events.map((e) => e.cursor)).toEqual(Array.from({ length: events.length }, (_, i) => from + i));
}

/** Fails with a clear message instead of hanging until the test times out (a deadlock). */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms (deadlock?)`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const byCursor = (a: RevocationEvent, b: RevocationEvent): number => a.cursor - b.cursor;

/**
 * Registers the store conformance suite: every operation of the storage port and every
 * rule in the doc comment of `StoreOperations`, run against the stores `makeStore` opens.
 * `makeStore` is called once per test and must return a store over an empty database
 * (the suite runs `migrate()` itself); the suite closes it after the test. `cleanup` runs
 * once after the whole suite (to drop schemas, delete files).
 *
 * @example
 * ```ts
 * import { describeStoreConformance } from '@tessera/store/conformance';
 * import { createSqliteStore } from '@tessera/store';
 *
 * describeStoreConformance('sqlite (:memory:)', async () => createSqliteStore(':memory:'));
 * ```
 */
export function describeStoreConformance(name: string, makeStore: () => Promise<Store>, cleanup?: () => Promise<void> | void): void {
  describe(`store conformance: ${name}`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await makeStore();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });
    if (cleanup) afterAll(cleanup);

    /** Creates sessions in one transaction (many single inserts are slow over a network). */
    async function createSessions(sessions: NewSession[]): Promise<SessionRecord[]> {
      return store.transaction(async (tx) => {
        const created: SessionRecord[] = [];
        for (const s of sessions) created.push(await tx.createSession(s));
        return created;
      });
    }

    describe('migrate', () => {
      it('starts empty', async () => {
        expect(await store.listApps()).toEqual([]);
        expect(await store.listRevocations(0, 10)).toEqual([]);
        expect(await store.countAdminTokens()).toBe(0);
        expect(await store.listAudit({ limit: 10 })).toEqual([]);
        expect(await store.listSessionsByUser('usr_default', { includeEnded: true })).toEqual([]);
      });

      it('is idempotent and keeps the data', async () => {
        const user = await store.createUser(userRecord());
        await store.endSessions([(await store.createSession(newSession())).handle], endBy(T0));
        await store.migrate();
        await store.migrate();
        expect(await store.findUserById(user.id)).toEqual(user);
        // The counter was not reset: the next entry follows the first one.
        const [event] = await store.endSessions([(await store.createSession(newSession())).handle], endBy(T0));
        expect(event?.cursor).toBe(2);
      });
    });

    describe('users', () => {
      it('creates and finds a user by id, field for field', async () => {
        const user = userRecord({ picture: 'https://cdn.example.test/a.png', disabled: true });
        expect(await store.createUser(user)).toEqual(user);
        expect(await store.findUserById(user.id)).toEqual(user);
        const bare = userRecord({ email: null, firstName: null, lastName: null, passwordHash: null });
        await store.createUser(bare);
        expect(await store.findUserById(bare.id)).toEqual(bare);
      });

      it('returns null for an unknown id', async () => {
        expect(await store.findUserById('usr_nobody')).toBeNull();
      });

      it('finds a user by username or email, case-insensitively', async () => {
        const user = await store.createUser(userRecord({ username: 'Alice', email: 'Alice.Liddell@Example.TEST' }));
        expect(await store.findUserByLogin('Alice')).toEqual(user);
        expect(await store.findUserByLogin('alice')).toEqual(user);
        expect(await store.findUserByLogin('ALICE')).toEqual(user);
        expect(await store.findUserByLogin('alice.liddell@example.test')).toEqual(user);
        expect(await store.findUserByLogin('ALICE.LIDDELL@EXAMPLE.TEST')).toEqual(user);
        expect(await store.findUserByLogin('alic')).toBeNull();
        expect(await store.findUserByLogin('bob')).toBeNull();
        expect(await store.findUserByLogin('')).toBeNull();
      });

      it('does not find a user without email by an empty login', async () => {
        await store.createUser(userRecord({ username: 'noemail', email: null }));
        expect(await store.findUserByLogin('')).toBeNull();
      });

      it('throws USER_CONFLICT on a duplicate id, username or email (case-insensitively)', async () => {
        const user = await store.createUser(userRecord({ username: 'Alice', email: 'alice@example.test' }));
        await expectCode(store.createUser(userRecord({ id: user.id })), 'USER_CONFLICT');
        await expectCode(store.createUser(userRecord({ username: 'aLiCe' })), 'USER_CONFLICT');
        await expectCode(store.createUser(userRecord({ email: 'ALICE@example.test' })), 'USER_CONFLICT');
        // Nothing half-written by the failed attempts.
        expect(await store.findUserByLogin('alice')).toEqual(user);
      });

      it('allows many users without email', async () => {
        const a = await store.createUser(userRecord({ email: null }));
        const b = await store.createUser(userRecord({ email: null }));
        expect(await store.findUserById(a.id)).toEqual(a);
        expect(await store.findUserById(b.id)).toEqual(b);
      });

      it('updates only the fields in the patch', async () => {
        const user = await store.createUser(userRecord({ username: 'alice', email: 'alice@example.test' }));
        const updated = await store.updateUser(user.id, { firstName: 'Alicia', picture: 'https://cdn.example.test/p.png', disabled: true, updatedAt: T0 + 5 });
        const expected = { ...user, firstName: 'Alicia', picture: 'https://cdn.example.test/p.png', disabled: true, updatedAt: T0 + 5 };
        expect(updated).toEqual(expected);
        expect(await store.findUserById(user.id)).toEqual(expected);

        const cleared = await store.updateUser(user.id, { email: null, lastName: null, passwordHash: null, disabled: false, updatedAt: T0 + 6 });
        expect(cleared).toEqual({ ...expected, email: null, lastName: null, passwordHash: null, disabled: false, updatedAt: T0 + 6 });
        expect(await store.findUserByLogin('alice@example.test')).toBeNull();
      });

      it('keeps the login lookup in step with a new username and email', async () => {
        const user = await store.createUser(userRecord({ username: 'alice', email: 'alice@example.test' }));
        await store.updateUser(user.id, { username: 'Alice2', email: 'New@Example.test', updatedAt: T0 + 1 });
        expect(await store.findUserByLogin('alice')).toBeNull();
        expect(await store.findUserByLogin('alice@example.test')).toBeNull();
        expect((await store.findUserByLogin('ALICE2'))?.id).toBe(user.id);
        expect((await store.findUserByLogin('new@example.TEST'))?.id).toBe(user.id);
        // The old name is free again.
        await store.createUser(userRecord({ username: 'alice', email: 'alice@example.test' }));
      });

      it('stores email_verified: false unless set, true when set, and changes it by patch', async () => {
        const plain = await store.createUser(userRecord());
        expect((await store.findUserById(plain.id))?.emailVerified).toBe(false);
        const verified = await store.createUser(userRecord({ emailVerified: true }));
        expect((await store.findUserById(verified.id))?.emailVerified).toBe(true);
        expect((await store.findUserByLogin(verified.email!))?.emailVerified).toBe(true);
        expect(await store.updateUser(plain.id, { emailVerified: true, updatedAt: T0 + 1 })).toEqual({ ...plain, emailVerified: true, updatedAt: T0 + 1 });
        expect(await store.updateUser(verified.id, { emailVerified: false, updatedAt: T0 + 1 })).toEqual({ ...verified, emailVerified: false, updatedAt: T0 + 1 });
        // Other patches leave it alone.
        expect((await store.updateUser(plain.id, { firstName: 'Grace', updatedAt: T0 + 2 }))?.emailVerified).toBe(true);
      });

      it('returns null when updating an unknown user', async () => {
        expect(await store.updateUser('usr_nobody', { firstName: 'X', updatedAt: T0 })).toBeNull();
      });

      it('throws USER_CONFLICT when an update takes another user’s username or email', async () => {
        await store.createUser(userRecord({ username: 'alice', email: 'alice@example.test' }));
        const bob = await store.createUser(userRecord({ username: 'bob', email: 'bob@example.test' }));
        await expectCode(store.updateUser(bob.id, { username: 'ALICE', updatedAt: T0 + 1 }), 'USER_CONFLICT');
        await expectCode(store.updateUser(bob.id, { email: 'Alice@Example.Test', updatedAt: T0 + 1 }), 'USER_CONFLICT');
        expect(await store.findUserById(bob.id)).toEqual(bob);
        // Changing only the case of one's own name is not a conflict.
        expect((await store.updateUser(bob.id, { username: 'Bob', updatedAt: T0 + 2 }))?.username).toBe('Bob');
      });

      it('deletes a user once', async () => {
        const user = await store.createUser(userRecord({ username: 'alice' }));
        expect(await store.deleteUser(user.id)).toBe(true);
        expect(await store.deleteUser(user.id)).toBe(false);
        expect(await store.findUserById(user.id)).toBeNull();
        expect(await store.findUserByLogin('alice')).toBeNull();
        expect(await store.deleteUser('usr_nobody')).toBe(false);
        await store.createUser(userRecord({ id: user.id, username: 'alice' }));
      });
    });

    describe('apps', () => {
      it('creates and finds an app, field for field', async () => {
        const app = appRecord({ trusted: true });
        expect(await store.createApp(app)).toEqual(app);
        expect(await store.findApp(app.clientId)).toEqual(app);
        const bare = appRecord({ allowedOrigins: [], returnUrls: [], backchannelLogoutUri: null, connectors: {} });
        await store.createApp(bare);
        expect(await store.findApp(bare.clientId)).toEqual(bare);
        expect(await store.findApp('app_nobody')).toBeNull();
      });

      it('lists every app', async () => {
        const apps = [appRecord({ createdAt: T0 + 2 }), appRecord({ createdAt: T0 }), appRecord({ createdAt: T0 + 1 })];
        for (const app of apps) await store.createApp(app);
        const byId = (a: AppRecord, b: AppRecord) => a.clientId.localeCompare(b.clientId);
        expect((await store.listApps()).sort(byId)).toEqual([...apps].sort(byId));
      });

      it('throws APP_CONFLICT on a duplicate client id', async () => {
        const app = await store.createApp(appRecord());
        await expectCode(store.createApp(appRecord({ clientId: app.clientId, name: 'Other' })), 'APP_CONFLICT');
        expect(await store.findApp(app.clientId)).toEqual(app);
      });

      it('updates only the fields in the patch', async () => {
        const app = await store.createApp(appRecord());
        const patch = { name: 'Shop', trusted: true, returnUrls: ['https://shop.example.test/'], connectors: { webhook: null }, backchannelLogoutUri: null, updatedAt: T0 + 9 };
        const expected = { ...app, ...patch };
        expect(await store.updateApp(app.clientId, patch)).toEqual(expected);
        expect(await store.findApp(app.clientId)).toEqual(expected);
        const rotated = await store.updateApp(app.clientId, { secretHash: 'b'.repeat(64), allowedOrigins: [], updatedAt: T0 + 10 });
        expect(rotated).toEqual({ ...expected, secretHash: 'b'.repeat(64), allowedOrigins: [], updatedAt: T0 + 10 });
        expect(await store.updateApp('app_nobody', { name: 'X', updatedAt: T0 })).toBeNull();
      });

      it('updates the OIDC client metadata as a whole, and leaves it alone when the patch has none', async () => {
        const app = await store.createApp(appRecord());
        const oidc = { redirectUris: ['http://127.0.0.1:9/cb', 'https://x.test/cb'], postLogoutRedirectUris: [], grantTypes: ['authorization_code' as const], tokenEndpointAuthMethod: 'none' as const, backchannelLogoutSessionRequired: true, idTokenSignedResponseAlg: 'EdDSA' as const };
        expect(await store.updateApp(app.clientId, { oidc, updatedAt: T0 + 1 })).toEqual({ ...app, oidc, updatedAt: T0 + 1 });
        expect(await store.updateApp(app.clientId, { name: 'N', updatedAt: T0 + 2 })).toEqual({ ...app, oidc, name: 'N', updatedAt: T0 + 2 });
      });

      it('deletes an app once', async () => {
        const app = await store.createApp(appRecord());
        expect(await store.deleteApp(app.clientId)).toBe(true);
        expect(await store.deleteApp(app.clientId)).toBe(false);
        expect(await store.findApp(app.clientId)).toBeNull();
        expect(await store.listApps()).toEqual([]);
      });
    });

    describe('sessions', () => {
      it('creates a session and finds it by token id and by handle', async () => {
        const input = newSession({ apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] });
        const created = await store.createSession(input);
        expect(created).toEqual({
          ...input,
          lastSeenAt: T0,
          idleExpiresAt: T0 + 30 * MINUTE,
          endedAt: null,
          endedBy: null,
          endReason: null,
        });
        expect(await store.findSessionByTokenId(input.tokenId)).toEqual(created);
        expect(await store.findSessionByHandle(input.handle)).toEqual(created);
        const bare = await store.createSession(newSession({ ip: null, userAgent: null }));
        expect(await store.findSessionByHandle(bare.handle)).toEqual(bare);
      });

      it('caps the idle deadline at the absolute end', async () => {
        const created = await store.createSession(newSession({ idleTimeoutMs: 2 * HOUR, expiresAt: T0 + HOUR }));
        expect(created.idleExpiresAt).toBe(T0 + HOUR);
        expect((await store.findSessionByHandle(created.handle))?.idleExpiresAt).toBe(T0 + HOUR);
      });

      it('returns null for an unknown token id or handle', async () => {
        const s = await store.createSession(newSession());
        expect(await store.findSessionByTokenId('tok_nobody')).toBeNull();
        expect(await store.findSessionByHandle('ses_nobody')).toBeNull();
        // A handle is not a token id and the other way round.
        expect(await store.findSessionByTokenId(s.handle)).toBeNull();
        expect(await store.findSessionByHandle(s.tokenId)).toBeNull();
      });

      it('lists a user’s sessions newest first, active only unless includeEnded', async () => {
        const [older, newest, middle, ended] = await createSessions([
          newSession({ userId: 'usr_a', createdAt: T0 }),
          newSession({ userId: 'usr_a', createdAt: T0 + 20 }),
          newSession({ userId: 'usr_a', createdAt: T0 + 10 }),
          newSession({ userId: 'usr_a', createdAt: T0 + 30 }),
          newSession({ userId: 'usr_b', createdAt: T0 + 40 }),
        ]);
        await store.endSessions([ended!.handle], endBy(T0 + 50));
        const active = await store.listSessionsByUser('usr_a');
        expect(active.map((s) => s.handle)).toEqual([newest!.handle, middle!.handle, older!.handle]);
        expect(active[0]).toEqual(newest);
        const all = await store.listSessionsByUser('usr_a', { includeEnded: true });
        expect(all.map((s) => s.handle)).toEqual([ended!.handle, newest!.handle, middle!.handle, older!.handle]);
        expect(all[0]).toMatchObject({ endedAt: T0 + 50, endedBy: 'user', endReason: 'logout' });
        expect(await store.listSessionsByUser('usr_a', { includeEnded: false })).toEqual(active);
        expect(await store.listSessionsByUser('usr_nobody')).toEqual([]);
      });

      it('finds one user’s sessions among many', async () => {
        const others = Array.from({ length: 600 }, (_, i) => newSession({ userId: `usr_other_${i % 150}`, createdAt: T0 + i }));
        const mine = Array.from({ length: 5 }, (_, i) => newSession({ userId: 'usr_me', createdAt: T0 + 1000 + i }));
        await createSessions([...others.slice(0, 300), ...mine, ...others.slice(300)]);
        await store.endSessions([mine[0]!.handle, mine[1]!.handle], endBy(T0 + 2000));
        expect((await store.listSessionsByUser('usr_me')).map((s) => s.handle)).toEqual([mine[4]!.handle, mine[3]!.handle, mine[2]!.handle]);
        expect(await store.listSessionsByUser('usr_me', { includeEnded: true })).toHaveLength(5);
        const ended = await store.endUserSessions('usr_me', {}, endBy(T0 + 3000, 'admin_revoked', 'admin'));
        expect(ended.map((e) => e.sid).sort()).toEqual([mine[2]!.handle, mine[3]!.handle, mine[4]!.handle].sort());
        expect(await store.listSessionsByUser('usr_other_7')).toHaveLength(4);
        expect(await readLog(store, 100)).toHaveLength(5);
      });

      it('touches a session: moves lastSeenAt and the idle deadline forward', async () => {
        const s = await store.createSession(newSession());
        await store.touchSession(s.tokenId, T0 + 5 * MINUTE, T0 + 35 * MINUTE);
        expect(await store.findSessionByHandle(s.handle)).toEqual({ ...s, lastSeenAt: T0 + 5 * MINUTE, idleExpiresAt: T0 + 35 * MINUTE });
      });

      it('never moves a touch backwards', async () => {
        const s = await store.createSession(newSession());
        await store.touchSession(s.tokenId, T0 + 10 * MINUTE, T0 + 40 * MINUTE);
        // A slower node reporting an older use must not shorten the session.
        await store.touchSession(s.tokenId, T0 + 5 * MINUTE, T0 + 35 * MINUTE);
        await store.touchSession(s.tokenId, T0 + 10 * MINUTE, T0 + 36 * MINUTE);
        expect(await store.findSessionByHandle(s.handle)).toMatchObject({ lastSeenAt: T0 + 10 * MINUTE, idleExpiresAt: T0 + 40 * MINUTE });
      });

      it('never touches an ended session', async () => {
        const s = await store.createSession(newSession());
        await store.endSessions([s.handle], endBy(T0 + MINUTE));
        const ended = await store.findSessionByHandle(s.handle);
        await store.touchSession(s.tokenId, T0 + 2 * MINUTE, T0 + 32 * MINUTE);
        expect(await store.findSessionByHandle(s.handle)).toEqual(ended);
      });

      it('ignores a touch of an unknown token id', async () => {
        await expect(store.touchSession('tok_nobody', T0 + MINUTE, T0 + 31 * MINUTE)).resolves.toBeUndefined();
      });
    });

    describe('joinSession', () => {
      it('records a new app and reports whether it was new', async () => {
        const s = await store.createSession(newSession({ apps: [{ clientId: 'site', joinedAt: T0, leftAt: null }] }));
        expect(await store.joinSession(s.handle, 'forum', T0 + 1)).toBe(true);
        expect(await store.joinSession(s.handle, 'forum', T0 + 2)).toBe(false);
        expect(await store.joinSession(s.handle, 'site', T0 + 3)).toBe(false);
        const apps = (await store.findSessionByHandle(s.handle))?.apps ?? [];
        expect([...apps].sort((a, b) => a.clientId.localeCompare(b.clientId))).toEqual([
          { clientId: 'forum', joinedAt: T0 + 1, leftAt: null },
          { clientId: 'site', joinedAt: T0, leftAt: null },
        ]);
      });

      it('lets an app rejoin after it left', async () => {
        const s = await store.createSession(newSession({ apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] }));
        await store.leaveSessions([s.handle], 'forum', endBy(T0 + 1, 'logout', 'app:forum'));
        expect(await store.joinSession(s.handle, 'forum', T0 + 2)).toBe(true);
        expect((await store.findSessionByHandle(s.handle))?.apps).toEqual([{ clientId: 'forum', joinedAt: T0 + 2, leftAt: null }]);
        expect(await store.joinSession(s.handle, 'forum', T0 + 3)).toBe(false);
      });

      it('returns false on an ended or unknown session and changes nothing', async () => {
        const s = await store.createSession(newSession());
        await store.endSessions([s.handle], endBy(T0 + 1));
        expect(await store.joinSession(s.handle, 'forum', T0 + 2)).toBe(false);
        expect((await store.findSessionByHandle(s.handle))?.apps).toEqual([]);
        expect(await store.joinSession('ses_nobody', 'forum', T0 + 2)).toBe(false);
      });

      it('lets exactly one of many concurrent joins of one app win', async () => {
        const s = await store.createSession(newSession());
        const results = await Promise.all(Array.from({ length: 12 }, (_, i) => store.joinSession(s.handle, i % 2 === 0 ? 'forum' : 'shop', T0 + i)));
        expect(results.filter(Boolean)).toHaveLength(2);
        const apps = (await store.findSessionByHandle(s.handle))?.apps ?? [];
        expect(apps.map((a) => a.clientId).sort()).toEqual(['forum', 'shop']);
      });
    });

    describe('endSessions', () => {
      it('ends active sessions and returns one log entry per session', async () => {
        const [a, b] = await createSessions([newSession({ userId: 'usr_a' }), newSession({ userId: 'usr_b' })]);
        const end = endBy(T0 + MINUTE, 'admin_revoked', 'admin');
        const events = await store.endSessions([a!.handle, b!.handle], end);
        expect([...events].sort(byCursor)).toEqual(events);
        expectGapless(events);
        expect(events.map(({ cursor: _c, ...rest }) => rest).sort((x, y) => x.sid.localeCompare(y.sid))).toEqual(
          [
            { sid: a!.handle, sub: 'usr_a', reason: 'admin_revoked', actor: 'admin', at: T0 + MINUTE, app: null },
            { sid: b!.handle, sub: 'usr_b', reason: 'admin_revoked', actor: 'admin', at: T0 + MINUTE, app: null },
          ].sort((x, y) => x.sid.localeCompare(y.sid)),
        );
        expect(await store.findSessionByHandle(a!.handle)).toEqual({ ...a, endedAt: T0 + MINUTE, endedBy: 'admin', endReason: 'admin_revoked' });
        expect(await readLog(store)).toEqual(events);
      });

      it('changes nothing and writes nothing for ended, unknown or repeated handles', async () => {
        const [a, b] = await createSessions([newSession(), newSession()]);
        const first = await store.endSessions([a!.handle], endBy(T0 + 1));
        expect(first).toHaveLength(1);
        expect(await store.endSessions([a!.handle], endBy(T0 + 2, 'admin_revoked', 'admin'))).toEqual([]);
        expect(await store.endSessions(['ses_nobody'], endBy(T0 + 2))).toEqual([]);
        expect(await store.endSessions([], endBy(T0 + 2))).toEqual([]);
        // The first end stays recorded as it was.
        expect(await store.findSessionByHandle(a!.handle)).toMatchObject({ endedAt: T0 + 1, endedBy: 'user', endReason: 'logout' });
        const mixed = await store.endSessions([a!.handle, 'ses_nobody', b!.handle, b!.handle], endBy(T0 + 3));
        expect(mixed.map((e) => [e.cursor, e.sid])).toEqual([[2, b!.handle]]);
        expect(await readLog(store)).toEqual([...first, ...mixed]);
      });

      it('deletes the ended sessions’ logout tokens, and only theirs', async () => {
        const [a, b] = await createSessions([newSession(), newSession()]);
        await store.createLogoutToken('lt_a1', a!.handle, T0 + HOUR);
        await store.createLogoutToken('lt_a2', a!.handle, T0 + HOUR);
        await store.createLogoutToken('lt_b', b!.handle, T0 + HOUR);
        await store.endSessions([a!.handle], endBy(T0 + 1));
        expect(await store.consumeLogoutToken('lt_a1', T0 + 2)).toBeNull();
        expect(await store.consumeLogoutToken('lt_a2', T0 + 2)).toBeNull();
        expect(await store.consumeLogoutToken('lt_b', T0 + 2)).toBe(b!.handle);
      });

      it('ends more sessions than fit in one statement', async () => {
        const sessions = await createSessions(Array.from({ length: 1234 }, (_, i) => newSession({ userId: `usr_${i % 10}` })));
        const handles = sessions.map((s) => s.handle);
        const events = await store.endSessions([...handles, ...handles.slice(0, 600)], endBy(T0 + 1));
        expect(events).toHaveLength(1234);
        expectGapless(events);
        expect(new Set(events.map((e) => e.sid))).toEqual(new Set(handles));
        expect(await store.listSessionsByUser('usr_3')).toEqual([]);
        expect(await readLog(store, 500)).toEqual(events);
      });
    });

    describe('sessions read back in a revoking transaction', () => {
      it('findSessionsByHandles returns the sessions as the transaction left them so far, and the next transaction reads the table again', async () => {
        const apps = [
          { clientId: 'site', joinedAt: T0, leftAt: null },
          { clientId: 'forum', joinedAt: T0 + 1, leftAt: null },
        ];
        const [a, b, c] = await createSessions([newSession({ userId: 'usr_a', apps }), newSession({ userId: 'usr_a', apps }), newSession({ userId: 'usr_b', apps })]);
        const seen = await store.transaction(async (tx) => {
          await tx.endSessions([a!.handle, b!.handle], endBy(T0 + 5, 'admin_revoked', 'admin'));
          const ended = await tx.findSessionsByHandles([a!.handle, b!.handle, a!.handle]);
          await tx.joinSession(b!.handle, 'shop', T0 + 6);
          await tx.leaveSessions([a!.handle, c!.handle], 'forum', endBy(T0 + 7));
          const later = await tx.findSessionsByHandles([b!.handle, a!.handle, c!.handle]);
          return { ended, later };
        });
        const byHandle = (x: { handle: string }, y: { handle: string }) => x.handle.localeCompare(y.handle);
        expect([...seen.ended].sort(byHandle)).toEqual([
          { ...a!, endedAt: T0 + 5, endedBy: 'admin', endReason: 'admin_revoked' },
          { ...b!, endedAt: T0 + 5, endedBy: 'admin', endReason: 'admin_revoked' },
        ].sort(byHandle));
        // The ended sessions cannot be joined or left; c left the forum.
        const committed = await Promise.all([a, b, c].map((x) => store.findSessionByHandle(x!.handle)));
        expect(committed[2]?.apps).toEqual([apps[0], { ...apps[1], leftAt: T0 + 7 }]);
        expect([...seen.later].sort(byHandle)).toEqual(committed.map((x) => x!).sort(byHandle));
        // The next transaction reads the table: a change made outside it is seen.
        await store.leaveSessions([b!.handle], 'site', endBy(T0 + 8));
        const next = await store.transaction((tx) => tx.findSessionsByHandles([b!.handle]));
        expect(next).toEqual([await store.findSessionByHandle(b!.handle)]);
      });
    });

    describe('users read back in a revoking transaction', () => {
      it('findUserById gives the ended sessions\' users as they are, also once the transaction changed or deleted them', async () => {
        const alice = await store.createUser(userRecord({ username: 'alice-rb', email: 'alice@rb.example.test', emailVerified: true }));
        const bob = await store.createUser(userRecord({ username: 'bob-rb', email: 'bob@rb.example.test' }));
        const [a, b] = await createSessions([newSession({ userId: alice.id }), newSession({ userId: bob.id })]);
        const seen = await store.transaction(async (tx) => {
          await tx.endSessions([a!.handle, b!.handle], endBy(T0 + 5, 'admin_revoked', 'admin'));
          const ended = [await tx.findUserById(alice.id), await tx.findUserById(bob.id)];
          const changed = await tx.updateUser(alice.id, { disabled: true, updatedAt: T0 + 6 });
          const afterChange = await tx.findUserById(alice.id);
          await tx.deleteUser(bob.id);
          const afterDelete = await tx.findUserById(bob.id);
          return { ended, changed, afterChange, afterDelete };
        });
        expect(seen.ended).toEqual([alice, bob]);
        expect(seen.changed).toEqual({ ...alice, disabled: true, updatedAt: T0 + 6 });
        expect(seen.afterChange).toEqual(seen.changed);
        expect(seen.afterDelete).toBeNull();
        expect(await store.findUserById(alice.id)).toEqual(seen.changed);
        expect(await store.findUserById(bob.id)).toBeNull();
      });
    });

    describe('endUserSessions', () => {
      it('ends all of a user’s active sessions and no one else’s', async () => {
        const [a1, a2, a3, b1] = await createSessions([
          newSession({ userId: 'usr_a' }),
          newSession({ userId: 'usr_a' }),
          newSession({ userId: 'usr_a' }),
          newSession({ userId: 'usr_b' }),
        ]);
        const before = await store.endSessions([a3!.handle], endBy(T0 + 1));
        const events = await store.endUserSessions('usr_a', {}, endBy(T0 + 2, 'user_disabled', 'admin'));
        expect(events.map((e) => e.sid).sort()).toEqual([a1!.handle, a2!.handle].sort());
        expectGapless(events, 2);
        for (const e of events) expect(e).toMatchObject({ sub: 'usr_a', reason: 'user_disabled', actor: 'admin', at: T0 + 2, app: null });
        expect(await store.findSessionByHandle(a3!.handle)).toMatchObject({ endedAt: T0 + 1, endReason: 'logout' });
        expect(await store.findSessionByHandle(b1!.handle)).toEqual(b1);
        expect(await store.listSessionsByUser('usr_a')).toEqual([]);
        expect(await store.endUserSessions('usr_a', {}, endBy(T0 + 3))).toEqual([]);
        expect(await store.endUserSessions('usr_nobody', {}, endBy(T0 + 3))).toEqual([]);
        expect(await readLog(store)).toEqual([...before, ...events]);
      });

      it('keeps the excepted session', async () => {
        const [keep, a2, a3] = await createSessions([newSession({ userId: 'usr_a' }), newSession({ userId: 'usr_a' }), newSession({ userId: 'usr_a' })]);
        const events = await store.endUserSessions('usr_a', { exceptHandle: keep!.handle }, endBy(T0 + 1, 'password_changed', 'user'));
        expect(events.map((e) => e.sid).sort()).toEqual([a2!.handle, a3!.handle].sort());
        expect(await store.listSessionsByUser('usr_a')).toEqual([keep]);
        expect(await store.endUserSessions('usr_a', { exceptHandle: keep!.handle }, endBy(T0 + 2))).toEqual([]);
        // Excepting a handle that is not the user's keeps nothing of theirs.
        expect((await store.endUserSessions('usr_a', { exceptHandle: 'ses_nobody' }, endBy(T0 + 3))).map((e) => e.sid)).toEqual([keep!.handle]);
      });

      it('deletes the ended sessions’ logout tokens', async () => {
        const [keep, gone, other] = await createSessions([newSession({ userId: 'usr_a' }), newSession({ userId: 'usr_a' }), newSession({ userId: 'usr_b' })]);
        await store.createLogoutToken('lt_keep', keep!.handle, T0 + HOUR);
        await store.createLogoutToken('lt_gone', gone!.handle, T0 + HOUR);
        await store.createLogoutToken('lt_other', other!.handle, T0 + HOUR);
        await store.endUserSessions('usr_a', { exceptHandle: keep!.handle }, endBy(T0 + 1));
        expect(await store.consumeLogoutToken('lt_gone', T0 + 2)).toBeNull();
        expect(await store.consumeLogoutToken('lt_keep', T0 + 2)).toBe(keep!.handle);
        expect(await store.consumeLogoutToken('lt_other', T0 + 2)).toBe(other!.handle);
      });
    });

    describe('leaveSessions', () => {
      it('ends one app’s part: sets leftAt, logs it with app set, keeps the session active', async () => {
        const apps = [
          { clientId: 'site', joinedAt: T0, leftAt: null },
          { clientId: 'forum', joinedAt: T0 + 1, leftAt: null },
        ];
        const [a, b, c] = await createSessions([
          newSession({ userId: 'usr_a', apps }),
          newSession({ userId: 'usr_a', apps }),
          newSession({ userId: 'usr_a', apps: [apps[0]!] }),
        ]);
        const end = endBy(T0 + 5, 'user_revoked', 'app:forum');
        const events = await store.leaveSessions([a!.handle, b!.handle, c!.handle, 'ses_nobody'], 'forum', end);
        expectGapless(events);
        expect(events.map(({ cursor: _c, ...rest }) => rest).sort((x, y) => x.sid.localeCompare(y.sid))).toEqual(
          [a!, b!].map((s) => ({ sid: s.handle, sub: 'usr_a', reason: 'user_revoked', actor: 'app:forum', at: T0 + 5, app: 'forum' })).sort((x, y) => x.sid.localeCompare(y.sid)),
        );
        const after = await store.findSessionByHandle(a!.handle);
        expect(after).toMatchObject({ endedAt: null, endedBy: null, endReason: null });
        expect(after?.apps).toEqual([apps[0], { ...apps[1], leftAt: T0 + 5 }]);
        expect(await store.findSessionByHandle(c!.handle)).toEqual(c);
        expect(await store.listSessionsByUser('usr_a')).toHaveLength(3);
        expect(await readLog(store)).toEqual(events);
      });

      it('writes nothing when the app already left, never joined, or the session ended', async () => {
        const [a, ended] = await createSessions([
          newSession({ apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] }),
          newSession({ apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] }),
        ]);
        await store.endSessions([ended!.handle], endBy(T0 + 1));
        expect(await store.leaveSessions([a!.handle], 'forum', endBy(T0 + 2))).toHaveLength(1);
        expect(await store.leaveSessions([a!.handle], 'forum', endBy(T0 + 3))).toEqual([]);
        expect(await store.leaveSessions([a!.handle], 'shop', endBy(T0 + 3))).toEqual([]);
        expect(await store.leaveSessions([ended!.handle], 'forum', endBy(T0 + 3))).toEqual([]);
        expect(await store.leaveSessions([], 'forum', endBy(T0 + 3))).toEqual([]);
        expect((await store.findSessionByHandle(a!.handle))?.apps).toEqual([{ clientId: 'forum', joinedAt: T0, leftAt: T0 + 2 }]);
        expect((await store.findSessionByHandle(ended!.handle))?.apps).toEqual([{ clientId: 'forum', joinedAt: T0, leftAt: null }]);
        expect(await readLog(store)).toHaveLength(2);
      });

      it('leaves the session endable as a whole afterwards', async () => {
        const s = await store.createSession(newSession({ apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] }));
        const [left] = await store.leaveSessions([s.handle], 'forum', endBy(T0 + 1));
        const [ended] = await store.endSessions([s.handle], endBy(T0 + 2));
        expect(left).toMatchObject({ cursor: 1, app: 'forum' });
        expect(ended).toMatchObject({ cursor: 2, app: null, sid: s.handle });
      });
    });

    describe('endExpiredSessions', () => {
      it('ends only sessions whose idle deadline is at or before now, as expired by system', async () => {
        const now = T0 + HOUR;
        const [past, atNow, future, alreadyEnded] = await createSessions([
          newSession({ userId: 'usr_a', idleTimeoutMs: 30 * MINUTE }),
          newSession({ userId: 'usr_b', idleTimeoutMs: HOUR }),
          newSession({ userId: 'usr_c', idleTimeoutMs: HOUR + 1 }),
          newSession({ userId: 'usr_d', idleTimeoutMs: MINUTE }),
        ]);
        await store.endSessions([alreadyEnded!.handle], endBy(T0 + 1));
        const events = await store.endExpiredSessions(now, 100);
        expect(events.map((e) => e.sid).sort()).toEqual([past!.handle, atNow!.handle].sort());
        expectGapless(events, 2);
        for (const e of events) expect(e).toMatchObject({ reason: 'expired', actor: 'system', at: now, app: null });
        expect(events.find((e) => e.sid === past!.handle)?.sub).toBe('usr_a');
        expect(await store.findSessionByHandle(past!.handle)).toMatchObject({ endedAt: now, endedBy: 'system', endReason: 'expired' });
        expect(await store.findSessionByHandle(future!.handle)).toEqual(future);
        expect(await store.findSessionByHandle(alreadyEnded!.handle)).toMatchObject({ endedAt: T0 + 1, endReason: 'logout' });
        expect(await store.endExpiredSessions(now, 100)).toEqual([]);
      });

      it('ends a session at its absolute end even when the idle deadline is later', async () => {
        const s = await store.createSession(newSession({ idleTimeoutMs: 30 * MINUTE, expiresAt: T0 + HOUR }));
        // A caller passing an idle deadline past the absolute end must not extend the session's life.
        await store.touchSession(s.tokenId, T0 + 50 * MINUTE, T0 + 80 * MINUTE);
        expect(await store.endExpiredSessions(T0 + HOUR - 1, 10)).toEqual([]);
        expect((await store.endExpiredSessions(T0 + HOUR, 10)).map((e) => e.sid)).toEqual([s.handle]);
      });

      it('does not end a session whose idle deadline a touch moved past now', async () => {
        const s = await store.createSession(newSession({ idleTimeoutMs: 30 * MINUTE }));
        await store.touchSession(s.tokenId, T0 + 20 * MINUTE, T0 + 50 * MINUTE);
        expect(await store.endExpiredSessions(T0 + 40 * MINUTE, 10)).toEqual([]);
        expect(await store.endExpiredSessions(T0 + 50 * MINUTE, 10)).toHaveLength(1);
      });

      it('never ends as expired a session that a concurrent touch kept alive', async () => {
        const sessions = await createSessions(Array.from({ length: 10 }, () => newSession({ idleTimeoutMs: 30 * MINUTE })));
        const now = T0 + 30 * MINUTE;
        // The sweep and the touches race; whichever wins, a session ended as expired must
        // have a deadline at or before now, and a touched session that survived must keep it.
        const sweep = store.endExpiredSessions(now, 100);
        const touches = sessions.map((s) => store.touchSession(s.tokenId, now - 1, now + 30 * MINUTE));
        const [events] = await Promise.all([sweep, ...touches]);
        for (const s of sessions) {
          const after = await store.findSessionByHandle(s.handle);
          const ended = events.some((e) => e.sid === s.handle);
          expect(after?.endedAt).toBe(ended ? now : null);
          expect(after?.idleExpiresAt).toBe(ended ? now : now + 30 * MINUTE);
        }
      });

      it('respects the limit', async () => {
        const sessions = await createSessions(Array.from({ length: 5 }, (_, i) => newSession({ idleTimeoutMs: MINUTE + i })));
        const now = T0 + HOUR;
        const batches = [await store.endExpiredSessions(now, 2), await store.endExpiredSessions(now, 2), await store.endExpiredSessions(now, 2), await store.endExpiredSessions(now, 2)];
        expect(batches.map((b) => b.length)).toEqual([2, 2, 1, 0]);
        const all = batches.flat();
        expectGapless(all);
        expect(new Set(all.map((e) => e.sid))).toEqual(new Set(sessions.map((s) => s.handle)));
      });

      it('deletes the expired sessions’ logout tokens', async () => {
        const s = await store.createSession(newSession({ idleTimeoutMs: MINUTE }));
        await store.createLogoutToken('lt_s', s.handle, T0 + 2 * HOUR);
        await store.endExpiredSessions(T0 + HOUR, 10);
        expect(await store.consumeLogoutToken('lt_s', T0 + HOUR)).toBeNull();
      });
    });

    describe('revocation log', () => {
      it('pages with listRevocations(after, limit)', async () => {
        const sessions = await createSessions(Array.from({ length: 10 }, () => newSession()));
        for (const s of sessions) await store.endSessions([s.handle], endBy(T0 + 1));
        const page = async (after: number, limit: number) => (await store.listRevocations(after, limit)).map((e) => e.cursor);
        expect(await page(0, 3)).toEqual([1, 2, 3]);
        expect(await page(3, 3)).toEqual([4, 5, 6]);
        expect(await page(8, 5)).toEqual([9, 10]);
        expect(await page(10, 5)).toEqual([]);
        expect(await page(0, 100)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect((await store.listRevocations(4, 1))[0]).toEqual({ cursor: 5, sid: sessions[4]!.handle, sub: 'usr_default', reason: 'logout', actor: 'user', at: T0 + 1, app: null });
      });

      it('numbers entries one by one across every kind of end', async () => {
        const forum = [{ clientId: 'forum', joinedAt: T0, leftAt: null }];
        const s = await createSessions([
          newSession({ userId: 'usr_a', apps: forum }),
          newSession({ userId: 'usr_a', apps: forum }),
          newSession({ userId: 'usr_b', apps: forum }),
          newSession({ userId: 'usr_b', idleTimeoutMs: MINUTE }),
          newSession({ userId: 'usr_c' }),
        ]);
        const returned = [
          ...(await store.leaveSessions([s[0]!.handle, s[1]!.handle, s[2]!.handle], 'forum', endBy(T0 + 1))),
          ...(await store.endSessions([s[0]!.handle], endBy(T0 + 2))),
          ...(await store.endExpiredSessions(T0 + HOUR, 10)),
          ...(await store.endUserSessions('usr_a', {}, endBy(T0 + HOUR + 1))),
          ...(await store.endSessions([s[0]!.handle, 'ses_nobody'], endBy(T0 + HOUR + 2))),
          ...(await store.endUserSessions('usr_b', { exceptHandle: s[4]!.handle }, endBy(T0 + HOUR + 3))),
          ...(await store.endSessions([s[4]!.handle], endBy(T0 + HOUR + 4))),
        ];
        expect(returned).toHaveLength(3 + 1 + 1 + 1 + 0 + 1 + 1);
        expectGapless(returned);
        expect(await readLog(store)).toEqual(returned);
      });

      it('writes deferred log entries at the flush (or the commit), in order, gapless, on the objects it returned', async () => {
        const s = await createSessions([newSession({ userId: 'usr_a' }), newSession({ userId: 'usr_a' }), newSession({ userId: 'usr_b' }), newSession({ userId: 'usr_c' })]);
        const head = await store.revocationHead();
        let returned: RevocationEvent[] = [];
        const flushed = await store.transaction(async (tx) => {
          tx.deferRevocationLog();
          returned = [...(await tx.endSessions([s[0]!.handle], endBy(T0 + 1))), ...(await tx.endUserSessions('usr_b', {}, endBy(T0 + 2)))];
          // Not written yet: no cursors, nothing in the log, the counter untouched.
          expect(returned.map((e) => e.cursor)).toEqual([0, 0]);
          expect(await tx.listRevocations(head, 10)).toEqual([]);
          return tx.flushRevocationLog();
        });
        expect(flushed.map((e) => e.cursor)).toEqual([head + 1, head + 2]);
        // The very objects the ends returned now carry their cursors.
        expect(returned.map((e) => [e.cursor, e.sid])).toEqual([[head + 1, s[0]!.handle], [head + 2, s[2]!.handle]]);
        expect(await readLog(store)).toEqual(returned);
        // Deferred and never flushed by the caller: written before the commit, not lost.
        const late = await store.transaction(async (tx) => {
          tx.deferRevocationLog();
          return tx.endSessions([s[3]!.handle], endBy(T0 + 3));
        });
        expect(late.map((e) => e.cursor)).toEqual([head + 3]);
        expect((await readLog(store)).map((e) => e.sid)).toEqual([s[0]!.handle, s[2]!.handle, s[3]!.handle]);
        // Rolled back: nothing written, the cursor not spent.
        await expect(store.transaction(async (tx) => {
          tx.deferRevocationLog();
          await tx.endSessions([s[1]!.handle], endBy(T0 + 4));
          throw new Error('rolled back');
        })).rejects.toThrow('rolled back');
        expect(await store.revocationHead()).toBe(head + 3);
        expect(await store.findSessionByHandle(s[1]!.handle)).toMatchObject({ endedAt: null });
        // Only inside a transaction.
        expect(() => store.deferRevocationLog()).toThrow(/transaction/);
      });

      it('stays gapless when concurrent transactions defer their log entries', async () => {
        const sessions = await createSessions(Array.from({ length: 30 }, (_, i) => newSession({ userId: `usr_d${i % 5}`, createdAt: T0 + i })));
        const head = await store.revocationHead();
        const results = await Promise.all(sessions.map((session, i) => store.transaction(async (tx) => {
          tx.deferRevocationLog();
          const ended = i % 3 === 0 ? await tx.endUserSessions(session.userId, {}, endBy(T0 + HOUR + i)) : await tx.endSessions([session.handle], endBy(T0 + HOUR + i));
          await tx.appendAudit({ at: T0 + HOUR + i, actor: 'admin', action: 'test.deferred', userId: null, sessionHandle: null, clientId: null, ip: null, details: {} });
          await tx.flushRevocationLog();
          return ended;
        })));
        const returned = results.flat().sort(byCursor);
        expectGapless(returned, head + 1);
        expect(returned.map((e) => e.sid).sort()).toEqual(sessions.map((s) => s.handle).sort());
        expect((await readLog(store, 10)).slice(head)).toEqual(returned);
      });

      it('stays gapless under many concurrent ends, ending each session exactly once', async () => {
        const users = Array.from({ length: 8 }, (_, i) => `usr_c${i}`);
        const sessions = await createSessions(
          Array.from({ length: 48 }, (_, i) =>
            newSession({
              userId: users[i % users.length]!,
              createdAt: T0 + i,
              // Every fourth session is past its idle deadline, for the sweeper to race the others.
              idleTimeoutMs: i % 4 === 0 ? MINUTE : 2 * HOUR,
              apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }],
            }),
          ),
        );
        const h = (i: number) => sessions[i % sessions.length]!.handle;
        const now = T0 + HOUR;
        const calls: Promise<RevocationEvent[]>[] = [];
        for (let i = 0; i < 50; i++) {
          const at = now + i;
          switch (i % 5) {
            case 0: calls.push(store.endSessions([h(i)], endBy(at))); break;
            case 1: calls.push(store.endSessions([h(i), h(i + 1), h(i + 9), h(i)], endBy(at, 'admin_revoked', 'admin'))); break;
            case 2: calls.push(store.endUserSessions(users[i % users.length]!, { exceptHandle: h(i) }, endBy(at, 'password_changed'))); break;
            case 3: calls.push(store.leaveSessions([h(i), h(i + 2)], 'forum', endBy(at, 'logout', 'app:forum'))); break;
            default: calls.push(store.endExpiredSessions(now, 3));
          }
        }
        // Whatever the others did, these end every session that is left.
        for (const user of users) calls.push(store.endUserSessions(user, {}, endBy(now + 100, 'user_deleted', 'admin')));
        // A reader following the log meanwhile must only ever see a gapless prefix: no cursor
        // may become visible before every smaller one has.
        let done = false;
        const reads: number[][] = [];
        const follower = (async () => {
          while (!done) {
            reads.push((await store.listRevocations(0, 1000)).map((e) => e.cursor));
            await new Promise((resolve) => setTimeout(resolve, 0));
          }
        })();
        const results = await Promise.all(calls).finally(() => (done = true));
        await follower;
        expect(reads.length).toBeGreaterThan(0);
        for (const seen of reads) expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1));

        const returned = results.flat().sort(byCursor);
        expectGapless(returned);
        expect(await readLog(store, 10)).toEqual(returned);

        const whole = returned.filter((e) => e.app === null);
        expect(whole.map((e) => e.sid).sort()).toEqual(sessions.map((s) => s.handle).sort());
        for (const event of whole) {
          const session = await store.findSessionByHandle(event.sid);
          expect(session).toMatchObject({ endedAt: event.at, endedBy: event.actor, endReason: event.reason });
          expect(event.sub).toBe(session?.userId);
          // An app can only leave a session that is still going.
          const left = returned.filter((e) => e.sid === event.sid && e.app !== null);
          expect(left.length).toBeLessThanOrEqual(1);
          for (const l of left) expect(l.cursor).toBeLessThan(event.cursor);
        }
        for (const user of users) expect(await store.listSessionsByUser(user)).toEqual([]);
      });

      it('writes one entry when many callers end the same session at once', async () => {
        const [a, b] = await createSessions([newSession({ userId: 'usr_a' }), newSession({ userId: 'usr_a' })]);
        const calls = Array.from({ length: 20 }, (_, i) =>
          i % 3 === 2 ? store.endUserSessions('usr_a', {}, endBy(T0 + i)) : store.endSessions(i % 2 ? [a!.handle, b!.handle] : [b!.handle], endBy(T0 + i)),
        );
        const returned = (await Promise.all(calls)).flat().sort(byCursor);
        expect(returned.map((e) => e.cursor)).toEqual([1, 2]);
        expect(returned.map((e) => e.sid).sort()).toEqual([a!.handle, b!.handle].sort());
        expect(await readLog(store)).toEqual(returned);
      });
    });

    describe('transaction', () => {
      it('commits and returns the callback’s result', async () => {
        const s = await store.createSession(newSession());
        const result = await store.transaction(async (tx) => {
          const user = await tx.createUser(userRecord({ username: 'alice' }));
          // Reads inside the transaction see its own writes.
          expect(await tx.findUserByLogin('ALICE')).toEqual(user);
          const events = await tx.endSessions([s.handle], endBy(T0 + 1));
          await tx.appendAudit(auditEvent({ userId: user.id, action: 'sessions.revoked' }));
          return { user, events };
        });
        expect(await store.findUserById(result.user.id)).toEqual(result.user);
        expect(result.events.map((e) => e.cursor)).toEqual([1]);
        expect(await readLog(store)).toEqual(result.events);
        expect(await store.listAudit({ limit: 10 })).toHaveLength(1);
      });

      it('rolls everything back when the callback throws, and the next entry takes the next cursor', async () => {
        const [first, second, third] = await createSessions([
          newSession({ userId: 'usr_a', apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] }),
          newSession({ userId: 'usr_a', apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] }),
          newSession({ userId: 'usr_b' }),
        ]);
        const before = await store.endSessions([third!.handle], endBy(T0 + 1));
        await store.createLogoutToken('lt_first', first!.handle, T0 + HOUR);
        const failure = new Error('boom');
        let inside: RevocationEvent[] = [];
        await expect(
          store.transaction(async (tx) => {
            await tx.createUser(userRecord({ id: 'usr_rolled_back' }));
            await tx.createApp(appRecord({ clientId: 'app_rolled_back' }));
            inside = [
              ...(await tx.leaveSessions([second!.handle], 'forum', endBy(T0 + 2))),
              ...(await tx.endSessions([first!.handle], endBy(T0 + 2))),
            ];
            expect(await tx.joinSession(second!.handle, 'shop', T0 + 2)).toBe(true);
            await tx.touchSession(second!.tokenId, T0 + 2, T0 + 2 + 30 * MINUTE);
            await tx.appendAudit(auditEvent({ action: 'should.vanish' }));
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(inside.map((e) => e.cursor)).toEqual([2, 3]);

        expect(await store.findUserById('usr_rolled_back')).toBeNull();
        expect(await store.findApp('app_rolled_back')).toBeNull();
        expect(await store.findSessionByHandle(first!.handle)).toEqual(first);
        expect(await store.findSessionByHandle(second!.handle)).toEqual(second);
        expect(await store.listAudit({ limit: 10 })).toEqual([]);
        expect(await readLog(store)).toEqual(before);
        expect(await store.consumeLogoutToken('lt_first', T0 + 3)).toBe(first!.handle);

        const after = await store.endSessions([first!.handle], endBy(T0 + 4));
        expect(after.map((e) => e.cursor)).toEqual([2]);
        expect(await readLog(store)).toEqual([...before, ...after]);
      });

      it('rolls back when a store operation inside it fails', async () => {
        const s = await store.createSession(newSession());
        await store.createUser(userRecord({ username: 'alice' }));
        await expectCode(
          store.transaction(async (tx) => {
            await tx.endSessions([s.handle], endBy(T0 + 1));
            return tx.createUser(userRecord({ username: 'Alice' }));
          }),
          'USER_CONFLICT',
        );
        expect(await store.findSessionByHandle(s.handle)).toEqual(s);
        expect(await store.listRevocations(0, 10)).toEqual([]);
      });

      it('joins the outer transaction when an operation opens its own', async () => {
        // endSessions, endUserSessions, leaveSessions and joinSession each run in a
        // transaction of their own; inside store.transaction they must join the outer one,
        // or the throw below could not undo them.
        const [a, b] = await createSessions([
          newSession({ userId: 'usr_a', apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] }),
          newSession({ userId: 'usr_b' }),
        ]);
        await expect(
          store.transaction(async (tx) => {
            await tx.joinSession(a!.handle, 'shop', T0 + 1);
            await tx.leaveSessions([a!.handle], 'forum', endBy(T0 + 1));
            await tx.endUserSessions('usr_a', {}, endBy(T0 + 1));
            await tx.endSessions([b!.handle], endBy(T0 + 1));
            await tx.endExpiredSessions(T0 + 100 * HOUR, 10);
            throw new Error('undo');
          }),
        ).rejects.toThrow('undo');
        expect(await store.findSessionByHandle(a!.handle)).toEqual(a);
        expect(await store.findSessionByHandle(b!.handle)).toEqual(b);
        expect(await store.listRevocations(0, 10)).toEqual([]);
      });

      it('joins the outer transaction when store.transaction or a store operation is called inside it', async () => {
        const s = await store.createSession(newSession());
        const nested = store.transaction(async () => {
          const user = await store.transaction(async (inner) => {
            await inner.endSessions([s.handle], endBy(T0 + 1));
            return inner.createUser(userRecord({ username: 'nested' }));
          });
          // Called on the store rather than on tx: still inside, so it sees the writes.
          expect(await store.findUserById(user.id)).toEqual(user);
          expect((await store.listRevocations(0, 10)).map((e) => e.sid)).toEqual([s.handle]);
          await store.appendAudit(auditEvent({ action: 'nested' }));
          throw new Error('undo all');
        });
        await expect(within(5000, nested, 'a nested transaction')).rejects.toThrow('undo all');
        expect(await store.findUserByLogin('nested')).toBeNull();
        expect(await store.findSessionByHandle(s.handle)).toEqual(s);
        expect(await store.listRevocations(0, 10)).toEqual([]);
        expect(await store.listAudit({ limit: 10 })).toEqual([]);
      });

      it('is isolated from statements outside it', async () => {
        const s = await store.createSession(newSession());
        let entered!: () => void;
        let release!: () => void;
        const inside = new Promise<void>((resolve) => (entered = resolve));
        const gate = new Promise<void>((resolve) => (release = resolve));
        const pending = store.transaction(async (tx) => {
          await tx.createUser(userRecord({ id: 'usr_uncommitted', username: 'uncommitted' }));
          await tx.endSessions([s.handle], endBy(T0 + 1));
          entered();
          await gate;
          throw new Error('roll back');
        });
        await inside;
        // Started while the transaction is open: these may wait for it, but must neither see
        // its writes nor be undone with it.
        const reads = Promise.all([store.findUserById('usr_uncommitted'), store.findSessionByHandle(s.handle), store.listRevocations(0, 10)]);
        const write = store.createUser(userRecord({ id: 'usr_outside', username: 'outside' }));
        release();
        await expect(pending).rejects.toThrow('roll back');
        const [user, session, log] = await reads;
        expect(user).toBeNull();
        expect(session).toEqual(s);
        expect(log).toEqual([]);
        await write;
        expect((await store.findUserById('usr_outside'))?.username).toBe('outside');
      });

      it('keeps the log gapless when concurrent transactions commit and roll back', async () => {
        const sessions = await createSessions(Array.from({ length: 20 }, () => newSession()));
        const outcomes = await Promise.allSettled(
          sessions.map((s, i) =>
            store.transaction(async (tx) => {
              const events = await tx.endSessions([s.handle], endBy(T0 + i));
              await tx.appendAudit(auditEvent({ sessionHandle: s.handle, action: 'sessions.revoked' }));
              if (i % 2 === 1) throw new Error(`roll back ${i}`);
              return events;
            }),
          ),
        );
        const committed = outcomes.flatMap((o) => (o.status === 'fulfilled' ? o.value : [])).sort(byCursor);
        expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(10);
        expectGapless(committed);
        expect(await readLog(store)).toEqual(committed);
        expect(committed.map((e) => e.sid).sort()).toEqual(sessions.filter((_, i) => i % 2 === 0).map((s) => s.handle).sort());
        for (const [i, s] of sessions.entries()) expect((await store.findSessionByHandle(s.handle))?.endedAt).toBe(i % 2 === 0 ? T0 + i : null);
        expect(await store.listAudit({ limit: 100 })).toHaveLength(10);
      });
    });

    describe('logout tokens', () => {
      it('consumes a token once only', async () => {
        const s = await store.createSession(newSession());
        await store.createLogoutToken('lt_1', s.handle, T0 + HOUR);
        expect(await store.consumeLogoutToken('lt_1', T0 + 1)).toBe(s.handle);
        expect(await store.consumeLogoutToken('lt_1', T0 + 2)).toBeNull();
        expect(await store.consumeLogoutToken('lt_nobody', T0 + 2)).toBeNull();
      });

      it('returns null for an expired token', async () => {
        const s = await store.createSession(newSession());
        await store.createLogoutToken('lt_old', s.handle, T0 + MINUTE);
        await store.createLogoutToken('lt_edge', s.handle, T0 + MINUTE);
        await store.createLogoutToken('lt_fresh', s.handle, T0 + MINUTE);
        expect(await store.consumeLogoutToken('lt_old', T0 + 2 * MINUTE)).toBeNull();
        expect(await store.consumeLogoutToken('lt_edge', T0 + MINUTE)).toBeNull();
        expect(await store.consumeLogoutToken('lt_fresh', T0 + MINUTE - 1)).toBe(s.handle);
      });

      it('lets only one of many concurrent consumers have a token', async () => {
        const s = await store.createSession(newSession());
        await store.createLogoutToken('lt_race', s.handle, T0 + HOUR);
        const results = await Promise.all(Array.from({ length: 10 }, () => store.consumeLogoutToken('lt_race', T0 + 1)));
        expect(results.filter((r) => r !== null)).toEqual([s.handle]);
      });

      it('purges expired tokens and returns how many', async () => {
        const s = await store.createSession(newSession());
        await store.createLogoutToken('lt_a', s.handle, T0 + MINUTE);
        await store.createLogoutToken('lt_b', s.handle, T0 + 2 * MINUTE);
        await store.createLogoutToken('lt_c', s.handle, T0 + HOUR);
        expect(await store.purgeLogoutTokens(T0)).toBe(0);
        expect(await store.purgeLogoutTokens(T0 + 2 * MINUTE)).toBe(2);
        expect(await store.purgeLogoutTokens(T0 + 2 * MINUTE)).toBe(0);
        expect(await store.consumeLogoutToken('lt_c', T0 + 2 * MINUTE)).toBe(s.handle);
      });
    });

    describe('admin tokens', () => {
      it('creates, finds and counts admin tokens', async () => {
        expect(await store.countAdminTokens()).toBe(0);
        const token = { id: 'adm_1', secretHash: 'c'.repeat(64), label: 'bootstrap', createdAt: T0 };
        await store.createAdminToken(token);
        await store.createAdminToken({ id: 'adm_2', secretHash: 'd'.repeat(64), label: 'ci', createdAt: T0 + 1 });
        expect(await store.findAdminToken('adm_1')).toEqual(token);
        expect(await store.findAdminToken('adm_nobody')).toBeNull();
        expect(await store.countAdminTokens()).toBe(2);
      });
    });

    describe('admin console sign-ins', () => {
      it('creates, finds, ends once, and purges expired or ended ones', async () => {
        const live = { id: 'acs_live', secretHash: 'e'.repeat(64), createdAt: T0, expiresAt: T0 + HOUR, endedAt: null };
        const old = { id: 'acs_old', secretHash: 'f'.repeat(64), createdAt: T0 - 2 * HOUR, expiresAt: T0 - HOUR, endedAt: null };
        await store.createConsoleSession(live);
        await store.createConsoleSession(old);
        await store.createConsoleSession({ ...live, id: 'acs_out' });
        expect(await store.findConsoleSession('acs_live')).toEqual(live);
        expect(await store.findConsoleSession('acs_nobody')).toBeNull();
        expect(await store.endConsoleSession('acs_out', T0 + 1)).toBe(true);
        expect(await store.endConsoleSession('acs_out', T0 + 2)).toBe(false);
        expect(await store.endConsoleSession('acs_nobody', T0 + 2)).toBe(false);
        expect((await store.findConsoleSession('acs_out'))?.endedAt).toBe(T0 + 1);
        expect(await store.purgeConsoleSessions(T0 + 10)).toBe(2);
        expect(await store.findConsoleSession('acs_old')).toBeNull();
        expect(await store.findConsoleSession('acs_out')).toBeNull();
        expect(await store.findConsoleSession('acs_live')).toEqual(live);
      });
    });

    describe('user search', () => {
      it('finds users by a part of the username or email, case-insensitively, ordered by username, up to the limit', async () => {
        await store.createUser(userRecord({ id: 'usr_s1', username: 'Zoe', email: 'zoe@Forum.example' }));
        await store.createUser(userRecord({ id: 'usr_s2', username: 'alice', email: 'a@shop.example' }));
        await store.createUser(userRecord({ id: 'usr_s3', username: 'forum_admin', email: null }));
        await store.createUser(userRecord({ id: 'usr_s4', username: 'b%_', email: null }));
        const ids = async (q: string, limit = 10) => (await store.searchUsers(q, limit)).map((u) => u.id);
        expect(await ids('FORUM')).toEqual(['usr_s3', 'usr_s1']);
        expect(await ids('ALI')).toEqual(['usr_s2']);
        expect(await ids('')).toEqual(['usr_s2', 'usr_s4', 'usr_s3', 'usr_s1']);
        expect(await ids('', 2)).toEqual(['usr_s2', 'usr_s4']);
        // % and _ are letters here, not wildcards.
        expect(await ids('%')).toEqual(['usr_s4']);
        expect(await ids('a_')).toEqual([]);
        expect(await ids('nobody')).toEqual([]);
        expect((await store.searchUsers('alice', 1))[0]).toEqual(await store.findUserById('usr_s2'));
      });
    });

    describe('revocation log for the console', () => {
      it('lists newest first, pages with before, filters by user, reason and app (its own part or a session it joined)', async () => {
        const [a, b, c, d] = await createSessions([
          newSession({ userId: 'usr_a', apps: [{ clientId: 'forum', joinedAt: T0, leftAt: null }] }),
          newSession({ userId: 'usr_a', apps: [{ clientId: 'forum_two', joinedAt: T0, leftAt: null }] }),
          newSession({ userId: 'usr_b', apps: [{ clientId: 'shop', joinedAt: T0, leftAt: null }, { clientId: 'forum', joinedAt: T0, leftAt: null }] }),
          newSession({ userId: 'usr_b', apps: [{ clientId: 'shop', joinedAt: T0, leftAt: null }] }),
        ]);
        await store.endSessions([a!.handle], endBy(T0 + 1, 'logout'));
        await store.leaveSessions([c!.handle], 'forum', endBy(T0 + 2, 'admin_revoked', 'admin'));
        await store.endSessions([b!.handle], endBy(T0 + 3, 'admin_revoked', 'admin'));
        await store.endSessions([c!.handle, d!.handle], endBy(T0 + 4, 'expired', 'system'));
        const cursors = async (filter: Partial<Parameters<Store['findRevocations']>[0]> = {}) => (await store.findRevocations({ limit: 100, ...filter })).map((e) => e.cursor);
        expect(await cursors()).toEqual([5, 4, 3, 2, 1]);
        expect(await cursors({ limit: 2 })).toEqual([5, 4]);
        expect(await cursors({ before: 4, limit: 2 })).toEqual([3, 2]);
        expect(await cursors({ userId: 'usr_a' })).toEqual([3, 1]);
        expect(await cursors({ reason: 'admin_revoked' })).toEqual([3, 2]);
        // forum: its part of c (2), session a it joined (1), and c's end (it had joined c). Not forum_two's session b.
        expect(await cursors({ clientId: 'forum' })).toEqual([4, 2, 1]);
        expect(await cursors({ clientId: 'forum_two' })).toEqual([3]);
        expect(await cursors({ clientId: 'shop', reason: 'expired' })).toEqual([5, 4]);
        expect(await cursors({ clientId: 'shop', userId: 'usr_a' })).toEqual([]);
        expect(await cursors({ clientId: 'nobody' })).toEqual([]);
        expect((await store.findRevocations({ clientId: 'forum', reason: 'admin_revoked', limit: 5 }))[0]).toEqual({ cursor: 2, sid: c!.handle, sub: 'usr_b', reason: 'admin_revoked', actor: 'admin', at: T0 + 2, app: 'forum' });
      });

      it('counts entries by reason since a moment', async () => {
        const sessions = await createSessions(Array.from({ length: 4 }, () => newSession()));
        await store.endSessions([sessions[0]!.handle], endBy(T0, 'logout'));
        await store.endSessions([sessions[1]!.handle], endBy(T0 + HOUR, 'logout'));
        await store.endSessions([sessions[2]!.handle], endBy(T0 + HOUR + 1, 'expired', 'system'));
        await store.endSessions([sessions[3]!.handle], endBy(T0 + HOUR + 2, 'logout'));
        expect(await store.countRevocationsSince(T0 + HOUR)).toEqual({ logout: 2, expired: 1 });
        expect(await store.countRevocationsSince(T0 + 2 * HOUR)).toEqual({});
      });
    });

    describe('signing keys', () => {
      const key = (kid: string, activatesAt: number, overrides: Partial<SigningKeyRecord> = {}): SigningKeyRecord => ({
        kid, alg: 'EdDSA', publicJwk: { kty: 'OKP', crv: 'Ed25519', x: `x-${kid}`, kid }, privateJwk: { kty: 'OKP', crv: 'Ed25519', x: `x-${kid}`, d: `d-${kid}`, kid },
        activatesAt, retiresAt: activatesAt + HOUR, expiresAt: activatesAt + 2 * HOUR, createdAt: T0, ...overrides,
      });

      it('inserts once per kid: a second insert of the same kid keeps the first', async () => {
        expect(await store.insertSigningKey(key('tk-1', T0))).toBe(true);
        expect(await store.insertSigningKey(key('tk-1', T0, { publicJwk: { other: true } }))).toBe(false);
        const [only] = await store.listSigningKeys(T0);
        expect(only).toEqual(key('tk-1', T0));
      });

      it('lists published keys oldest first and drops expired ones', async () => {
        await store.insertSigningKey(key('tk-2', T0 + HOUR));
        await store.insertSigningKey(key('tk-1', T0));
        expect((await store.listSigningKeys(T0)).map((k) => k.kid)).toEqual(['tk-1', 'tk-2']);
        expect((await store.listSigningKeys(T0 + 2 * HOUR)).map((k) => k.kid)).toEqual(['tk-2']);
        expect(await store.deleteExpiredSigningKeys(T0 + 2 * HOUR)).toBe(1);
        expect((await store.listSigningKeys(T0)).map((k) => k.kid)).toEqual(['tk-2']);
      });

      it('lets exactly one of many concurrent inserts of a kid win', async () => {
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.insertSigningKey(key('tk-9', T0, { publicJwk: { n: i } }))));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await store.listSigningKeys(T0)).toHaveLength(1);
      });
    });

    describe('refresh tokens', () => {
      const token = { id: 'rt_1', secretHash: 'e'.repeat(64), handle: 'ses_r', clientId: 'forum', createdAt: T0, expiresAt: T0 + HOUR, usedAt: null, scope: null };

      it('creates and finds; unknown ids are null', async () => {
        await store.createRefreshToken(token);
        expect(await store.findRefreshToken('rt_1')).toEqual(token);
        expect(await store.findRefreshToken('rt_nobody')).toBeNull();
      });

      it('keeps the scope of an OIDC grant; a token created without one reads back null', async () => {
        await store.createRefreshToken({ ...token, id: 'rt_s', scope: 'openid email' });
        expect((await store.findRefreshToken('rt_s'))!.scope).toBe('openid email');
        const { scope: _none, ...bare } = token;
        await store.createRefreshToken({ ...bare, id: 'rt_b' });
        expect((await store.findRefreshToken('rt_b'))!.scope).toBeNull();
      });

      it('is rotated exactly once, also under concurrency: the old one spent, only the winner\'s successor stored', async () => {
        await store.createRefreshToken(token);
        const next = (i: number) => ({ ...token, id: `rt_next${i}`, secretHash: String(i % 10).repeat(64), createdAt: T0 + 1, scope: 'openid' });
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.rotateRefreshToken('rt_1', T0 + 1, next(i))));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await store.findRefreshToken('rt_1'))!.usedAt).toBe(T0 + 1);
        const winner = results.indexOf(true);
        for (let i = 0; i < 10; i++) {
          if (i === winner) expect(await store.findRefreshToken(`rt_next${i}`)).toEqual(next(i));
          else expect(await store.findRefreshToken(`rt_next${i}`)).toBeNull();
        }
        expect(await store.rotateRefreshToken('rt_1', T0 + 2, next(10))).toBe(false);
        expect(await store.rotateRefreshToken('rt_nobody', T0 + 2, next(11))).toBe(false);
        expect(await store.findRefreshToken('rt_next10')).toBeNull();
        expect(await store.findRefreshToken('rt_next11')).toBeNull();
        // The successor is an ordinary token: it rotates in turn.
        expect(await store.rotateRefreshToken(`rt_next${winner}`, T0 + 3, next(12))).toBe(true);
      });

      it('purges tokens past their expiry', async () => {
        await store.createRefreshToken(token);
        await store.createRefreshToken({ ...token, id: 'rt_2', expiresAt: T0 + 2 * HOUR });
        expect(await store.purgeRefreshTokens(T0 + HOUR)).toBe(1);
        expect(await store.findRefreshToken('rt_1')).toBeNull();
        expect(await store.findRefreshToken('rt_2')).not.toBeNull();
      });
    });

    describe('authorization codes', () => {
      const code = { id: 'ac_1', secretHash: 'f'.repeat(64), clientId: 'forum', handle: 'ses_c', userId: 'u1', redirectUri: 'https://forum.example.test/cb', codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', nonce: 'n-1', scope: 'openid', authTime: T0 - HOUR, createdAt: T0, expiresAt: T0 + MINUTE, usedAt: null };

      it('creates and finds every field; unknown ids are null', async () => {
        await store.createAuthorizationCode(code);
        expect(await store.findAuthorizationCode('ac_1')).toEqual(code);
        await store.createAuthorizationCode({ ...code, id: 'ac_2', codeChallenge: null, nonce: null });
        expect(await store.findAuthorizationCode('ac_2')).toMatchObject({ codeChallenge: null, nonce: null });
        expect(await store.findAuthorizationCode('ac_nobody')).toBeNull();
      });

      it('is redeemed exactly once, also under concurrency, and the redemption joins the client to the session', async () => {
        const s = await store.createSession(newSession());
        await store.createAuthorizationCode({ ...code, handle: s.handle });
        const results = await Promise.all(Array.from({ length: 10 }, () => store.redeemAuthorizationCode('ac_1', T0 + 1)));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await store.findAuthorizationCode('ac_1'))!.usedAt).toBe(T0 + 1);
        expect((await store.findSessionByHandle(s.handle))!.apps).toEqual([{ clientId: 'forum', joinedAt: T0 + 1, leftAt: null }]);
        expect(await store.redeemAuthorizationCode('ac_1', T0 + 2)).toBe(false);
        expect(await store.redeemAuthorizationCode('ac_nobody', T0 + 2)).toBe(false);
      });

      it('a redemption that loses the race sees the winner\'s join committed, so a revocation after it reaches the winner', async () => {
        // The race of two concurrent redemptions: the loser revokes (the app leaves the
        // session) right after its redemption fails. Whatever the interleaving, the app must
        // end up outside the session: the winner's join cannot land after the loser's leave.
        for (let round = 0; round < 5; round++) {
          const s = await store.createSession(newSession());
          const id = `ac_race_${round}`;
          await store.createAuthorizationCode({ ...code, id, handle: s.handle });
          const redeem = async (at: number) => {
            if (await store.redeemAuthorizationCode(id, at)) return 'won';
            await store.leaveSessions([s.handle], 'forum', endBy(at, 'token_theft', 'app:forum'));
            return 'replay';
          };
          const outcomes = await Promise.all(Array.from({ length: 4 }, (_, i) => redeem(T0 + 1 + i)));
          expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
          const apps = (await store.findSessionByHandle(s.handle))!.apps;
          expect(apps).toHaveLength(1);
          expect(apps[0]!.clientId).toBe('forum');
          expect(apps[0]!.leftAt).not.toBeNull();
        }
      });

      it('a code of an ended session is spent but joins nothing; a client already a member stays one', async () => {
        const ended = await store.createSession(newSession());
        await store.endSessions([ended.handle], endBy(T0));
        await store.createAuthorizationCode({ ...code, handle: ended.handle });
        expect(await store.redeemAuthorizationCode('ac_1', T0 + 1)).toBe(true);
        expect((await store.findSessionByHandle(ended.handle))!.apps).toEqual([]);

        const member = await store.createSession(newSession());
        expect(await store.joinSession(member.handle, 'forum', T0)).toBe(true);
        await store.createAuthorizationCode({ ...code, id: 'ac_2', handle: member.handle });
        expect(await store.redeemAuthorizationCode('ac_2', T0 + 1)).toBe(true);
        expect((await store.findSessionByHandle(member.handle))!.apps).toEqual([{ clientId: 'forum', joinedAt: T0, leftAt: null }]);
      });

      it('purges codes past their expiry', async () => {
        await store.createAuthorizationCode(code);
        await store.createAuthorizationCode({ ...code, id: 'ac_2', expiresAt: T0 + HOUR });
        expect(await store.purgeAuthorizationCodes(T0 + MINUTE)).toBe(1);
        expect(await store.findAuthorizationCode('ac_1')).toBeNull();
        expect(await store.findAuthorizationCode('ac_2')).not.toBeNull();
      });
    });

    describe('consents', () => {
      it('saves, replaces, lists newest first and deletes a user\'s consents', async () => {
        await store.saveConsent({ userId: 'u1', clientId: 'a', scope: 'openid', createdAt: T0 });
        await store.saveConsent({ userId: 'u1', clientId: 'b', scope: 'openid', createdAt: T0 + 1 });
        await store.saveConsent({ userId: 'u2', clientId: 'a', scope: 'openid', createdAt: T0 + 2 });
        await store.saveConsent({ userId: 'u1', clientId: 'a', scope: 'openid email', createdAt: T0 + 3 });
        expect(await store.findConsent('u1', 'a')).toEqual({ userId: 'u1', clientId: 'a', scope: 'openid email', createdAt: T0 + 3 });
        expect((await store.listConsents('u1')).map((c) => c.clientId)).toEqual(['a', 'b']);
        expect(await store.deleteConsent('u1', 'a')).toBe(true);
        expect(await store.deleteConsent('u1', 'a')).toBe(false);
        expect(await store.findConsent('u1', 'a')).toBeNull();
        expect(await store.findConsent('u2', 'a')).not.toBeNull();
      });

      it('go with a deleted user and with a deleted app', async () => {
        const user = await store.createUser(userRecord({ username: 'consenter' }));
        const app = await store.createApp(appRecord());
        await store.saveConsent({ userId: user.id, clientId: app.clientId, scope: 'openid', createdAt: T0 });
        await store.saveConsent({ userId: user.id, clientId: 'other', scope: 'openid', createdAt: T0 });
        await store.saveConsent({ userId: 'u9', clientId: app.clientId, scope: 'openid', createdAt: T0 });
        await store.deleteApp(app.clientId);
        expect(await store.findConsent(user.id, app.clientId)).toBeNull();
        expect(await store.findConsent('u9', app.clientId)).toBeNull();
        expect(await store.findConsent(user.id, 'other')).not.toBeNull();
        await store.deleteUser(user.id);
        expect(await store.listConsents(user.id)).toEqual([]);
      });

    });

    describe('revocation head', () => {
      it('is 0 on an empty log and the newest cursor afterwards, never counting a rolled-back end', async () => {
        expect(await store.revocationHead()).toBe(0);
        const [a, b] = await createSessions([newSession(), newSession()]);
        await store.endSessions([a!.handle], { at: T0, reason: 'logout', actor: 'user' });
        expect(await store.revocationHead()).toBe(1);
        await expect(store.transaction(async (tx) => {
          await tx.endSessions([b!.handle], { at: T0, reason: 'logout', actor: 'user' });
          throw new Error('roll back');
        })).rejects.toThrow('roll back');
        expect(await store.revocationHead()).toBe(1);
        await store.endSessions([b!.handle], { at: T0, reason: 'logout', actor: 'user' });
        expect(await store.revocationHead()).toBe(2);
      });
    });

    describe('retention purges', () => {
      it('purgeEndedSessions deletes only sessions ended before the cut-off, oldest end first, at most limit per call', async () => {
        const sessions = await createSessions(Array.from({ length: 6 }, () => newSession()));
        const [a, b, c, d, active1, active2] = sessions;
        // Ended at T0+1 (c), T0+2 (a), T0+3 (b): out of order with creation on purpose.
        await store.endSessions([c!.handle], endBy(T0 + 1));
        await store.endSessions([a!.handle], endBy(T0 + 2));
        await store.endSessions([b!.handle], endBy(T0 + 3));
        await store.endSessions([d!.handle], endBy(T0 + 10)); // ended after the cut-off
        expect(await store.purgeEndedSessions(T0 + 5, 2)).toBe(2);
        expect((await store.findSessionsByHandles(sessions.map((s) => s.handle))).map((s) => s.handle).sort()).toEqual([b, d, active1, active2].map((s) => s!.handle).sort());
        expect(await store.purgeEndedSessions(T0 + 5, 2)).toBe(1);
        expect(await store.purgeEndedSessions(T0 + 5, 2)).toBe(0);
        // Active sessions are never purged, whatever the cut-off; a late cut-off takes d too.
        expect(await store.purgeEndedSessions(T0 + 100 * HOUR, 100)).toBe(1);
        expect((await store.findSessionsByHandles(sessions.map((s) => s.handle))).map((s) => s.handle).sort()).toEqual([active1!.handle, active2!.handle].sort());
        expect((await store.findSessionByTokenId(active1!.tokenId))?.endedAt).toBeNull();
      });

      it('purgeRevocations deletes the oldest entries before the cut-off and keeps a contiguous tail', async () => {
        const sessions = await createSessions(Array.from({ length: 5 }, () => newSession()));
        // Written at T0+1, T0+2, T0+9 (young), T0+3 (old but after a young one), T0+4.
        for (const [i, at] of [1, 2, 9, 3, 4].entries()) await store.endSessions([sessions[i]!.handle], endBy(T0 + at));
        expect(await store.purgeRevocations(T0 + 5, 1)).toBe(1);
        expect((await readLog(store)).map((e) => e.cursor)).toEqual([2, 3, 4, 5]);
        // Stops at the first young entry (cursor 3): entry 4, though old, stays, so no hole.
        expect(await store.purgeRevocations(T0 + 5, 100)).toBe(1);
        expect((await readLog(store)).map((e) => e.cursor)).toEqual([3, 4, 5]);
        expect(await store.purgeRevocations(T0 + 5, 100)).toBe(0);
        // Cursors keep counting from the head, and reading after an old cursor starts at the tail.
        expect(await store.revocationHead()).toBe(5);
        expect((await store.listRevocations(0, 10)).map((e) => e.cursor)).toEqual([3, 4, 5]);
        const [next] = await store.endSessions([(await store.createSession(newSession())).handle], endBy(T0 + 20));
        expect(next!.cursor).toBe(6);
        expect(await store.purgeRevocations(T0 + 100, 100)).toBe(4);
        expect(await readLog(store)).toEqual([]);
      });

      it('firstRevocationSince gives the lowest cursor written at or after a time, null when none', async () => {
        expect(await store.firstRevocationSince(T0)).toBeNull();
        const sessions = await createSessions(Array.from({ length: 4 }, () => newSession()));
        // Written at T0+5, T0+1, T0+7, T0+3: times need not follow cursors.
        for (const [i, at] of [5, 1, 7, 3].entries()) await store.endSessions([sessions[i]!.handle], endBy(T0 + at));
        expect(await store.firstRevocationSince(T0)).toBe(1);
        expect(await store.firstRevocationSince(T0 + 2)).toBe(1);
        expect(await store.firstRevocationSince(T0 + 6)).toBe(3);
        expect(await store.firstRevocationSince(T0 + 7)).toBe(3);
        expect(await store.firstRevocationSince(T0 + 8)).toBeNull();
      });

      it('purgeDeliveredDeliveries deletes delivered ones created before the cut-off with their links; pending and dead stay', async () => {
        const base = { sub: 'usr_x', clientId: 'forum', channel: 'backchannel' as const, reason: 'logout' as const, horizonAt: T0 + HOUR };
        await store.enqueueDeliveries([
          { ...base, cursor: 1, sid: 'ses_a', handles: ['ses_a'], createdAt: T0 + 1 },
          { ...base, cursor: 2, sid: 'ses_b', handles: ['ses_b'], createdAt: T0 + 2 },
          { ...base, cursor: 3, sid: null, handles: ['ses_c', 'ses_d'], createdAt: T0 + 3 },
          { ...base, cursor: 4, sid: 'ses_e', handles: ['ses_e'], createdAt: T0 + 4 },
          { ...base, cursor: 5, sid: 'ses_f', handles: ['ses_f'], createdAt: T0 + 50 },
        ]);
        const claimed = await store.claimDeliveries('worker', T0 + HOUR, T0 + 2 * HOUR, 10);
        expect(claimed).toHaveLength(5);
        const byCursor = new Map(claimed.map((d) => [d.cursor, d]));
        for (const cursor of [1, 3, 5]) expect(await store.completeDelivery(byCursor.get(cursor)!.id, 'worker', { status: 'delivered', at: T0 + 60, httpStatus: 200 })).toBe(true);
        expect(await store.completeDelivery(byCursor.get(2)!.id, 'worker', { status: 'dead', at: T0 + 60, nextAttemptAt: T0 + 60, error: 'gone', httpStatus: 410 })).toBe(true);
        expect(await store.completeDelivery(byCursor.get(4)!.id, 'worker', { status: 'pending', at: T0 + 60, nextAttemptAt: T0 + 70, error: 'timeout', httpStatus: null })).toBe(true);

        expect(await store.purgeDeliveredDeliveries(T0 + 10, 1)).toBe(1);
        expect(await store.findDelivery(byCursor.get(1)!.id)).toBeNull();
        expect(await store.purgeDeliveredDeliveries(T0 + 10, 100)).toBe(1);
        expect(await store.purgeDeliveredDeliveries(T0 + 10, 100)).toBe(0);
        expect(await store.listDeliveriesBySession('ses_c')).toEqual([]);
        expect(await store.listDeliveriesBySession('ses_d')).toEqual([]);
        // The dead one, the pending one and the young delivered one stay, with their links.
        expect((await store.listDeliveries({ limit: 10 })).map((d) => [d.cursor, d.status])).toEqual([[5, 'delivered'], [4, 'pending'], [2, 'dead']]);
        expect((await store.listDeliveriesBySession('ses_e')).map((d) => d.handles)).toEqual([['ses_e']]);
        expect(await store.countDeliveries()).toMatchObject({ delivered: 1, pending: 1, dead: 1 });
      });

      it('purgeAudit deletes the oldest events before the cut-off, in id order, stopping at the first younger one', async () => {
        for (const at of [T0 + 1, T0 + 2, T0 + 9, T0 + 3]) await store.appendAudit(auditEvent({ at }));
        expect(await store.purgeAudit(T0 + 5, 1)).toBe(1);
        expect(await store.purgeAudit(T0 + 5, 100)).toBe(1);
        expect(await store.purgeAudit(T0 + 5, 100)).toBe(0);
        expect((await store.listAudit({ limit: 10 })).map((e) => e.at)).toEqual([T0 + 3, T0 + 9]);
        expect(await store.purgeAudit(T0 + 100, 100)).toBe(2);
        expect(await store.listAudit({ limit: 10 })).toEqual([]);
      });
    });

    describe('audit', () => {
      it('appends and lists newest first, with a limit and a user filter', async () => {
        const events = [
          auditEvent({ at: T0 + 1, userId: 'usr_a', action: 'user.created' }),
          auditEvent({ at: T0 + 2, userId: 'usr_b', action: 'user.created', actor: 'app:forum', clientId: 'forum', ip: '198.51.100.1' }),
          auditEvent({ at: T0 + 3, userId: 'usr_a', action: 'session.started', sessionHandle: 'ses_x', details: { reason: 'logout', revoked: ['ses_x', 'ses_y@forum'], n: 2, nested: { ok: true } } }),
          auditEvent({ at: T0 + 4, userId: null, action: 'admin_token.created', actor: 'system' }),
        ];
        for (const e of events) await store.appendAudit(e);
        const all = await store.listAudit({ limit: 10 });
        expect(all.map(({ id: _id, ...rest }) => rest)).toEqual([...events].reverse());
        const ids = all.map((e) => e.id);
        for (const id of ids) expect(typeof id).toBe('number');
        expect(new Set(ids).size).toBe(4);
        expect((await store.listAudit({ limit: 2 })).map((e) => e.at)).toEqual([T0 + 4, T0 + 3]);
        expect((await store.listAudit({ userId: 'usr_a', limit: 10 })).map((e) => e.at)).toEqual([T0 + 3, T0 + 1]);
        expect((await store.listAudit({ userId: 'usr_a', limit: 1 })).map((e) => e.at)).toEqual([T0 + 3]);
        expect(await store.listAudit({ userId: 'usr_nobody', limit: 10 })).toEqual([]);
      });
    });

    describe('ssf streams and SET outbox', () => {
      const stream = (overrides: Partial<SsfStream> = {}): SsfStream => ({
        id: overrides.id ?? nextId('st'),
        clientId: 'app_receiver',
        audience: ['app_receiver'],
        eventsRequested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
        eventsDelivered: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
        deliveryMethod: 'push',
        endpointUrl: 'https://rx.example.test/events',
        authorizationHeader: 'Bearer rx-secret',
        description: null,
        status: 'enabled',
        statusReason: null,
        subjectFormat: 'iss_sub',
        minVerificationInterval: 30,
        lastVerificationAt: null,
        createdAt: T0,
        updatedAt: T0,
        ...overrides,
      });
      const setFor = (streamId: string, subjectKey: string, overrides: Partial<NewSsfEvent> = {}): NewSsfEvent => ({
        streamId,
        jti: nextId('jti'),
        subjectKey,
        eventType: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
        claims: { iss: 'https://tessera.example.test', events: { x: {} } },
        createdAt: T0,
        horizonAt: T0 + HOUR,
        ...overrides,
      });

      it('creates, finds, lists per client, updates and deletes streams field for field', async () => {
        const a = await store.createSsfStream(stream({ description: 'push one' }));
        const b = await store.createSsfStream(stream({ clientId: 'app_other', deliveryMethod: 'poll', authorizationHeader: null, createdAt: T0 + 1 }));
        expect(await store.findSsfStream(a.id)).toEqual(a);
        expect(await store.findSsfStream('st_unknown')).toBeNull();
        expect((await store.listSsfStreams()).map((x) => x.id)).toEqual([a.id, b.id]);
        expect(await store.listSsfStreams({ clientId: 'app_other' })).toEqual([b]);
        expect(await store.listSsfStreams({ ids: [b.id, 'st_unknown', a.id] })).toEqual([a, b]);
        expect(await store.listSsfStreams({ ids: [b.id] })).toEqual([b]);
        expect(await store.listSsfStreams({ ids: [] })).toEqual([]);
        const updated = await store.updateSsfStream(a.id, { status: 'paused', statusReason: 'maintenance', audience: ['x', 'y'], lastVerificationAt: T0 + 5, updatedAt: T0 + 9 });
        expect(updated).toEqual({ ...a, status: 'paused', statusReason: 'maintenance', audience: ['x', 'y'], lastVerificationAt: T0 + 5, updatedAt: T0 + 9 });
        expect(await store.updateSsfStream('st_unknown', { updatedAt: T0 })).toBeNull();
        await store.saveSsfSubject({ streamId: a.id, key: 'user:usr_1', included: false, createdAt: T0 });
        await store.enqueueSsfEvents([setFor(a.id, 'user:usr_1')]);
        expect(await store.deleteSsfStream(a.id)).toBe(true);
        expect(await store.deleteSsfStream(a.id)).toBe(false);
        expect(await store.findSsfStream(a.id)).toBeNull();
        expect(await store.listSsfSubjects([a.id])).toEqual([]);
        expect(await store.listSsfEvents(a.id, { limit: 10 })).toEqual([]);
      });

      it('reads a revoking transaction\'s context: every app, the streams not disabled oldest first, their subject rules', async () => {
        const apps = [appRecord({ createdAt: T0 + 1, oidc: { ...appRecord().oidc, redirectUris: ['https://rp.example.test/cb'] } }), appRecord({ createdAt: T0, backchannelLogoutUri: null, connectors: {} })];
        for (const app of apps) await store.createApp(app);
        const a = await store.createSsfStream(stream({ createdAt: T0 + 2, description: 'second', audience: ['x', 'y'] }));
        const b = await store.createSsfStream(stream({ createdAt: T0 + 1, deliveryMethod: 'poll', authorizationHeader: null, status: 'paused', statusReason: 'maintenance', subjectFormat: 'complex' }));
        const off = await store.createSsfStream(stream({ createdAt: T0, status: 'disabled' }));
        await store.saveSsfSubject({ streamId: a.id, key: 'user:usr_1', included: false, createdAt: T0 + 3 });
        await store.saveSsfSubject({ streamId: a.id, key: 'email:a@example.test', included: true, createdAt: T0 });
        await store.saveSsfSubject({ streamId: off.id, key: 'user:usr_1', included: true, createdAt: T0 });
        const context = await store.transaction((tx) => tx.readRevocationContext({ ssf: true }));
        // Field for field what the separate reads return (the JSON path on PostgreSQL included).
        expect(context.apps).toEqual(await store.listApps());
        expect(context.apps.map((x) => x.clientId)).toEqual([apps[1]!.clientId, apps[0]!.clientId]);
        expect(context.streams).toEqual([b, a]);
        expect(context.subjects).toEqual(await store.listSsfSubjects([a.id, b.id]));
        expect(context.subjects).toHaveLength(2);
        expect(await store.readRevocationContext({ ssf: false })).toEqual({ apps: context.apps, streams: [], subjects: [] });
        await store.deleteSsfStream(a.id);
        await store.deleteSsfStream(b.id);
        await store.deleteSsfStream(off.id);
        expect(await store.readRevocationContext({ ssf: true })).toEqual({ apps: context.apps, streams: [], subjects: [] });
      });

      it('saves, replaces and lists subject rules', async () => {
        const a = await store.createSsfStream(stream());
        await store.saveSsfSubject({ streamId: a.id, key: 'user:usr_1', included: true, createdAt: T0 });
        await store.saveSsfSubject({ streamId: a.id, key: 'email:a@example.test', included: true, createdAt: T0 });
        await store.saveSsfSubject({ streamId: a.id, key: 'user:usr_1', included: false, createdAt: T0 + 1 });
        expect(await store.listSsfSubjects([a.id])).toEqual([
          { streamId: a.id, key: 'email:a@example.test', included: true, createdAt: T0 },
          { streamId: a.id, key: 'user:usr_1', included: false, createdAt: T0 + 1 },
        ]);
      });

      it('claims push events of enabled push streams only, oldest first, one at a time per subject', async () => {
        const push = await store.createSsfStream(stream());
        const paused = await store.createSsfStream(stream({ status: 'paused' }));
        const poll = await store.createSsfStream(stream({ deliveryMethod: 'poll' }));
        const [a1, a2, b1] = [setFor(push.id, 'user:a'), setFor(push.id, 'user:a'), setFor(push.id, 'user:b')];
        const pausedNotice = setFor(paused.id, `stream:${paused.id}`);
        await store.enqueueSsfEvents([a1, a2, b1, setFor(paused.id, 'user:a'), setFor(poll.id, 'user:a'), pausedNotice]);
        const all = await store.claimSsfPushEvents('n1', T0, T0 + MINUTE, 10);
        // a2 waits behind a1 (same subject); b1 goes; of the paused stream only the event about
        // the stream itself; nothing of the poll stream.
        expect(all.map((e) => e.jti)).toEqual([a1.jti, b1.jti, pausedNotice.jti]);
        expect(await store.completeSsfEvent(all[2]!.id, 'n1', { status: 'delivered', at: T0, httpStatus: 202 })).toBe(true);
        const first = all.slice(0, 2);
        expect(first[0]).toMatchObject({ streamId: push.id, subjectKey: 'user:a', status: 'pending', attempts: 0, leaseOwner: 'n1', leaseExpiresAt: T0 + MINUTE, claims: a1.claims, eventType: a1.eventType, horizonAt: T0 + HOUR });
        // Another node gets nothing while the leases live (a2 is still behind a1).
        expect(await store.claimSsfPushEvents('n2', T0 + 1, T0 + MINUTE, 10)).toEqual([]);
        // a1 fails and waits for its retry: a2 still may not overtake it.
        expect(await store.completeSsfEvent(first[0]!.id, 'n1', { status: 'pending', at: T0 + 2, nextAttemptAt: T0 + 10_000, error: 'HTTP 503', httpStatus: 503 })).toBe(true);
        expect(await store.claimSsfPushEvents('n2', T0 + 3, T0 + MINUTE, 10)).toEqual([]);
        // The retry falls due: a1 again, then after it is delivered, a2.
        const retry = await store.claimSsfPushEvents('n2', T0 + 10_000, T0 + 20_000, 10);
        expect(retry.map((e) => [e.jti, e.attempts, e.lastError, e.lastStatus])).toEqual([[a1.jti, 1, 'HTTP 503', 503]]);
        // The old owner's completion is refused (it lost the lease).
        expect(await store.completeSsfEvent(retry[0]!.id, 'n1', { status: 'delivered', at: T0 + 10_001, httpStatus: 202 })).toBe(false);
        expect(await store.completeSsfEvent(retry[0]!.id, 'n2', { status: 'delivered', at: T0 + 10_001, httpStatus: 202 })).toBe(true);
        expect((await store.claimSsfPushEvents('n2', T0 + 10_002, T0 + 20_000, 10)).map((e) => e.jti)).toEqual([a2.jti]);
        // An expired lease (a crashed node) can be taken again.
        expect(await store.claimSsfPushEvents('n3', T0 + 19_999, T0 + 2 * MINUTE, 10)).toEqual([]);
        expect((await store.claimSsfPushEvents('n3', T0 + MINUTE + 1, T0 + 2 * MINUTE, 10)).map((e) => e.jti)).toEqual([a2.jti, b1.jti]);
      });

      it('holds the events no push may take out of the claim, and lets them go when their stream pushes again', async () => {
        const paused = await store.createSsfStream(stream({ status: 'paused' }));
        const poll = await store.createSsfStream(stream({ deliveryMethod: 'poll' }));
        const [p1, p2, q1] = [setFor(paused.id, 'user:a'), setFor(paused.id, 'user:b', { horizonAt: T0 + 10 }), setFor(poll.id, 'user:a')];
        await store.enqueueSsfEvents([p1, p2, q1]);
        expect(await store.claimSsfPushEvents('n1', T0, T0 + MINUTE, 10)).toEqual([]);
        // Nothing to release: a paused stream's and a poll stream's events stay held.
        expect(await store.releaseHeldSsfEvents(100)).toBe(0);
        // Held events still end at their horizon.
        expect(await store.expireSsfEvents(T0 + 10, 100)).toBe(1);
        // Enabled: the paused stream's events go, in order; switched to push, the poll stream's too.
        await store.updateSsfStream(paused.id, { status: 'enabled', updatedAt: T0 + 11 });
        await store.updateSsfStream(poll.id, { deliveryMethod: 'push', updatedAt: T0 + 11 });
        expect((await store.claimSsfPushEvents('n1', T0 + 12, T0 + MINUTE, 10)).map((e) => e.jti)).toEqual([p1.jti, q1.jti]);
        expect(await store.releaseSsfEvents('n1')).toBe(2);
        // Paused again: held again, and a dead event retried meanwhile is held with them.
        await store.updateSsfStream(paused.id, { status: 'paused', updatedAt: T0 + 13 });
        await store.updateSsfStream(poll.id, { deliveryMethod: 'poll', updatedAt: T0 + 13 });
        const [dead] = await store.listSsfEvents(paused.id, { status: 'dead', limit: 1 });
        expect((await store.retrySsfEvent(paused.id, dead!.id, T0 + 14, T0 + HOUR))?.jti).toBe(p2.jti);
        expect(await store.claimSsfPushEvents('n1', T0 + 15, T0 + MINUTE, 10)).toEqual([]);
        await store.updateSsfStream(paused.id, { status: 'enabled', updatedAt: T0 + 16 });
        expect((await store.claimSsfPushEvents('n1', T0 + 17, T0 + MINUTE, 10)).map((e) => e.jti)).toEqual([p1.jti, p2.jti]);
      });

      it('releases events held under a stream that pushes now (an insert that saw the stream before it changed)', async () => {
        // An event whose stream the insert could not see (here: not created yet; in production, a
        // transaction that read the stream paused while it was being enabled) is held.
        const id = nextId('st');
        const early = setFor(id, 'user:a');
        await store.enqueueSsfEvents([early]);
        const push = await store.createSsfStream(stream({ id }));
        const paused = await store.createSsfStream(stream({ status: 'paused' }));
        await store.enqueueSsfEvents([setFor(paused.id, 'user:a')]);
        expect(await store.claimSsfPushEvents('n1', T0, T0 + MINUTE, 10)).toEqual([]);
        expect(await store.releaseHeldSsfEvents(100)).toBe(1);
        expect(await store.releaseHeldSsfEvents(100)).toBe(0);
        expect((await store.claimSsfPushEvents('n1', T0 + 1, T0 + MINUTE, 10)).map((e) => [e.jti, e.streamId])).toEqual([[early.jti, push.id]]);
      });

      it('records a batch of deliveries at once, only those the owner still holds', async () => {
        const push = await store.createSsfStream(stream());
        await store.enqueueSsfEvents([setFor(push.id, 'user:a'), setFor(push.id, 'user:b'), setFor(push.id, 'user:c')]);
        const [a, b, c] = await store.claimSsfPushEvents('n1', T0, T0 + MINUTE, 10);
        // c's lease expired and another node took it: n1 may not record it.
        expect((await store.claimSsfPushEvents('n2', T0 + MINUTE + 1, T0 + 2 * MINUTE, 10)).length).toBe(3);
        expect(await store.deliverSsfEvents([a!.id, b!.id, c!.id], 'n1', T0 + 5, 202)).toEqual({ recorded: [], successors: false });
        expect(await store.deliverSsfEvents([c!.id, a!.id], 'n2', T0 + MINUTE + 5, 202)).toEqual({ recorded: [a!.id, c!.id].sort((x, y) => x - y), successors: false });
        expect(await store.deliverSsfEvents([a!.id], 'n2', T0 + MINUTE + 6, 202)).toEqual({ recorded: [], successors: false });
        const state = await store.ssfDeliveryState(push.id);
        expect(state).toMatchObject({ pending: 1, delivered: 2, lastDeliveredAt: T0 + MINUTE + 5 });
        void b;
      });

      it('says when a delivery lets a younger event about the same subject go', async () => {
        const push = await store.createSsfStream(stream());
        const other = await store.createSsfStream(stream());
        const [a1, a2, b1, otherA] = [setFor(push.id, 'user:a'), setFor(push.id, 'user:a'), setFor(push.id, 'user:b'), setFor(other.id, 'user:b')];
        await store.enqueueSsfEvents([a1, a2, b1]);
        const claimed = await store.claimSsfPushEvents('n1', T0, T0 + MINUTE, 10);
        expect(claimed.map((e) => e.jti)).toEqual([a1.jti, b1.jti]);
        // A pending event about the same subject on another stream is not b1's successor.
        await store.enqueueSsfEvents([otherA]);
        expect(await store.deliverSsfEvents([claimed[1]!.id], 'n1', T0 + 1, 202)).toEqual({ recorded: [claimed[1]!.id], successors: false });
        expect(await store.deliverSsfEvents([claimed[0]!.id], 'n1', T0 + 1, 202)).toEqual({ recorded: [claimed[0]!.id], successors: true });
        expect((await store.claimSsfPushEvents('n1', T0 + 2, T0 + MINUTE, 10)).map((e) => e.jti)).toEqual([a2.jti, otherA.jti]);
      });

      it('never gives one event to two concurrent claimers', async () => {
        const push = await store.createSsfStream(stream());
        await store.enqueueSsfEvents(Array.from({ length: 40 }, (_, i) => setFor(push.id, `user:${i}`)));
        const claims = await Promise.all(Array.from({ length: 4 }, (_, i) => store.claimSsfPushEvents(`n${i}`, T0, T0 + MINUTE, 15)));
        const ids = claims.flat().map((e) => e.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(40);
      });

      it('poll: leases pending events oldest first, redelivers after the lease, settles acks and errors', async () => {
        const poll = await store.createSsfStream(stream({ deliveryMethod: 'poll' }));
        const other = await store.createSsfStream(stream({ deliveryMethod: 'poll' }));
        const events = [setFor(poll.id, 'user:a'), setFor(poll.id, 'user:a'), setFor(poll.id, 'user:b')];
        await store.enqueueSsfEvents([...events, setFor(other.id, 'user:a')]);
        expect(await store.hasSsfPollEvents(poll.id, T0)).toBe(true);
        // Past their horizon (not yet marked dead by a worker), events are not handed out.
        expect(await store.hasSsfPollEvents(poll.id, T0 + HOUR)).toBe(false);
        expect(await store.claimSsfPollEvents(poll.id, 'poll', T0 + HOUR, T0 + 2 * HOUR, 10)).toEqual([]);
        // Paused: only events about the stream itself (there are none yet).
        expect(await store.hasSsfPollEvents(poll.id, T0, true)).toBe(false);
        expect(await store.claimSsfPollEvents(poll.id, 'poll', T0, T0 + MINUTE, 10, true)).toEqual([]);
        const got = await store.claimSsfPollEvents(poll.id, 'poll', T0, T0 + MINUTE, 2);
        expect(got.map((e) => e.jti)).toEqual([events[0]!.jti, events[1]!.jti]);
        const rest = await store.claimSsfPollEvents(poll.id, 'poll', T0, T0 + MINUTE, 10);
        expect(rest.map((e) => e.jti)).toEqual([events[2]!.jti]);
        expect(await store.hasSsfPollEvents(poll.id, T0 + 1)).toBe(false);
        expect(await store.claimSsfPollEvents(poll.id, 'poll', T0 + 1, T0 + MINUTE, 10)).toEqual([]);
        // Acknowledge one, report an error on another; a jti of another stream is not touched.
        expect(await store.settleSsfEvents(poll.id, [events[0]!.jti, 'jti_unknown'], { status: 'delivered', at: T0 + 2, httpStatus: null })).toEqual([events[0]!.jti]);
        expect(await store.settleSsfEvents(poll.id, [events[1]!.jti], { status: 'dead', at: T0 + 2, nextAttemptAt: T0 + 2, error: 'invalid_key: unknown kid', httpStatus: null })).toEqual([events[1]!.jti]);
        expect(await store.settleSsfEvents(poll.id, [events[0]!.jti], { status: 'delivered', at: T0 + 3, httpStatus: null })).toEqual([]);
        // The unacknowledged one comes back once its lease is over.
        expect((await store.claimSsfPollEvents(poll.id, 'poll', T0 + MINUTE, T0 + 2 * MINUTE, 10)).map((e) => [e.jti, e.attempts])).toEqual([[events[2]!.jti, 2]]);
        const state = await store.ssfDeliveryState(poll.id);
        expect(state).toMatchObject({ pending: 1, delivered: 1, dead: 1, oldestPendingAt: T0, lastDeliveredAt: T0 + 2, lastError: 'invalid_key: unknown kid' });
        expect((await store.listSsfEvents(poll.id, { status: 'dead', limit: 10 })).map((e) => e.jti)).toEqual([events[1]!.jti]);
        expect((await store.listSsfEvents(poll.id, { limit: 2 })).map((e) => e.jti)).toEqual([events[2]!.jti, events[1]!.jti]);
      });

      it('expires pending events past their horizon, drops a stream\'s pending events, releases leases and purges settled ones', async () => {
        const a = await store.createSsfStream(stream());
        const early = setFor(a.id, 'user:a', { horizonAt: T0 + 10 });
        const late = setFor(a.id, 'user:b', { horizonAt: T0 + HOUR });
        await store.enqueueSsfEvents([early, late]);
        // Past its horizon an event is not pushed any more, even before it is marked dead.
        expect((await store.claimSsfPushEvents('n0', T0 + 10, T0 + 11, 10)).map((e) => e.jti)).toEqual([late.jti]);
        expect(await store.releaseSsfEvents('n0')).toBe(1);
        expect(await store.expireSsfEvents(T0 + 10, 100)).toBe(1);
        expect((await store.listSsfEvents(a.id, { status: 'dead', limit: 10 })).map((e) => [e.jti, e.lastError])).toEqual([[early.jti, 'not delivered before the horizon']]);
        const [claimed] = await store.claimSsfPushEvents('n1', T0 + 11, T0 + MINUTE, 10);
        expect(claimed?.jti).toBe(late.jti);
        expect(await store.releaseSsfEvents('n1')).toBe(1);
        expect((await store.claimSsfPushEvents('n2', T0 + 12, T0 + MINUTE, 10)).map((e) => e.jti)).toEqual([late.jti]);
        expect(await store.completeSsfEvent(claimed!.id, 'n2', { status: 'delivered', at: T0 + 13, httpStatus: 202 })).toBe(true);
        await store.enqueueSsfEvents([setFor(a.id, 'user:c'), setFor(a.id, 'user:d')]);
        expect(await store.dropPendingSsfEvents(a.id)).toBe(2);
        expect(await store.ssfDeliveryState(a.id)).toMatchObject({ pending: 0, delivered: 1, dead: 1 });
        expect(await store.purgeSsfEvents(T0, 100)).toBe(0);
        expect(await store.purgeSsfEvents(T0 + 1, 1)).toBe(1);
        expect(await store.purgeSsfEvents(T0 + 1, 100)).toBe(0);
        // The dead one stays (an operator looks at it), as dead logout deliveries do.
        expect((await store.listSsfEvents(a.id, { limit: 10 })).map((e) => e.status)).toEqual(['dead']);
      });

      it('retries a dead event: pending again with a fresh horizon, only dead ones, only of its stream, never on a disabled stream', async () => {
        const a = await store.createSsfStream(stream());
        const other = await store.createSsfStream(stream());
        const older = setFor(a.id, 'user:a', { horizonAt: T0 + 10 });
        const younger = setFor(a.id, 'user:a');
        const delivered = setFor(a.id, 'user:b');
        await store.enqueueSsfEvents([older, younger, delivered]);
        // The older one fails for good (the receiver's 400), the unrelated one is delivered.
        const first = await store.claimSsfPushEvents('n1', T0, T0 + MINUTE, 10);
        expect(first.map((e) => e.jti)).toEqual([older.jti, delivered.jti]);
        expect(await store.completeSsfEvent(first[0]!.id, 'n1', { status: 'dead', at: T0 + 1, nextAttemptAt: T0 + 1, error: 'HTTP 400 invalid_audience', httpStatus: 400 })).toBe(true);
        expect(await store.completeSsfEvent(first[1]!.id, 'n1', { status: 'delivered', at: T0 + 1, httpStatus: 202 })).toBe(true);
        const deadId = first[0]!.id;
        // Not a pending, a delivered, an unknown event, nor one asked for through another stream.
        const [pendingOne] = await store.listSsfEvents(a.id, { status: 'pending', limit: 10 });
        expect(pendingOne?.jti).toBe(younger.jti);
        expect(await store.retrySsfEvent(a.id, pendingOne!.id, T0 + 2, T0 + HOUR)).toBeNull();
        expect(await store.retrySsfEvent(a.id, first[1]!.id, T0 + 2, T0 + HOUR)).toBeNull();
        expect(await store.retrySsfEvent(a.id, 987_654_321, T0 + 2, T0 + HOUR)).toBeNull();
        expect(await store.retrySsfEvent(other.id, deadId, T0 + 2, T0 + HOUR)).toBeNull();
        // A disabled stream holds nothing: no retry there either.
        await store.updateSsfStream(a.id, { status: 'disabled', updatedAt: T0 + 2 });
        expect(await store.retrySsfEvent(a.id, deadId, T0 + 2, T0 + HOUR)).toBeNull();
        expect((await store.listSsfEvents(a.id, { status: 'dead', limit: 10 })).map((e) => e.id)).toEqual([deadId]);
        await store.updateSsfStream(a.id, { status: 'enabled', updatedAt: T0 + 3 });
        // Past its old horizon, the retry gives it a new one; attempts, last error and claims stay.
        const retried = await store.retrySsfEvent(a.id, deadId, T0 + 20, T0 + 20 + HOUR);
        expect(retried).toMatchObject({ id: deadId, jti: older.jti, status: 'pending', nextAttemptAt: T0 + 20, horizonAt: T0 + 20 + HOUR, attempts: 1, lastError: 'HTTP 400 invalid_audience', leaseOwner: null, claims: older.claims });
        expect(await store.retrySsfEvent(a.id, deadId, T0 + 21, T0 + HOUR)).toBeNull();
        expect(await store.ssfDeliveryState(a.id)).toMatchObject({ pending: 2, delivered: 1, dead: 0 });
        // It goes out again, and still before the younger event about the same subject.
        const again = await store.claimSsfPushEvents('n2', T0 + 20, T0 + MINUTE, 10);
        expect(again.map((e) => e.jti)).toEqual([older.jti]);
        expect(await store.completeSsfEvent(again[0]!.id, 'n2', { status: 'delivered', at: T0 + 21, httpStatus: 202 })).toBe(true);
        expect((await store.claimSsfPushEvents('n2', T0 + 22, T0 + MINUTE, 10)).map((e) => e.jti)).toEqual([younger.jti]);
      });

      it('rolls SETs back with the transaction of their cause; a jti is unique', async () => {
        const a = await store.createSsfStream(stream());
        await expect(store.transaction(async (tx) => {
          await tx.enqueueSsfEvents([setFor(a.id, 'user:a')]);
          throw new Error('cause rolled back');
        })).rejects.toThrow('cause rolled back');
        expect(await store.listSsfEvents(a.id, { limit: 10 })).toEqual([]);
        const one = setFor(a.id, 'user:a');
        await store.enqueueSsfEvents([one]);
        await expect(store.enqueueSsfEvents([{ ...one }])).rejects.toThrow();
      });
    });
  });
}
