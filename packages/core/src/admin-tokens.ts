import type { CoreDeps } from './deps.js';
import { createSplitToken, hashSecret, splitToken, verifySecret } from './secrets.js';

/**
 * Admin bearer tokens: the bootstrap token from configuration (`TESSERA_ADMIN_TOKEN`) and
 * tokens created by the CLI, stored hashed like every other secret.
 *
 * @example
 * ```ts
 * const admin = createAdminTokenService(deps);
 * const token = await admin.createAdminToken('ops laptop'); // printed once
 * await admin.authenticateAdmin(token); // true
 * ```
 */
export function createAdminTokenService(deps: CoreDeps) {
  const { store, config, clock } = deps;
  const bootstrapHash = config.adminToken ? hashSecret(config.adminToken) : null;

  async function createAdminToken(label: string): Promise<string> {
    const { token, id, secretHash } = createSplitToken('adm');
    await store.createAdminToken({ id, secretHash, label, createdAt: clock.now() });
    await store.appendAudit({ at: clock.now(), actor: 'system', action: 'admin_token.created', userId: null, sessionHandle: null, clientId: null, ip: null, details: { id, label } });
    return token;
  }

  async function authenticateAdmin(token: string): Promise<boolean> {
    if (bootstrapHash && verifySecret(token, bootstrapHash)) return true;
    const parts = splitToken(token);
    if (!parts || !parts.id.startsWith('adm')) return false;
    const record = await store.findAdminToken(parts.id);
    return record !== null && verifySecret(parts.secret, record.secretHash);
  }

  /** True when no admin can sign in yet (no bootstrap token, none stored). */
  async function needsBootstrap(): Promise<boolean> {
    return bootstrapHash === null && (await store.countAdminTokens()) === 0;
  }

  /**
   * Signs in to the admin console with an admin token: a console session of its own
   * (`acs…` `<id>.<secret>`, only the hash stored), so the admin token itself never sits in
   * a browser cookie, and signing out of the console ends that sign-in only. Null for a wrong
   * token (checked in constant time by {@link authenticateAdmin}).
   */
  async function signInToConsole(adminToken: string): Promise<{ token: string; expiresAt: number } | null> {
    if (!(await authenticateAdmin(adminToken))) return null;
    const now = clock.now();
    // Sign-ins that expired or were ended go when a new one is made: the table stays small.
    await store.purgeConsoleSessions(now);
    const { token, id, secretHash } = createSplitToken('acs');
    const expiresAt = now + config.adminConsole.sessionSeconds * 1000;
    await store.createConsoleSession({ id, secretHash, createdAt: now, expiresAt, endedAt: null });
    await store.appendAudit({ at: now, actor: 'admin', action: 'console.signed_in', userId: null, sessionHandle: null, clientId: null, ip: null, details: { id } });
    return { token, expiresAt };
  }

  /** True while a console sign-in token is live (not ended, not expired); constant-time in its secret. */
  async function authenticateConsole(token: string): Promise<boolean> {
    const parts = splitToken(token);
    if (!parts || !parts.id.startsWith('acs')) return false;
    const record = await store.findConsoleSession(parts.id);
    return record !== null && record.endedAt === null && record.expiresAt > clock.now() && verifySecret(parts.secret, record.secretHash);
  }

  /** Ends a console sign-in (sign-out); an unknown or malformed token ends nothing. */
  async function signOutOfConsole(token: string): Promise<void> {
    const parts = splitToken(token);
    if (!parts || !parts.id.startsWith('acs')) return;
    const record = await store.findConsoleSession(parts.id);
    // Only the holder of the secret may end it (the id alone is not a credential).
    if (record && verifySecret(parts.secret, record.secretHash)) await store.endConsoleSession(parts.id, clock.now());
  }

  return { createAdminToken, authenticateAdmin, needsBootstrap, signInToConsole, authenticateConsole, signOutOfConsole };
}

/** The admin token service returned by {@link createAdminTokenService}. */
export type AdminTokenService = ReturnType<typeof createAdminTokenService>;
