import { createPrivateKey, sign, type JsonWebKey, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import type { SigningAlgorithm } from './model.js';

/** A private signing key as node:crypto holds it, with the kid and alg its tokens name. */
export interface JwsSigningKey {
  kid: string;
  alg: SigningAlgorithm;
  key: KeyObject;
}

// The digest and signature encoding each JWS algorithm means (RFC 7518 §3.3, §3.4, RFC 8037):
// RS256 is PKCS#1 v1.5 over SHA-256 (node:crypto's default RSA padding); ES256 is ECDSA over
// SHA-256 with the signature as the 64 bytes r || s (JWS), not DER (node:crypto's default);
// EdDSA (Ed25519) hashes internally, so node:crypto is given no digest.
const DIGEST: Record<SigningAlgorithm, string | null> = { RS256: 'sha256', ES256: 'sha256', EdDSA: null };

// The encoded protected header of each (key, typ): a key signs thousands of tokens with the
// same two or three headers. Held by the key object, so it goes when the key is dropped.
const headers = new WeakMap<JwsSigningKey, Map<string, string>>();
// The sign() argument of each key (ES256 needs the encoding beside the key).
const signInputs = new WeakMap<JwsSigningKey, KeyObject | SignKeyObjectInput>();

/**
 * Imports a private JWK (as the key table stores it) for {@link signCompactJws}.
 *
 * @example
 * ```ts
 * const key = importJwsSigningKey(record.privateJwk, record.kid, record.alg);
 * ```
 */
export function importJwsSigningKey(jwk: Record<string, unknown>, kid: string, alg: SigningAlgorithm): JwsSigningKey {
  // node:crypto reads a JWK directly (kty and the key's own members; kid and alg are ignored).
  const key = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
  return { kid, alg, key };
}

function encodedHeader(signer: JwsSigningKey, typ: string): string {
  let byTyp = headers.get(signer);
  if (!byTyp) {
    byTyp = new Map();
    headers.set(signer, byTyp);
  }
  let header = byTyp.get(typ);
  if (header === undefined) {
    // The same members in the same order as jose's setProtectedHeader({ alg, kid, typ }), so a
    // token is byte for byte what jose's SignJWT made before.
    header = Buffer.from(JSON.stringify({ alg: signer.alg, kid: signer.kid, typ })).toString('base64url');
    byTyp.set(typ, header);
  }
  return header;
}

function signInput(signer: JwsSigningKey): KeyObject | SignKeyObjectInput {
  let input = signInputs.get(signer);
  if (!input) {
    input = signer.alg === 'ES256' ? { key: signer.key, dsaEncoding: 'ieee-p1363' } : signer.key;
    signInputs.set(signer, input);
  }
  return input;
}

function signingInput(signer: JwsSigningKey, typ: string, claims: object): string {
  return `${encodedHeader(signer, typ)}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
}

/**
 * A compact JWS (a signed JWT) of `claims`, protected header `{ alg, kid, typ }`, signed at
 * once on the calling thread. The claims are serialised in their own order, so build them in
 * the order the token should show (jose's SignJWT put iss, sub, aud, iat, exp, jti after the
 * payload, in the order of its setters).
 *
 * An Ed25519 or P-256 signature takes node:crypto about 30 µs, less than handing it to the
 * thread pool and back (WebCrypto, which jose uses, spent about 60 µs of the event loop's
 * time on an Ed25519 signature just to set the job up, and 100 µs for RS256, before the pool
 * did the work). RS256 would hold the event loop about 0.3 ms (2048-bit keys). Tokens a
 * request waits for go through {@link signCompactJwsForRequest}, which signs inline or in the
 * pool by algorithm; work nobody waits for (SETs, logout tokens) uses
 * {@link signCompactJwsInPool}.
 *
 * Nothing about the signature changes: WebCrypto in Node is the same OpenSSL underneath
 * (RSA with blinding, Ed25519 and P-256 in constant time, ECDSA nonces from OpenSSL's
 * generator), and the private key stays an opaque KeyObject. Measured on Node 20 / OpenSSL 3.
 *
 * @example
 * ```ts
 * const jwt = signCompactJws(key, 'at+jwt', { sub: 'usr_1', iss, aud, iat, exp, jti });
 * ```
 */
export function signCompactJws(signer: JwsSigningKey, typ: string, claims: object): string {
  const input = signingInput(signer, typ, claims);
  return `${input}.${sign(DIGEST[signer.alg], Buffer.from(input), signInput(signer)).toString('base64url')}`;
}

/**
 * {@link signCompactJws} with the signature made in libuv's thread pool: the private-key
 * operation runs beside the event loop, on another core when there is one, so a burst of
 * background signatures (SETs for many streams) does not hold up the requests (logouts among
 * them) waiting on the event loop. It costs a little more CPU per token than signing inline.
 *
 * @example
 * ```ts
 * const set = await signCompactJwsInPool(rsaKey, 'secevent+jwt', claims);
 * ```
 */
export function signCompactJwsInPool(signer: JwsSigningKey, typ: string, claims: object): Promise<string> {
  const input = signingInput(signer, typ, claims);
  return new Promise<string>((resolve, reject) => {
    sign(DIGEST[signer.alg], Buffer.from(input), signInput(signer), (error, signature) => (error ? reject(error) : resolve(`${input}.${signature.toString('base64url')}`)));
  });
}

/**
 * A token a request waits for (access, ID and client-credentials tokens), signed where it
 * costs the request least: an
 * Ed25519 or P-256 signature inline ({@link signCompactJws}: about 30 µs, less than a hand-off
 * to the thread pool), an RS256 one in the pool ({@link signCompactJwsInPool}). The RSA
 * private-key operation takes about 0.3 ms, and on the event loop it was the largest single
 * cost of a token request; in the pool it runs on another core while the event loop serves
 * the next requests, so the token endpoint answers more calls a second (RS256 is what most
 * relying parties register, as it is OpenID Connect's default).
 *
 * @example
 * ```ts
 * const idToken = await signCompactJwsForRequest(key, 'JWT', claims);
 * ```
 */
export function signCompactJwsForRequest(signer: JwsSigningKey, typ: string, claims: object): Promise<string> {
  return signer.alg === 'RS256' ? signCompactJwsInPool(signer, typ, claims) : Promise.resolve(signCompactJws(signer, typ, claims));
}
