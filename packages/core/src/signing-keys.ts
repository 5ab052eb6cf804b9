import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { importJwsSigningKey, type JwsSigningKey } from './compact-jws.js';
import type { CoreDeps } from './deps.js';
import type { SigningAlgorithm, SigningKeyRecord } from './model.js';

/** A key ready to sign with: its kid, alg and node:crypto private key (see compact-jws.ts). */
export type ActiveKey = JwsSigningKey;

// How long after a key stops signing it stays published: the longest-lived token it may
// have signed (access tokens; back-channel logout tokens live 2 minutes) plus clock skew.
const LOGOUT_TOKEN_MS = 120_000;
const SKEW_MS = 60_000;
// Nodes re-read the key table at least this often, so a key created by another node is
// seen (and published) well before it starts signing a period later.
const RELOAD_MS = 60_000;

/**
 * The ID token signing algorithms every Tessera publishes keys for (and the discovery
 * document lists as id_token_signing_alg_values_supported): EdDSA and ES256, and RS256
 * because many existing clients accept nothing else.
 */
export const ID_TOKEN_ALGORITHMS: readonly SigningAlgorithm[] = Object.freeze(['RS256', 'EdDSA', 'ES256']);

/**
 * Signing keys live in the store, so every node signs with the same keys and publishes the
 * same JWKS. Time is cut into rotation periods; the key of period p has the kid `tk-<p>`,
 * signs during p, is published from the start of p-1 (so verifiers have it before its first
 * token) until every token it signed has expired. Nodes racing to create a period's key
 * insert with ON CONFLICT DO NOTHING and then all use whichever insert won.
 *
 * Access and logout tokens are signed with the configured algorithm (`tokens.algorithm`). ID
 * tokens are signed with the algorithm each OIDC client registered (RS256 by default, the one
 * every relying party accepts). Each of the other ID token algorithms ({@link ID_TOKEN_ALGORITHMS})
 * has a series of its own (kid `tk-<p>-<alg>`) from the first start, published a period
 * before it signs and rotated like the main series.
 *
 * @example
 * ```ts
 * const keys = createKeyManager(deps);
 * const key = await keys.signingKey(); // { kid, alg, key }
 * const jwt = signCompactJws(key, 'JWT', claims);
 * const jwks = await keys.publicJwks();
 * ```
 */
export function createKeyManager(deps: CoreDeps) {
  const { store, clock, config } = deps;
  const rotationMs = config.tokens.keyRotationSeconds * 1000;
  const tailMs = Math.max(config.tokens.accessTokenTtlSeconds * 1000, LOGOUT_TOKEN_MS) + SKEW_MS;
  let keys: SigningKeyRecord[] = [];
  let loadedAt = -Infinity;
  let loading: Promise<void> | null = null;
  let forcedAt = -Infinity;
  const imported = new Map<string, Promise<CryptoKey | Uint8Array>>();
  // Private keys as node:crypto KeyObjects, parsed once per kid: tokens are signed with
  // node:crypto (compact-jws.ts), and no token should pay for parsing a JWK (an RSA key's
  // is checked on import). One entry per key a node ever signed with: a few a day.
  const signers = new Map<string, JwsSigningKey>();

  const main: SigningAlgorithm = config.tokens.algorithm;
  // Algorithms asked for on this node that may not have keys in the store yet.
  const requested = new Set<SigningAlgorithm>();
  const periodOf = (ms: number) => Math.floor(ms / rotationMs);
  const kidOf = (period: number, alg: SigningAlgorithm = main) => (alg === main ? `tk-${period}` : `tk-${period}-${alg.toLowerCase()}`);

  async function createKey(period: number, alg: SigningAlgorithm = main): Promise<SigningKeyRecord> {
    const options = alg === 'EdDSA' ? { crv: 'Ed25519' } : alg === 'RS256' ? { modulusLength: 2048 } : {};
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
    const kid = kidOf(period, alg);
    const retiresAt = (period + 1) * rotationMs;
    return {
      kid,
      alg,
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
      activatesAt: period * rotationMs,
      retiresAt,
      expiresAt: retiresAt + tailMs,
      createdAt: clock.now(),
    };
  }

  /** Makes sure the keys of the current and the next period exist, then reloads. */
  async function load(): Promise<void> {
    const now = clock.now();
    let current = await store.listSigningKeys(now);
    const period = periodOf(now);
    let missing = false;
    // Every series in use goes on: the main one, those with keys in the store, those asked for.
    // (A key of the main series keeps its kid `tk-<p>` whatever its algorithm, so a changed
    // tokens.algorithm takes over at the next period, as before.)
    // The three ID token algorithms the discovery document advertises always have a series,
    // from the first start on: a relying party that accepts only one of them (many accept
    // only RS256, some only ES256) finds its key in the JWKS before any client registered.
    const algs = new Set<SigningAlgorithm>([main, ...ID_TOKEN_ALGORITHMS, ...current.filter((k) => /^tk-\d+-/.test(k.kid)).map((k) => k.alg), ...requested]);
    for (const alg of algs) {
      for (const p of [period, period + 1]) {
        if (current.some((k) => k.kid === kidOf(p, alg))) continue;
        missing = true;
        await store.insertSigningKey(await createKey(p, alg));
      }
    }
    // Reload whenever a key was missing, whether this node's insert won or another node's
    // did: otherwise a node that lost the race would publish a JWKS without that key (and
    // differ from the other nodes) until its next reload.
    if (missing) {
      await store.deleteExpiredSigningKeys(now);
      current = await store.listSigningKeys(now);
    }
    keys = current;
    loadedAt = now;
  }

  async function fresh(): Promise<SigningKeyRecord[]> {
    const now = clock.now();
    const stale = now - loadedAt >= RELOAD_MS || now < loadedAt || !keys.some((k) => /^tk-\d+$/.test(k.kid) && k.activatesAt <= now && now < k.retiresAt);
    if (stale) {
      loading ??= load().finally(() => {
        loading = null;
      });
      await loading;
    }
    return keys;
  }

  // Verification stays with jose (jwtVerify), which takes its own key form.
  function importPublicKey(record: SigningKeyRecord): Promise<CryptoKey | Uint8Array> {
    let key = imported.get(record.kid);
    if (!key) {
      key = importJWK(record.publicJwk as JWK, record.alg);
      imported.set(record.kid, key);
    }
    return key;
  }

  /**
   * Makes sure keys of `alg` exist (and are published) from now on. Called when an OIDC
   * client registers with that ID token algorithm, before it can ask for a token.
   */
  async function ensureAlgorithm(alg: SigningAlgorithm): Promise<void> {
    if (alg === main || requested.has(alg)) return;
    requested.add(alg);
    loadedAt = -Infinity;
    await fresh();
  }

  /** The key of `alg` (default: the configured algorithm) that signs now. */
  async function signingKey(alg?: SigningAlgorithm): Promise<ActiveKey> {
    const now = clock.now();
    const active = (k: SigningKeyRecord) => k.activatesAt <= now && now < k.retiresAt;
    // Without an algorithm: the main series. With one: any active key of that algorithm.
    const pick = (keys: SigningKeyRecord[]) => keys.find((k) => active(k) && (alg === undefined ? /^tk-\d+$/.test(k.kid) : k.alg === alg));
    let record = pick(await fresh());
    // A series nobody asked for yet (a client registered before this version): start it now.
    if (!record && alg !== undefined && alg !== main) {
      await ensureAlgorithm(alg);
      record = pick(await fresh());
    }
    if (!record) throw new Error('no active signing key');
    let signer = signers.get(record.kid);
    if (!signer) {
      signer = importJwsSigningKey(record.privateJwk, record.kid, record.alg);
      signers.set(record.kid, signer);
    }
    return signer;
  }

  /** The public keys to publish at /.well-known/jwks.json. */
  async function publicJwks(): Promise<{ keys: Record<string, unknown>[] }> {
    return { keys: (await fresh()).map((k) => k.publicJwk) };
  }

  /** The public key with this kid, if it is still published; reloads once for an unknown kid. */
  async function verificationKey(kid: string): Promise<{ key: CryptoKey | Uint8Array; alg: string } | null> {
    let record = (await fresh()).find((k) => k.kid === kid);
    // An unknown kid may be a key another node just created; reload, but at most every few
    // seconds, so a flood of tokens with made-up kids cannot turn into a flood of queries.
    if (!record && /^tk-\d+(-[a-z0-9]+)?$/.test(kid) && clock.now() - forcedAt >= 5_000) {
      forcedAt = clock.now();
      loadedAt = -Infinity;
      record = (await fresh()).find((k) => k.kid === kid);
    }
    return record ? { key: await importPublicKey(record), alg: record.alg } : null;
  }

  return { signingKey, publicJwks, verificationKey, ensureAlgorithm };
}

/** The key manager returned by {@link createKeyManager}. */
export type KeyManager = ReturnType<typeof createKeyManager>;
