// Tokens an attacker could present: unsigned, HMAC-signed with the public key, signed with a
// foreign key, oversized. Built by hand or with jose, never by Tessera.
import { base64url, decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

const b64 = (value: unknown) => base64url.encode(JSON.stringify(value));

/** The claims of a real token, for forgeries that look exactly like it. */
export function claimsOf(token: string): JWTPayload {
  return decodeJwt(token);
}

export function kidOf(token: string): string {
  return decodeProtectedHeader(token).kid as string;
}

/** `alg: none`, empty signature (RFC 7519 §6 unsecured JWT). */
export function unsignedToken(claims: JWTPayload): string {
  return `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`;
}

/** HS256 keyed with the issuer's public key bytes: the classic algorithm-confusion forgery. */
export async function hmacWithPublicKey(claims: JWTPayload, publicX: string, kid: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(base64url.decode(publicX));
}

/** Signed with a fresh Ed25519 key that the issuer never published. */
export async function foreignKeyToken(claims: JWTPayload, kid: string): Promise<string> {
  const { privateKey } = await generateKeyPair('EdDSA');
  return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid }).sign(privateKey);
}

/** A well-formed-looking token over the size bound. */
export function oversizedToken(claims: JWTPayload, bytes = 9000): string {
  return `${b64({ alg: 'EdDSA', typ: 'at+jwt' })}.${b64({ ...claims, pad: 'x'.repeat(bytes) })}.${'A'.repeat(86)}`;
}
