import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import { verifiedEmailOf, type Actor, type User, type UserPatch, type UserRecord } from './model.js';
import { hasForbiddenNameChars, normaliseName, normaliseOptionalName } from './names.js';
import { hashPassword } from './passwords.js';
import { commitRevocation } from './revoke.js';
import type { SecuritySignal } from './ssf-events.js';
import { randomToken } from './secrets.js';
import type { Store } from './store-port.js';

/**
 * The user whose VERIFIED email is `email` (compared without case), or null. For callers that
 * name a person by email on someone else's word (global token revocation, an upstream's SET):
 * an unverified address is only a claim, and must not let them end the sessions of whoever
 * typed it in.
 */
export async function findUserByVerifiedEmail(store: Pick<Store, 'findUserByLogin'>, email: string): Promise<UserRecord | null> {
  const wanted = email.toLowerCase();
  const user = await store.findUserByLogin(wanted);
  return user && verifiedEmailOf(user)?.toLowerCase() === wanted ? user : null;
}

/** Input for a new user. */
export interface NewUserInput {
  id?: string;
  username: string;
  email?: string | null;
  /** Set only by someone accountable for it (an admin, or a trusted app that says so); default false. */
  emailVerified?: boolean;
  password?: string | null;
  firstName?: string | null;
  lastName?: string | null;
  picture?: string | null;
}

/** Changes to a user; `disabled: true` and a new `password` end sessions. */
export interface UserChanges {
  username?: string;
  email?: string | null;
  /** Without it, a changed email is unverified again. */
  emailVerified?: boolean;
  firstName?: string | null;
  lastName?: string | null;
  picture?: string | null;
  disabled?: boolean;
  password?: string;
}

/** The public view of a user: never the password hash. */
export function toPublicUser(user: UserRecord): User {
  const { passwordHash: _omit, ...rest } = user;
  return rest;
}

/**
 * Users: create, change, disable, delete. Disabling or deleting a user and changing a
 * password end sessions in the same transaction as the change.
 *
 * @example
 * ```ts
 * const users = createUserService(deps);
 * const alice = await users.createUser({ username: 'alice', password: 's3cret-enough' }, 'admin');
 * await users.updateUser(alice.id, { disabled: true }, 'admin'); // ends all her sessions
 * ```
 */
export function createUserService(deps: CoreDeps) {
  const { store, clock } = deps;

  async function createUser(input: NewUserInput, actor: Actor): Promise<User> {
    const now = clock.now();
    const record: UserRecord = {
      id: input.id ?? `usr_${randomToken(12)}`,
      // One rule for every path that creates a user (admin API, CLI, a trusted app's claims).
      username: normaliseName(input.username, 'username'),
      email: normaliseOptionalName(input.email, 'email') ?? null,
      // Never true by default, and never without an email to be true of.
      emailVerified: input.emailVerified === true && typeof input.email === 'string' && input.email !== '',
      firstName: normaliseOptionalName(input.firstName, 'first_name') ?? null,
      lastName: normaliseOptionalName(input.lastName, 'last_name') ?? null,
      picture: input.picture ?? null,
      disabled: false,
      passwordHash: input.password ? await hashPassword(input.password) : null,
      createdAt: now,
      updatedAt: now,
    };
    const created = await store.transaction(async (tx) => {
      const user = await tx.createUser(record);
      await tx.appendAudit({ at: now, actor, action: 'user.created', userId: user.id, sessionHandle: null, clientId: null, ip: null, details: {} });
      return user;
    });
    return toPublicUser(created);
  }

  async function getUser(id: string): Promise<UserRecord> {
    const user = await store.findUserById(id);
    if (!user) throw new TesseraError('USER_NOT_FOUND');
    return user;
  }

  /**
   * Applies changes. Disabling ends every session (reason `user_disabled`); a new password
   * ends every session except `keepHandle` (reason `password_changed`) — a password change
   * is what a user does after suspecting theft, so every other device must sign in again.
   */
  async function updateUser(id: string, changes: UserChanges, actor: Actor, keepHandle?: string): Promise<{ user: User; revoked: string[] }> {
    const now = clock.now();
    const patch: UserPatch = { updatedAt: now };
    // The same name rule as on creation: a rename cannot bring in what a new user may not have.
    changes = {
      ...changes,
      username: normaliseOptionalName(changes.username, 'username'),
      email: normaliseOptionalName(changes.email, 'email'),
      firstName: normaliseOptionalName(changes.firstName, 'first_name'),
      lastName: normaliseOptionalName(changes.lastName, 'last_name'),
    };
    for (const key of ['username', 'email', 'emailVerified', 'firstName', 'lastName', 'picture', 'disabled'] as const) {
      if (changes[key] !== undefined) (patch as unknown as Record<string, unknown>)[key] = changes[key];
    }
    // A new address is a new claim: whoever verified the old one did not verify this one.
    if (changes.email !== undefined && changes.emailVerified === undefined) patch.emailVerified = false;
    if (changes.email === null || changes.email === '') patch.emailVerified = false;
    if (changes.password !== undefined) patch.passwordHash = await hashPassword(changes.password);
    let updated: UserRecord | null = null;
    let before: UserRecord | null = null;
    const events = await commitRevocation(deps, async (tx) => {
      before = await tx.findUserById(id);
      if (patch.emailVerified === true && changes.email === undefined) {
        // Verified is a statement about an address: there must be one.
        const current = await tx.findUserById(id);
        if (current && !current.email) throw new TesseraError('INVALID_REQUEST', 'The user has no email to verify.');
      }
      updated = await tx.updateUser(id, patch);
      if (!updated) throw new TesseraError('USER_NOT_FOUND');
      await tx.appendAudit({ at: now, actor, action: 'user.updated', userId: id, sessionHandle: null, clientId: null, ip: null, details: { fields: Object.keys(changes).filter((k) => k !== 'password').concat(changes.password ? ['password'] : []) } });
      if (changes.disabled === true) return tx.endUserSessions(id, {}, { at: now, reason: 'user_disabled', actor });
      if (changes.password !== undefined) return tx.endUserSessions(id, keepHandle ? { exceptHandle: keepHandle } : {}, { at: now, reason: 'password_changed', actor });
      return [];
    }, undefined, {
      userWide: changes.disabled === true || (changes.password !== undefined && keepHandle === undefined),
      // CAEP credential-change and RISC account-disabled / account-enabled, with the user as
      // it is after the change (its verified email, if any, is the subject).
      signals: () => {
        const after = updated as UserRecord | null;
        const was = before as UserRecord | null;
        if (!after || !was) return [];
        const signals: SecuritySignal[] = [];
        if (changes.password !== undefined) signals.push({ kind: 'credential-change', user: after, at: now, actor, changeType: was.passwordHash ? 'update' : 'create' });
        if (after.disabled && !was.disabled) signals.push({ kind: 'account-disabled', user: after, at: now, actor });
        if (!after.disabled && was.disabled) signals.push({ kind: 'account-enabled', user: after, at: now, actor });
        return signals;
      },
    });
    deps.cache?.dropUser(id);
    return { user: toPublicUser(updated!), revoked: events.map((e) => e.sid) };
  }

  /** Deletes a user after ending all of their sessions; the ended sessions and the log stay for the audit trail. */
  async function deleteUser(id: string, actor: Actor): Promise<string[]> {
    const now = clock.now();
    let gone: UserRecord | null = null;
    const events = await commitRevocation(deps, async (tx) => {
      // Read before it goes: the RISC account-purged SET names the account as it was.
      gone = await tx.findUserById(id);
      // The user's row first, then the sessions', then the log's counter (at the end of
      // endUserSessions): the order every revoking transaction takes its locks in, so two of
      // them about one user (a deletion and a password change) wait for each other instead
      // of deadlocking.
      if (!(await tx.deleteUser(id))) throw new TesseraError('USER_NOT_FOUND');
      const ended = await tx.endUserSessions(id, {}, { at: now, reason: 'user_deleted', actor });
      await tx.appendAudit({ at: now, actor, action: 'user.deleted', userId: id, sessionHandle: null, clientId: null, ip: null, details: {} });
      return ended;
    }, undefined, { userWide: true, signals: () => (gone ? [{ kind: 'account-purged', user: gone as UserRecord, at: now, actor }] : []) });
    deps.cache?.dropUser(id);
    return events.map((e) => e.sid);
  }

  /**
   * Users whose username or email contains `query` (case-insensitive; everyone when empty),
   * by username, at most `limit`; public views (no password hash). The text is NFC like
   * stored names, and one with a character no name holds finds nobody.
   */
  async function searchUsers(query: string, limit = 50): Promise<User[]> {
    const q = query.normalize('NFC').trim();
    if (q.length > 256 || hasForbiddenNameChars(q)) return [];
    return (await store.searchUsers(q, limit)).map(toPublicUser);
  }

  return { createUser, getUser, updateUser, deleteUser, searchUsers };
}

/** The user service returned by {@link createUserService}. */
export type UserService = ReturnType<typeof createUserService>;
