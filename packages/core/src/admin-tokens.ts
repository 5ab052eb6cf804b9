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

  return { createAdminToken, authenticateAdmin, needsBootstrap };
}

/** The admin token service returned by {@link createAdminTokenService}. */
export type AdminTokenService = ReturnType<typeof createAdminTokenService>;
