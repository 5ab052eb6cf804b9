/**
 * The closed catalogue of errors the SDK raises itself. Every code has the HTTP status a
 * middleware answers with and a default message that is safe to show to the caller (it
 * never contains the token). packages/sdk/README.md documents each one.
 *
 * Calls to the Tessera API (`exchange`, `refresh`, …) may also reject with the server's own
 * stable codes (`INVALID_GRANT`, `REFRESH_TOKEN_REUSED`, `INVALID_CLIENT`, …), passed
 * through unchanged with the server's HTTP status.
 *
 * @example
 * ```ts
 * SDK_ERRORS.TOKEN_REVOKED.status; // 401
 * ```
 */
export const SDK_ERRORS = {
  TOKEN_MISSING: { status: 401, message: 'No access token was presented.' },
  TOKEN_MALFORMED: { status: 401, message: 'The access token is not a well-formed JWT.' },
  TOKEN_TOO_LARGE: { status: 401, message: 'The access token is too large.' },
  ALG_NOT_ALLOWED: { status: 401, message: 'The token is signed with an algorithm that is not allowed.' },
  TOKEN_WRONG_TYPE: { status: 401, message: 'The token is not of the expected type.' },
  TOKEN_INVALID_SIGNATURE: { status: 401, message: 'The token signature is invalid or made with an unknown key.' },
  TOKEN_EXPIRED: { status: 401, message: 'The access token has expired.' },
  TOKEN_NOT_YET_VALID: { status: 401, message: 'The access token is not valid yet.' },
  TOKEN_WRONG_ISSUER: { status: 401, message: 'The token was issued by another issuer.' },
  TOKEN_WRONG_AUDIENCE: { status: 401, message: 'The token was issued for another app.' },
  TOKEN_CLAIMS_INVALID: { status: 401, message: 'The token lacks a required claim or a claim has the wrong type.' },
  TOKEN_REVOKED: { status: 401, message: 'The session of this token has ended.' },
  LOGOUT_TOKEN_INVALID: { status: 400, message: 'The logout token is not a valid back-channel logout token.' },
  LOGOUT_TOKEN_REPLAYED: { status: 400, message: 'This logout token was already received.' },
  FEED_UNAVAILABLE: { status: 503, message: 'The revocation feed is unreachable; tokens cannot be checked for revocation.' },
  JWKS_UNAVAILABLE: { status: 503, message: 'The signing keys of the issuer could not be fetched.' },
  TESSERA_UNAVAILABLE: { status: 503, message: 'Tessera could not be reached or answered with a server error.' },
  TESSERA_RESPONSE_INVALID: { status: 502, message: 'Tessera answered with a response the SDK does not understand.' },
  CLOSED: { status: 503, message: 'This Tessera client has been closed.' },
} as const satisfies Record<string, { status: number; message: string }>;

/**
 * A stable code raised by the SDK itself (see {@link SDK_ERRORS}).
 *
 * @example
 * ```ts
 * const code: SdkErrorCode = 'TOKEN_EXPIRED';
 * ```
 */
export type SdkErrorCode = keyof typeof SDK_ERRORS;

/**
 * Codes of the Tessera server that API calls pass through (the server's catalogue is closed
 * too; this list names the ones an app is likely to branch on).
 *
 * @example
 * ```ts
 * const code: ServerErrorCode = 'REFRESH_TOKEN_REUSED';
 * ```
 */
export type ServerErrorCode =
  | 'INVALID_GRANT'
  | 'UNSUPPORTED_GRANT_TYPE'
  | 'INVALID_CLIENT'
  | 'REFRESH_TOKEN_REUSED'
  | 'INVALID_REQUEST'
  | 'INVALID_NAME'
  | 'APP_NOT_TRUSTED'
  | 'SESSION_NOT_FOUND'
  | 'USER_NOT_FOUND'
  | 'USER_DISABLED'
  | 'TOKEN_INVALID'
  | 'RATE_LIMITED';

/**
 * Every code a {@link TesseraSdkError} may carry.
 *
 * @example
 * ```ts
 * function isAuthFailure(code: TesseraSdkErrorCode) { return code.startsWith('TOKEN_'); }
 * ```
 */
export type TesseraSdkErrorCode = SdkErrorCode | ServerErrorCode | (string & {});

/**
 * The one error class of the SDK. `code` is stable and documented (assert on it, not on the
 * message); `status` is the HTTP status a middleware answers with (for an API call: the
 * status Tessera answered with).
 *
 * @example
 * ```ts
 * try {
 *   const session = await tessera.verify(token);
 * } catch (error) {
 *   if (error instanceof TesseraSdkError && error.code === 'TOKEN_REVOKED') return signIn();
 *   throw error;
 * }
 * ```
 */
export class TesseraSdkError extends Error {
  override readonly name = 'TesseraSdkError';
  readonly code: TesseraSdkErrorCode;
  readonly status: number;

  constructor(code: TesseraSdkErrorCode, message?: string, options: { status?: number; cause?: unknown } = {}) {
    const known = (SDK_ERRORS as Record<string, { status: number; message: string } | undefined>)[code];
    super(message ?? known?.message ?? code, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? known?.status ?? 500;
  }
}

/**
 * True when `error` is a {@link TesseraSdkError}, optionally with the given code.
 *
 * @example
 * ```ts
 * if (isTesseraSdkError(error, 'REFRESH_TOKEN_REUSED')) forgetTokens();
 * ```
 */
export function isTesseraSdkError(error: unknown, code?: TesseraSdkErrorCode): error is TesseraSdkError {
  return error instanceof TesseraSdkError && (code === undefined || error.code === code);
}
