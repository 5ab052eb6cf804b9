// crypto.hash is read from the namespace: a named import of it would fail to link on the
// Node 20 releases before 20.12 that the engines range still allows.
import * as crypto from 'node:crypto';
import { createHash, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';

/**
 * Helpers for the secrets Tessera hands out: session tokens, client secrets, admin tokens
 * and logout tokens. All of them are 256-bit random values, so a fast SHA-256 is the right
 * stored form (a slow password hash buys nothing against brute force of 2^256 and would put
 * argon2 on every request). Only hashes are stored; comparisons are constant-time.
 */

// Random bytes are drawn from OpenSSL's CSPRNG 4 KB at a time and handed out in order, each
// byte once, as node:crypto's randomUUID does with its own pool. A call to randomBytes costs
// about 5 µs whatever its size (Node 20, OpenSSL 3: locking the generator, a new Buffer),
// a draw from the pool 0.3 µs, and a token response takes four to six random values (token
// ids, secrets, jtis). Bytes handed out are zeroed at once, so the pool never holds a
// secret already issued (only ones not yet drawn, as any pool does).
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let drawn = POOL_BYTES;

/** A URL-safe random string of `bytes` random bytes. */
export function randomToken(bytes = 32): string {
  if (bytes > POOL_BYTES / 8) return randomBytes(bytes).toString('base64url');
  if (drawn + bytes > POOL_BYTES) {
    randomFillSync(pool);
    drawn = 0;
  }
  const text = pool.toString('base64url', drawn, drawn + bytes);
  pool.fill(0, drawn, drawn + bytes);
  drawn += bytes;
  return text;
}

// One-shot crypto.hash (Node 20.12+) is about three times faster than a Hash object for a
// short input, and every authenticated request hashes its token secret once.
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function' ? (text) => crypto.hash('sha256', text, 'hex') : (text) => createHash('sha256').update(text, 'utf8').digest('hex');

/** SHA-256 of a secret, hex-encoded: the only form in which secrets are stored. */
export function hashSecret(secret: string): string {
  return sha256Hex(secret);
}

/**
 * Compares a presented secret with a stored hash in constant time. Comparing the hashes
 * (fixed length) rather than the raw strings means neither length nor content leaks
 * through timing. The hex texts are compared as bytes (stored hashes are always the
 * lower-case hex that {@link hashSecret} writes).
 */
export function verifySecret(secret: string, storedHash: string): boolean {
  const presented = hashSecret(secret);
  if (storedHash.length !== presented.length) return false;
  return timingSafeEqual(Buffer.from(presented, 'latin1'), Buffer.from(storedHash, 'latin1'));
}

/** A token of the form `<id>.<secret>` split into its parts. */
export interface SplitToken {
  id: string;
  secret: string;
}

// base64url characters only, bounded length: anything else is rejected before it reaches
// the store, so hostile input never becomes a query parameter of unbounded size.
const PART = /^[A-Za-z0-9_-]{8,128}$/;

/**
 * Creates a token `<id>.<secret>`. The id locates the record; the secret proves possession
 * and is stored only as {@link hashSecret}.
 *
 * @example
 * ```ts
 * const { token, id, secretHash } = createSplitToken();
 * ```
 */
export function createSplitToken(idPrefix = ''): { token: string; id: string; secretHash: string } {
  const id = idPrefix + randomToken(16);
  const secret = randomToken(32);
  return { token: `${id}.${secret}`, id, secretHash: hashSecret(secret) };
}

/** Splits `<id>.<secret>`; returns null for anything malformed (never throws). */
export function splitToken(token: unknown): SplitToken | null {
  if (typeof token !== 'string' || token.length > 300) return null;
  const dot = token.indexOf('.');
  if (dot < 0 || dot !== token.lastIndexOf('.')) return null;
  const id = token.slice(0, dot);
  const secret = token.slice(dot + 1);
  if (!PART.test(id) || !PART.test(secret)) return null;
  return { id, secret };
}

/** A public identifier with a readable prefix, e.g. `ses_…` for session handles. */
export function createHandle(prefix: string): string {
  return `${prefix}_${randomToken(16)}`;
}
