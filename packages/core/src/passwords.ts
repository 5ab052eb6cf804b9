import { hash, verify } from '@node-rs/argon2';

// argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): memory-hard, so
// offline guessing of a leaked hash is expensive on GPUs.
const OPTIONS = { algorithm: 2 /* Algorithm.Argon2id (a const enum, unusable under verbatimModuleSyntax) */, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

// A hash of a random password, verified when the user does not exist so that a login for
// an unknown user takes as long as one for a known user (no user enumeration by timing).
let dummyHash: Promise<string> | undefined;

/**
 * Hashes a password with argon2id.
 *
 * @example
 * ```ts
 * const stored = await hashPassword('correct horse battery staple');
 * ```
 */
export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

/**
 * Verifies a password against a stored argon2 hash; with `storedHash` null it burns the
 * same time against a dummy hash and returns false.
 */
export async function verifyPassword(password: string, storedHash: string | null): Promise<boolean> {
  if (storedHash === null) {
    dummyHash ??= hash('tessera-dummy-password-for-timing', OPTIONS);
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await verify(storedHash, password);
  } catch {
    return false;
  }
}
