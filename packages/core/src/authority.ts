import { requireAppMay } from './app-access.js';
import { hasForbiddenNameChars, normaliseName, normaliseOptionalName } from './names.js';
import { createAdminTokenService } from './admin-tokens.js';
import { createAppService } from './apps.js';
import type { CoreDeps, Device } from './deps.js';
import { TesseraError } from './errors.js';
import { createLogoutService } from './logout.js';
import type { AppRecord, UserRecord } from './model.js';
import { verifyPassword } from './passwords.js';
import { createSessionCache } from './session-cache.js';
import { createSessionService, type StartedSession } from './sessions.js';
import { createKeyManager } from './signing-keys.js';
import { createTokenService } from './tokens.js';
import { createDeliveryService } from './deliveries.js';
import { createOidcService } from './oidc.js';
import { createRetentionService } from './retention.js';
import { createSsfService } from './ssf.js';
import { createSsfReceiver } from './ssf-receiver.js';
import { createUserService, type NewUserInput } from './users.js';

/**
 * The session authority: every domain operation of Tessera, composed from the feature
 * services. The HTTP server, the CLI and the tests all drive Tessera through this object.
 *
 * @example
 * ```ts
 * const authority = createAuthority({ store, config, clock: systemClock });
 * const { token } = await authority.signIn('alice', 'password', { ip: null, userAgent: null });
 * ```
 */
export function createAuthority(input: CoreDeps) {
  const deps: CoreDeps = input.config.session.cacheSeconds > 0 && !input.cache
    ? { ...input, cache: createSessionCache(input.store, input.clock, { ttlMs: input.config.session.cacheSeconds * 1000 }) }
    : input;
  const sessions = createSessionService(deps);
  const users = createUserService(deps);
  const baseApps = createAppService(deps);
  const logout = createLogoutService(deps, sessions, baseApps);
  const admin = createAdminTokenService(deps);
  const keys = createKeyManager(deps);
  const tokens = createTokenService(deps, sessions, keys);
  const oidc = createOidcService(deps, sessions, tokens, keys, baseApps);
  // An OIDC client's ID token algorithm gets its key series when the client is registered,
  // so those keys are in the JWKS before the first ID token they sign.
  const apps: typeof baseApps = {
    ...baseApps,
    async registerApp(input, actor) {
      const result = await baseApps.registerApp(input, actor);
      if (result.app.oidc.redirectUris.length > 0) await keys.ensureAlgorithm(result.app.oidc.idTokenSignedResponseAlg);
      return result;
    },
    async updateApp(clientId, changes, actor) {
      const result = await baseApps.updateApp(clientId, changes, actor);
      if (result.app.oidc.redirectUris.length > 0) await keys.ensureAlgorithm(result.app.oidc.idTokenSignedResponseAlg);
      return result;
    },
  };
  const deliveries = createDeliveryService(deps);
  const retention = createRetentionService(deps);
  const ssf = createSsfService(deps, keys, baseApps, tokens);
  const ssfReceiver = createSsfReceiver(deps, sessions);

  /**
   * The user a login name (username or email) names. Stored names are NFC, so the same
   * letters typed in another normal form find the same user; a name stored before names were
   * normalised is still found as it was typed. A login holding a character no name can hold
   * matches nobody (and is never sent to the store).
   */
  async function findByLogin(login: string): Promise<UserRecord | null> {
    if (hasForbiddenNameChars(login)) return null;
    const nfc = login.normalize('NFC');
    return (await deps.store.findUserByLogin(nfc)) ?? (nfc !== login ? deps.store.findUserByLogin(login) : null);
  }

  /** Password login. Wrong username and wrong password are one error (no enumeration). */
  async function signIn(login: string, password: string, device: Device, clientId?: string): Promise<StartedSession & { user: UserRecord }> {
    // Stored names are NFC: the same letters typed in another normal form find the same user.
    const user = await findByLogin(login);
    const ok = await verifyPassword(password, user?.passwordHash ?? null);
    if (!user || !ok) {
      await deps.store.appendAudit({ at: deps.clock.now(), actor: 'user', action: 'login.failed', userId: user?.id ?? null, sessionHandle: null, clientId: clientId ?? null, ip: device.ip, details: {} });
      throw new TesseraError('INVALID_CREDENTIALS');
    }
    // Disabled is told only after the password proved who is asking.
    if (user.disabled) throw new TesseraError('USER_DISABLED');
    return { ...(await sessions.startSession(user, device, clientId)), user };
  }

  /**
   * A trusted app starts a session for a user it authenticated itself: by `userId`, or by
   * claims (found by id, else by username/email, else created).
   */
  async function startSessionForApp(
    app: AppRecord,
    subject: { userId?: string; user?: NewUserInput },
    device: Device,
  ): Promise<StartedSession & { user: UserRecord }> {
    requireAppMay(app, 'start_session');
    let user: UserRecord | null = null;
    if (subject.userId !== undefined) {
      user = await deps.store.findUserById(subject.userId);
      if (!user) throw new TesseraError('USER_NOT_FOUND');
    } else if (subject.user) {
      // The name rule runs before the lookup: claims naming a user with invisible characters
      // are refused, never matched (by a look-alike) to someone else.
      const given = subject.user;
      const claims = { ...given, username: normaliseName(given.username, 'username'), email: normaliseOptionalName(given.email, 'email'), firstName: normaliseOptionalName(given.firstName, 'first_name'), lastName: normaliseOptionalName(given.lastName, 'last_name') };
      user = claims.id !== undefined ? await deps.store.findUserById(claims.id) : await findByLogin(given.username);
      if (!user) {
        const created = await users.createUser({ ...claims, password: null }, `app:${app.clientId}`);
        user = await users.getUser(created.id);
      }
    } else {
      throw new TesseraError('INVALID_REQUEST', 'Give user_id or user.');
    }
    return { ...(await sessions.startSession(user, device, app.clientId)), user };
  }

  return { sessions, users, apps, logout, admin, keys, tokens, oidc, deliveries, retention, ssf, ssfReceiver, signIn, startSessionForApp, deps };
}

/** The authority returned by {@link createAuthority}. */
export type Authority = ReturnType<typeof createAuthority>;
