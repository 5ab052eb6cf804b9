/**
 * A failed call to Tessera from the browser helper.
 *
 * `code` is stable and safe to branch on: the server's own error code (`ORIGIN_NOT_ALLOWED`,
 * `CSRF_FAILED`, `LOGOUT_TOKEN_INVALID`, `RATE_LIMITED`, …), `NETWORK_ERROR` when no HTTP
 * response arrived (offline, DNS, a refused connection, or a CORS failure, which browsers
 * report exactly like a network error), or `UNEXPECTED_RESPONSE` when the response carried
 * no Tessera error body (a proxy's error page, a wrong issuer URL). `status` is the HTTP
 * status, or `null` when there was no response.
 *
 * @example
 * ```ts
 * import { logout, TesseraBrowserError } from '@tessera/browser';
 *
 * try {
 *   await logout({ issuer: 'https://auth.example.com' });
 * } catch (error) {
 *   if (error instanceof TesseraBrowserError && error.code === 'NETWORK_ERROR') showOfflineNotice();
 *   else throw error;
 * }
 * ```
 */
export class TesseraBrowserError extends Error {
  override readonly name = 'TesseraBrowserError';
  /** Stable error code: the server's `error` field, `NETWORK_ERROR` or `UNEXPECTED_RESPONSE`. */
  readonly code: string;
  /** HTTP status of the response, or `null` when none arrived. */
  readonly status: number | null;

  constructor(code: string, message: string, status: number | null, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = status;
  }
}

// Only a code that looks like one from Tessera's catalogue is passed through: an arbitrary
// upstream body must not be able to put free text where callers expect a stable code.
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** The error a non-success response stands for, read from Tessera's `{"error","message"}` body. */
export async function readResponseError(response: Response): Promise<TesseraBrowserError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (an HTML error page from a proxy, an empty body): the generic code below.
  }
  if (typeof body === 'object' && body !== null) {
    const { error, message } = body as { error?: unknown; message?: unknown };
    if (typeof error === 'string' && CODE.test(error)) {
      return new TesseraBrowserError(error, typeof message === 'string' ? message : error, response.status);
    }
  }
  return new TesseraBrowserError('UNEXPECTED_RESPONSE', `Unexpected HTTP ${response.status} from Tessera.`, response.status);
}
