import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { TesseraSdkError } from '../errors.js';

/**
 * Only asymmetric algorithms Tessera signs with. Listing them (rather than trusting the
 * header) is what stops `alg: none` and the HS256-with-the-public-key confusion attack.
 */
export const ALLOWED_ALGORITHMS = ['EdDSA', 'ES256'] as const;

/**
 * Logout tokens to an app that is also an OpenID Connect client are signed with the client's
 * `id_token_signed_response_alg`, RS256 by default (what every OIDC library accepts), so the
 * back-channel receiver also takes RS256. Still asymmetric only: jose refuses a key whose type
 * does not match the algorithm, and HS* / none stay refused before any key lookup.
 */
export const LOGOUT_TOKEN_ALGORITHMS = ['EdDSA', 'ES256', 'RS256'] as const;

/** Default size bound: Tessera's tokens are well under 1 KB; 8 KB leaves room for claims. */
export const DEFAULT_MAX_TOKEN_BYTES = 8 * 1024;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface VerifyJwtOptions {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  /** Expected `typ` header, compared like jose does (case-insensitive, `application/` optional). */
  typ: string;
  clockToleranceSeconds: number;
  now: number;
  maxBytes: number;
  requiredClaims: string[];
  /** Accepted `alg` values; ALLOWED_ALGORITHMS when not given. */
  algorithms?: readonly string[];
}

/** Maps a jose (or key-fetch) failure to the SDK's stable code. */
export function toSdkError(error: unknown): TesseraSdkError {
  if (error instanceof TesseraSdkError) return error;
  if (error instanceof errors.JWTExpired) return new TesseraSdkError('TOKEN_EXPIRED', undefined, { cause: error });
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return new TesseraSdkError('TOKEN_CLAIMS_INVALID', `The token lacks the "${error.claim}" claim.`, { cause: error });
    switch (error.claim) {
      case 'iss':
        return new TesseraSdkError('TOKEN_WRONG_ISSUER', undefined, { cause: error });
      case 'aud':
        return new TesseraSdkError('TOKEN_WRONG_AUDIENCE', undefined, { cause: error });
      case 'typ':
        return new TesseraSdkError('TOKEN_WRONG_TYPE', undefined, { cause: error });
      case 'nbf':
      case 'iat':
        return new TesseraSdkError('TOKEN_NOT_YET_VALID', undefined, { cause: error });
      default:
        return new TesseraSdkError('TOKEN_CLAIMS_INVALID', `The "${error.claim}" claim is invalid.`, { cause: error });
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return new TesseraSdkError('TOKEN_INVALID_SIGNATURE', undefined, { cause: error });
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return new TesseraSdkError('TOKEN_INVALID_SIGNATURE', 'The token is signed with a key the issuer does not publish.', { cause: error });
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new TesseraSdkError('ALG_NOT_ALLOWED', undefined, { cause: error });
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported || error instanceof errors.JWKInvalid) {
    return new TesseraSdkError('TOKEN_MALFORMED', undefined, { cause: error });
  }
  // Anything else comes from fetching the key set: a timeout, a non-200 answer, a network error.
  return new TesseraSdkError('JWKS_UNAVAILABLE', undefined, { cause: error });
}

function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/**
 * Verifies a compact JWS JWT: cheap structural checks first (size, shape, algorithm, type),
 * so hostile input is rejected before any base64 decoding of the payload, any key lookup or
 * any signature work; then the signature and the registered claims through jose.
 */
export async function verifyJwt(token: string, options: VerifyJwtOptions): Promise<JWTPayload> {
  if (typeof token !== 'string') throw new TypeError('token must be a string');
  if (token.length > options.maxBytes) throw new TesseraSdkError('TOKEN_TOO_LARGE');
  if (!COMPACT_JWS.test(token)) throw new TesseraSdkError('TOKEN_MALFORMED');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch (error) {
    throw new TesseraSdkError('TOKEN_MALFORMED', undefined, { cause: error });
  }
  const algorithms = options.algorithms ?? ALLOWED_ALGORITHMS;
  if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) {
    throw new TesseraSdkError('ALG_NOT_ALLOWED', `The algorithm ${JSON.stringify(String(header.alg)).slice(0, 40)} is not allowed; only ${algorithms.join(', ')}.`);
  }
  if (typeof header.typ !== 'string' || normalizeTyp(header.typ) !== normalizeTyp(options.typ)) {
    throw new TesseraSdkError('TOKEN_WRONG_TYPE', `The token type must be ${options.typ}.`);
  }
  try {
    const { payload } = await jwtVerify(token, options.keys, {
      issuer: options.issuer,
      audience: options.audience,
      algorithms: [...algorithms],
      typ: options.typ,
      clockTolerance: options.clockToleranceSeconds,
      currentDate: new Date(options.now),
      requiredClaims: options.requiredClaims,
    });
    return payload;
  } catch (error) {
    throw toSdkError(error);
  }
}
