import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { TesseraSdkError } from '../errors.js';
import type { ApiClient, FetchLike } from './api-client.js';

/**
 * One entry of the revocation log, as the feed delivers it (times as `Date`).
 *
 * @example
 * ```ts
 * tessera.on('revoked', (event) => console.log(event.cursor, event.sid, event.reason));
 * ```
 */
export interface RevocationEvent {
  /** Position in the log; strictly increasing, gapless across the whole log. */
  cursor: number;
  /** The session handle (`sid` claim of its access tokens). */
  sid: string;
  /** The user id. */
  sub: string;
  /** Why: logout, user_revoked, admin_revoked, user_disabled, user_deleted, password_changed, expired, token_theft, upstream_signal, … */
  reason: string;
  /** Who ended it (a user id, client id, `admin:…`, `system`), when the server tells. */
  actor: string | null;
  /** null when the whole session ended; this app's client id when only its part did. */
  app: string | null;
  at: Date;
  /** After this moment no access token of the session can still be valid. */
  forgetAfter: Date;
}

/**
 * Where the follower is: `idle` (not started), `catching-up` (paging the log),
 * `connected` (stream open), `reconnecting` (waiting out a backoff), `failed` (credentials
 * refused; it stopped), `closed`.
 *
 * @example
 * ```ts
 * const ready: FeedState[] = ['connected'];
 * if (!ready.includes(tessera.feedStatus().state)) res.statusCode = 503;
 * ```
 */
export type FeedState = 'idle' | 'catching-up' | 'connected' | 'reconnecting' | 'failed' | 'closed';

/**
 * A snapshot of the revocation feed follower.
 *
 * @example
 * ```ts
 * const { state, cursor } = tessera.feedStatus();
 * ```
 */
export interface FeedStatus {
  state: FeedState;
  /** The cursor of the last log entry applied (0 before any). */
  cursor: number;
  /** When the feed last showed a sign of life (any bytes, a page, a connect), epoch ms; null before. */
  lastContactAt: number | null;
  /** True once the initial catch-up finished (the set then holds every still-relevant entry). */
  caughtUp: boolean;
  /** Reconnect attempts since the last successful connect. */
  attempt: number;
}

export interface FeedFollowerOptions {
  api: ApiClient;
  fetch: FetchLike;
  pageSize: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  heartbeatTimeoutMs: number;
  now: () => number;
  random: () => number;
  apply: (event: RevocationEvent) => void;
  onUp: (info: { cursor: number }) => void;
  onDown: (info: { error: Error; attempt: number; retryInMs: number | null }) => void;
  warn: (message: string, details?: Record<string, unknown>) => void;
}

export interface FeedFollower {
  start(): Promise<void>;
  close(): Promise<void>;
  status(): FeedStatus;
  /** True while a stream is open (after the initial catch-up). */
  readonly connected: boolean;
}

const MAX_EVENT_BYTES = 64 * 1024;

/** Reads a number-like value (the server may send cursors as numbers or numeric strings). */
function toCursor(value: unknown): number | null {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : null;
}

function toTime(value: unknown): number | null {
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Follows the revocation log: first pages `GET /v1/revocations` from the last cursor to the
 * head (so `start()` can tell when the set is complete), then keeps
 * `GET /v1/revocations/stream` open, resuming with `Last-Event-ID` after any drop.
 */
export function createFeedFollower(options: FeedFollowerOptions): FeedFollower {
  let state: FeedState = 'idle';
  let cursor = 0;
  let lastContactAt: number | null = null;
  let caughtUp = false;
  let attempt = 0;
  let running: Promise<void> | null = null;
  let current: AbortController | null = null;
  let wake: (() => void) | null = null;
  let ready: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } | null = null;

  const closedError = () => new TesseraSdkError('CLOSED');

  /** Parses and applies one log entry; entries at or before the cursor were applied already. */
  function handle(raw: unknown, idHint: string | undefined): void {
    if (raw === null || typeof raw !== 'object') {
      options.warn('tessera: ignored a revocation feed entry that is not an object');
      return;
    }
    const e = raw as Record<string, unknown>;
    const at = toCursor(e.cursor) ?? toCursor(idHint);
    if (at === null) {
      options.warn('tessera: ignored a revocation feed entry without a cursor');
      return;
    }
    // A resumed stream may repeat what a page or an earlier connection delivered.
    if (at <= cursor) return;
    cursor = at;
    if (typeof e.sid !== 'string' || e.sid === '') {
      options.warn('tessera: a revocation feed entry had no sid', { cursor: at });
      return;
    }
    const now = options.now();
    const atMs = toTime(e.at);
    const forgetMs = toTime(e.forget_after);
    if (atMs === null || forgetMs === null) {
      options.warn('tessera: a revocation feed entry had unreadable times; keeping it for a day', { cursor: at });
    }
    options.apply({
      cursor: at,
      sid: e.sid,
      sub: typeof e.sub === 'string' ? e.sub : '',
      reason: typeof e.reason === 'string' ? e.reason : 'unknown',
      actor: typeof e.actor === 'string' ? e.actor : null,
      app: typeof e.app === 'string' ? e.app : null,
      at: new Date(atMs ?? now),
      // Unknown lifetime: err on the side of remembering the revocation.
      forgetAfter: new Date(forgetMs ?? now + 86_400_000),
    });
  }

  async function catchUp(signal: AbortSignal): Promise<void> {
    for (;;) {
      const after = cursor;
      // From an empty set, the entries whose tokens have all expired are not worth reading:
      // the server starts the first page at the first entry that still matters.
      const query = after === 0 ? { after, limit: options.pageSize, skip_forgotten: 'true' } : { after, limit: options.pageSize };
      const { body } = await options.api.request({ method: 'GET', path: '/v1/revocations', query, signal });
      lastContactAt = options.now();
      const page = body as { events?: unknown; next?: unknown } | null;
      if (!page || !Array.isArray(page.events)) throw new TesseraSdkError('TESSERA_RESPONSE_INVALID', 'GET /v1/revocations did not return an events array.');
      for (const event of page.events) handle(event, undefined);
      const next = toCursor(page.next);
      // `next` also moves past other apps' entries the server leaves out of `events`.
      if (next !== null && next > cursor) cursor = next;
      if (cursor <= after) return;
    }
  }

  async function stream(signal: AbortSignal): Promise<void> {
    // The watchdog turns a silent connection (half-open TCP, a stalled proxy) into a
    // reconnect. It runs from the request on, not from the answer: a reconnect can be sent
    // over a pooled keep-alive connection that is itself stalled, and would then wait for
    // headers forever. `heardAt` is this connection's last sign of life (the request, the
    // headers, each chunk); `lastContactAt` (staleness) moves only on what Tessera sent.
    let heardAt = options.now();
    const watchdog = setInterval(() => {
      if (options.now() - heardAt > options.heartbeatTimeoutMs) {
        current?.abort(new TesseraSdkError('TESSERA_UNAVAILABLE', 'No heartbeat on the revocation stream.'));
      }
    }, Math.max(10, Math.min(1000, Math.floor(options.heartbeatTimeoutMs / 4))));
    watchdog.unref();
    try {
      await follow(signal, () => (heardAt = options.now()));
    } finally {
      clearInterval(watchdog);
    }
  }

  async function follow(signal: AbortSignal, heard: () => void): Promise<void> {
    const response = await options
      .fetch(options.api.url('/v1/revocations/stream'), {
        headers: { authorization: options.api.authorization, accept: 'text/event-stream', 'cache-control': 'no-cache', 'last-event-id': String(cursor) },
        signal,
      })
      .catch((error: unknown) => {
        throw new TesseraSdkError('TESSERA_UNAVAILABLE', 'The revocation stream could not be opened.', { cause: error });
      });
    if (!response.ok || !response.body) {
      let code: string | null = null;
      try {
        const body = (await response.json()) as { error?: unknown };
        if (typeof body.error === 'string') code = body.error;
      } catch {
        // not JSON: the status is all there is
      }
      if (response.status === 401 || response.status === 403) {
        throw new TesseraSdkError(code ?? 'INVALID_CLIENT', `The revocation stream refused this app (${response.status}).`, { status: response.status });
      }
      throw new TesseraSdkError('TESSERA_UNAVAILABLE', `The revocation stream answered ${response.status}${code ? ` ${code}` : ''}.`);
    }
    const type = response.headers.get('content-type') ?? '';
    if (!type.toLowerCase().startsWith('text/event-stream')) {
      await response.body.cancel().catch(() => undefined);
      throw new TesseraSdkError('TESSERA_RESPONSE_INVALID', `The revocation stream answered with ${type || 'no content type'}.`);
    }
    state = 'connected';
    attempt = 0;
    heard();
    lastContactAt = options.now();
    if (!caughtUp) {
      caughtUp = true;
      ready?.resolve();
    }
    options.onUp({ cursor });

    const parser = createParser({
      onEvent(message: EventSourceMessage) {
        if (message.event !== undefined && message.event !== 'revocation') return;
        if (message.data.length > MAX_EVENT_BYTES) {
          options.warn('tessera: ignored an oversized revocation feed message');
          return;
        }
        let data: unknown;
        try {
          data = JSON.parse(message.data);
        } catch {
          options.warn('tessera: ignored a revocation feed message that is not JSON', { id: message.id });
          return;
        }
        handle(data, message.id);
      },
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body) {
      heard();
      lastContactAt = options.now();
      parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
    }
    throw new TesseraSdkError('TESSERA_UNAVAILABLE', 'The revocation stream ended.');
  }

  /** Full jitter over an exponential window: spreads the reconnects of many instances. */
  function backoff(n: number): number {
    const ceiling = Math.min(options.reconnectMaxMs, options.reconnectMinMs * 2 ** Math.min(n, 30));
    return Math.round(options.reconnectMinMs + options.random() * Math.max(0, ceiling - options.reconnectMinMs));
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
    });
  }

  async function run(): Promise<void> {
    while (state !== 'closed') {
      const controller = new AbortController();
      current = controller;
      try {
        if (!caughtUp) {
          state = 'catching-up';
          await catchUp(controller.signal);
        }
        await stream(controller.signal);
      } catch (caught) {
        if ((state as FeedState) === 'closed') break;
        const error = caught instanceof Error ? caught : new Error(String(caught));
        const reason = controller.signal.aborted && controller.signal.reason instanceof Error ? controller.signal.reason : error;
        if (reason instanceof TesseraSdkError && (reason.status === 401 || reason.status === 403)) {
          // Wrong credentials do not fix themselves: stop, and let verify apply the policy.
          state = 'failed';
          options.onDown({ error: reason, attempt, retryInMs: null });
          ready?.reject(reason);
          return;
        }
        state = 'reconnecting';
        const delay = backoff(attempt);
        attempt++;
        options.onDown({ error: reason, attempt, retryInMs: delay });
        await sleep(delay);
      } finally {
        current = null;
      }
    }
  }

  return {
    start() {
      if (state === 'closed') return Promise.reject(closedError());
      if (!ready) {
        let resolve!: () => void;
        let reject!: (error: Error) => void;
        const promise = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        // An app that never awaits start() must not see an unhandled rejection.
        promise.catch(() => undefined);
        ready = { promise, resolve, reject };
        running = run();
      }
      return ready.promise;
    },
    async close() {
      if (state === 'closed') return;
      state = 'closed';
      current?.abort(closedError());
      wake?.();
      ready?.reject(closedError());
      await running;
    },
    status() {
      return { state, cursor, lastContactAt, caughtUp, attempt };
    },
    get connected() {
      return state === 'connected';
    },
  };
}
