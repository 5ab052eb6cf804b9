/**
 * The closed catalogue of Tessera error codes. Every code has one HTTP status and a
 * default message that is safe to show to the caller. docs/errors.md documents each one.
 *
 * @example
 * ```ts
 * throw new TesseraError('SESSION_NOT_FOUND');
 * ```
 */
export const ERROR_CATALOGUE = {
  INVALID_REQUEST: { status: 400, message: 'The request is malformed or fails validation.' },
  MALFORMED_BODY: { status: 400, message: 'The request body could not be parsed.' },
  INVALID_NAME: { status: 400, message: 'A name contains a control, bidirectional or invisible character.' },
  RETURN_URL_NOT_ALLOWED: { status: 400, message: 'return_to is not an allow-listed URL.' },
  INVALID_GRANT: { status: 400, message: 'The session or refresh token is invalid, expired, ended, or not for this app.' },
  UNSUPPORTED_GRANT_TYPE: { status: 400, message: 'grant_type must be session_token or refresh_token.' },
  SSF_TOKEN_IN_QUERY: { status: 400, message: 'Send the access token in the Authorization header (Bearer), never in the URL.' },
  SSF_SUBJECT_UNSUPPORTED: { status: 400, message: 'The subject identifier format is not supported here.' },
  SSF_SET_REFUSED: { status: 400, message: 'The pushed SET was refused (see err and description).' },
  UNAUTHENTICATED: { status: 401, message: 'No valid session was presented.' },
  INVALID_CREDENTIALS: { status: 401, message: 'The username or password is wrong.' },
  INVALID_CLIENT: { status: 401, message: 'The client id or secret is wrong.' },
  INVALID_ADMIN_TOKEN: { status: 401, message: 'The admin token is missing or wrong.' },
  REFRESH_TOKEN_REUSED: { status: 401, message: 'This refresh token was already used; the session has been ended.' },
  SSF_INVALID_TOKEN: { status: 401, message: 'The access token is missing, invalid or expired.' },
  USER_DISABLED: { status: 403, message: 'The user is disabled.' },
  APP_NOT_TRUSTED: { status: 403, message: 'This app is not trusted to do this (start sessions, end every session of a user).' },
  CSRF_FAILED: { status: 403, message: 'The request failed the CSRF check.' },
  ORIGIN_NOT_ALLOWED: { status: 403, message: 'The request origin is not registered.' },
  LOGOUT_TOKEN_INVALID: { status: 403, message: 'The logout token is unknown, spent or expired.' },
  TOKEN_INVALID: { status: 403, message: 'The session token is unknown.' },
  FORBIDDEN: { status: 403, message: 'This action is not allowed.' },
  SSF_INSUFFICIENT_SCOPE: { status: 403, message: 'The access token lacks the scope this needs (ssf.manage or ssf.read).' },
  NOT_FOUND: { status: 404, message: 'No such route.' },
  USER_NOT_FOUND: { status: 404, message: 'No such user.' },
  APP_NOT_FOUND: { status: 404, message: 'No such app.' },
  SESSION_NOT_FOUND: { status: 404, message: 'No such session.' },
  DELIVERY_NOT_FOUND: { status: 404, message: 'No such delivery, or it was already delivered.' },
  SSF_EVENT_NOT_FOUND: { status: 404, message: 'No such dead SET on this stream (unknown, of another stream, or not dead).' },
  SSF_STREAM_NOT_FOUND: { status: 404, message: 'No such stream (for this receiver).' },
  SSF_UPSTREAM_NOT_FOUND: { status: 404, message: 'No upstream transmitter of this name is configured here.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this route.' },
  USER_CONFLICT: { status: 409, message: 'A user with this id, username or email exists.' },
  APP_CONFLICT: { status: 409, message: 'An app with this client id exists.' },
  SSF_STREAM_DISABLED: { status: 409, message: 'The stream is disabled: it sends nothing. Enable it first.' },
  SSF_STREAM_LIMIT: { status: 409, message: 'This receiver already holds as many streams as it may (ssf.maxStreamsPerClient).' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request took too long to arrive.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The content type is not supported here.' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request line or headers are too large.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; slow down.' },
  SSF_VERIFICATION_TOO_SOON: { status: 429, message: 'A verification was requested sooner than the stream\'s min_verification_interval.' },
  INTERNAL: { status: 500, message: 'An internal error occurred.' },
  UNAVAILABLE: { status: 503, message: 'The service is not available right now.' },
  SSF_UPSTREAM_KEYS_UNAVAILABLE: { status: 503, message: 'The upstream transmitter\'s keys could not be fetched; push the SET again later.' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A stable error code from {@link ERROR_CATALOGUE}. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/**
 * The one error class of Tessera. `code` is stable and documented; `status` is the HTTP
 * status it maps to; `expose` says whether `message` may be shown to the caller
 * (always true for 4xx, false for 5xx, whose details stay in the server log).
 *
 * @example
 * ```ts
 * try { await authority.revokeSession(handle, by) }
 * catch (e) { if (e instanceof TesseraError && e.code === 'SESSION_NOT_FOUND') … }
 * ```
 */
export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    const entry = ERROR_CATALOGUE[code];
    super(message ?? entry.message, options);
    this.name = 'TesseraError';
    this.code = code;
    this.status = entry.status;
    this.expose = entry.status < 500;
  }
}

/** True when `value` is a {@link TesseraError}, optionally with the given code. */
export function isTesseraError(value: unknown, code?: ErrorCode): value is TesseraError {
  return value instanceof TesseraError && (code === undefined || value.code === code);
}
