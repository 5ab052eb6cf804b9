import { TesseraSdkError } from '../errors.js';

/**
 * The fetch function the SDK uses (the global one unless the app passes its own).
 *
 * @example
 * ```ts
 * const traced: FetchLike = (url, init) => { log.debug({ url: String(url) }); return fetch(url, init); };
 * createTessera({ ...credentials, fetch: traced });
 * ```
 */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  fetch: FetchLike;
  timeoutMs: number;
}

export interface ApiRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined>;
  form?: Record<string, string | undefined>;
  json?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** A Tessera API client authenticated with the app's credentials (HTTP Basic). */
export interface ApiClient {
  readonly authorization: string;
  url(path: string, query?: ApiRequest['query']): string;
  /** Sends a request; resolves with 2xx answers and rejects with a {@link TesseraSdkError} otherwise. */
  request(request: ApiRequest): Promise<ApiResponse>;
}

/** RFC 6749 §2.3.1: client id and secret are form-encoded before they are joined and base64-encoded. */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`, 'utf8').toString('base64')}`;
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const authorization = basicAuthorization(options.clientId, options.clientSecret);
  const base = options.baseUrl.replace(/\/+$/, '');

  function url(path: string, query?: ApiRequest['query']): string {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(key, String(value));
    const qs = search.toString();
    return `${base}${path}${qs ? `?${qs}` : ''}`;
  }

  async function request(req: ApiRequest): Promise<ApiResponse> {
    const headers: Record<string, string> = { authorization, accept: 'application/json', ...req.headers };
    let body: string | undefined;
    if (req.form) {
      const form = new URLSearchParams();
      for (const [key, value] of Object.entries(req.form)) if (value !== undefined) form.set(key, value);
      body = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers['content-type'] = 'application/json';
    }
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await options.fetch(url(req.path, req.query), { method: req.method, headers, body, signal, redirect: 'error' });
      text = await response.text();
    } catch (error) {
      throw new TesseraSdkError('TESSERA_UNAVAILABLE', `Tessera could not be reached (${req.method} ${req.path}).`, { cause: error });
    }
    let parsed: unknown = null;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        if (response.ok) throw new TesseraSdkError('TESSERA_RESPONSE_INVALID', `Tessera answered ${req.method} ${req.path} with a body that is not JSON.`, { cause: error });
      }
    }
    if (response.ok) return { status: response.status, body: parsed };
    const envelope = parsed !== null && typeof parsed === 'object' ? (parsed as { error?: unknown; message?: unknown }) : {};
    const code = typeof envelope.error === 'string' ? envelope.error : null;
    const message = typeof envelope.message === 'string' ? envelope.message : undefined;
    if (response.status >= 500 || code === null) {
      throw new TesseraSdkError('TESSERA_UNAVAILABLE', `Tessera answered ${req.method} ${req.path} with ${response.status}${code ? ` ${code}` : ''}.`, { status: response.status >= 500 ? 503 : 502 });
    }
    // Server codes pass through unchanged: they are Tessera's stable catalogue.
    throw new TesseraSdkError(code, message, { status: response.status });
  }

  return { authorization, url, request };
}
