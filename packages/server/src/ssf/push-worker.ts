import { randomUUID } from 'node:crypto';
import type { Authority, Config, SsfEvent, SsfEventOutcome, SsfStream, Store } from '@tessera/core';
import type { FastifyBaseLogger } from 'fastify';
import { backoffDelay } from '../outbox-worker.js';
import type { SsfWakeup } from './wakeup.js';
import { createHttpPoster } from '../http-post.js';

/** One push attempt's result. */
interface PushResult {
  ok: boolean;
  /** False when retrying cannot help (RFC 8935 §2.4 error codes that name the SET itself). */
  retry: boolean;
  httpStatus: number | null;
  error: string;
}

/**
 * RFC 8935 §2.4 error codes after which the same SET can be accepted later, once the
 * receiver or its configuration changed: a key it could not use yet (a JWKS refresh), or an
 * authorization problem (the stream's authorization_header fixed by a PATCH). The others
 * (invalid_request, invalid_issuer, invalid_audience, and codes this version does not know)
 * say the SET itself is refused: sending it again would be refused again.
 */
const RETRYABLE_ERRS = new Set(['invalid_key', 'authentication_failed', 'access_denied']);
const MAX_ERROR_BODY = 4096;

/**
 * The durable push worker of the Shared Signals outbox (RFC 8935). It leases due SETs of
 * enabled push streams (several nodes may run it; a lease keeps one SET on one node, and the
 * store never hands out a SET while an older one about the same subject is pending, so
 * events about one subject never overtake each other), signs each at the attempt (same
 * claims and `jti` every time, so a receiver deduplicates a retry or the duplicate after a
 * crash), POSTs it as `application/secevent+jwt` with the stream's `authorization_header`,
 * and records the outcome: 202 is delivered; a 400 whose `err` says the SET is refused is
 * dead at once; anything else is retried with backoff until the horizon, then dead. It wakes
 * when a transaction that planned SETs commits (here, or on another node through
 * PostgreSQL NOTIFY), and on a timer for retries falling due.
 *
 * @example
 * ```ts
 * const worker = createSsfPushWorker({ store, authority, config, log, wakeup });
 * worker.start();
 * await worker.stop();
 * ```
 */
export function createSsfPushWorker(input: { store: Store; authority: Authority; config: Config; log: FastifyBaseLogger; wakeup: SsfWakeup; owner?: string; now?: () => number; onAttempt?: (outcome: 'delivered' | 'failed' | 'dead') => void }) {
  const { store, authority, config, log, wakeup } = input;
  const now = input.now ?? (() => Date.now());
  const owner = input.owner ?? `ssf-${randomUUID()}`;
  const limit = config.ssf.pushConcurrency;
  const timeoutMs = config.outbox.timeoutMs;
  const running = new Set<Promise<void>>();
  let stopped = true;
  let pumping = false;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  const poster = createHttpPoster({ timeoutMs, maxBody: MAX_ERROR_BODY });

  // A stream's settings, read at most every 250 ms per stream: a burst to a few streams
  // would otherwise read the same row for every SET. A paused or changed stream applies
  // within that time (a SET already leased goes out as it was leased). The streams of one
  // claim whose settings are due are read in one statement (readStreams): one revocation's
  // SETs go to every stream, and a read each would be as many messages to PostgreSQL.
  const streams = new Map<string, { at: number; stream: Promise<SsfStream | null> }>();
  const fresh = (id: string, at: number) => {
    const cached = streams.get(id);
    return cached !== undefined && at - cached.at < 250 ? cached : undefined;
  };
  function remember(id: string, at: number, stream: Promise<SsfStream | null>): void {
    streams.set(id, { at, stream });
    // A failed read is forgotten, so the next push reads again.
    stream.catch(() => {
      if (streams.get(id)?.stream === stream) streams.delete(id);
    });
  }
  function readStreams(ids: Iterable<string>): void {
    const at = Date.now();
    const due = [...new Set(ids)].filter((id) => fresh(id, at) === undefined);
    if (due.length < 2) return;
    const read = store.listSsfStreams({ ids: due }).then((found) => new Map(found.map((s) => [s.id, s])));
    for (const id of due) remember(id, at, read.then((found) => found.get(id) ?? null));
  }
  function findStream(id: string): Promise<SsfStream | null> {
    const at = Date.now();
    const cached = fresh(id, at);
    if (cached) return cached.stream;
    const stream = store.findSsfStream(id);
    remember(id, at, stream);
    return stream;
  }

  /**
   * RFC 8935 §2.2-2.3: 202 is success; a 400 carries an `err` code, retried only when the code
   * says a later attempt may succeed; anything else (and no answer) is retried.
   */
  async function post(url: string, body: string, headers: Record<string, string>): Promise<PushResult> {
    const { httpStatus: status, body: answer, error } = await poster.post(url, body, headers);
    if (error) return { ok: false, retry: true, httpStatus: status, error };
    if (status === 202) return { ok: true, retry: false, httpStatus: status, error: '' };
    if (status === 400) {
      let err: string | null = null;
      let description = '';
      try {
        const parsed = JSON.parse(answer.toString('utf8')) as { err?: unknown; description?: unknown };
        if (typeof parsed.err === 'string') err = parsed.err.slice(0, 64);
        if (typeof parsed.description === 'string') description = parsed.description.slice(0, 200);
      } catch {
        err = null;
      }
      const retry = err !== null && RETRYABLE_ERRS.has(err);
      return { ok: false, retry, httpStatus: status, error: `HTTP 400 ${err ?? '(no err code)'}${description ? `: ${description}` : ''}` };
    }
    return { ok: false, retry: true, httpStatus: status, error: `HTTP ${status}` };
  }

  async function attempt(event: SsfEvent): Promise<PushResult> {
    const stream = await findStream(event.streamId);
    if (!stream || stream.deliveryMethod !== 'push') return { ok: false, retry: false, httpStatus: null, error: 'stream deleted or no longer push' };
    // The RS256 signature (the largest cost of a SET) is made in libuv's thread pool
    // (signSet), so a burst of pushes does not hold up the requests (logouts among them) that
    // arrive meanwhile.
    const set = await authority.ssf.signSet(event, stream);
    const headers: Record<string, string> = { 'content-type': 'application/secevent+jwt', accept: 'application/json' };
    // RFC 8935 / SSF §8.1.1: the receiver's own Authorization header, on every push.
    if (stream.authorizationHeader) headers.authorization = stream.authorizationHeader;
    return post(stream.endpointUrl, set, headers);
  }

  async function deliver(event: SsfEvent): Promise<void> {
    let result: PushResult;
    try {
      result = await attempt(event);
    } catch (error) {
      result = { ok: false, retry: true, httpStatus: null, error: (error as Error).message };
    }
    const at = now();
    let outcome: SsfEventOutcome;
    if (result.ok) {
      outcome = { status: 'delivered', at, httpStatus: result.httpStatus };
    } else {
      const next = at + backoffDelay(event.attempts + 1, config.outbox.backoffBaseMs, config.outbox.backoffMaxMs);
      outcome = { status: !result.retry || next > event.horizonAt ? 'dead' : 'pending', at, nextAttemptAt: next, error: result.error, httpStatus: result.httpStatus };
    }
    input.onAttempt?.(outcome.status === 'pending' ? 'failed' : outcome.status);
    if (outcome.status === 'delivered') {
      // Successes are recorded together (recordDelivered): at 1,000 SETs a second, one write
      // each would be the limit.
      await recordDelivered(event.id, at);
      return;
    }
    const recorded = await store.completeSsfEvent(event.id, owner, outcome);
    if (!recorded) log.warn({ event: event.id }, 'SSF event lease lost before its outcome was recorded');
    else if (outcome.status === 'dead') {
      log.warn({ event: event.id, stream: event.streamId, error: outcome.error }, 'SSF push gave up');
      // A younger event about the same subject may have waited behind this one.
      markDue();
    }
  }

  let batch: Array<{ id: number; done: () => void; fail: (error: unknown) => void }> = [];
  let batchAt = 0;
  let flushTimer: NodeJS.Timeout | undefined;
  // The pushes of one revocation's SETs end a few event-loop turns apart: a batch is written
  // once every push in flight has ended (each is then waiting for this record), or 10 ms
  // after its first success, or at 64, so they share one UPDATE rather than one each (on
  // PostgreSQL each statement wakes a backend that takes a core from the event loop). Only
  // the record waits; each SET reached its receiver already.
  function recordDelivered(id: number, at: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (batch.length === 0) flushTimer = setTimeout(() => void flush(), 10);
      batch.push({ id, done: resolve, fail: reject });
      batchAt = Math.max(batchAt, at);
      if (batch.length >= 64 || batch.length >= running.size) {
        clearTimeout(flushTimer);
        void flush();
      }
    });
  }
  async function flush(): Promise<void> {
    const taken = batch;
    const at = batchAt;
    batch = [];
    batchAt = 0;
    try {
      const result = await store.deliverSsfEvents(taken.map((b) => b.id), owner, at, 202);
      if (result.successors) markDue();
      const recorded = new Set(result.recorded);
      for (const b of taken) {
        if (!recorded.has(b.id)) log.warn({ event: b.id }, 'SSF event lease lost before its delivery was recorded');
        b.done();
      }
    } catch (error) {
      for (const b of taken) b.fail(error);
    }
  }

  // While pushes are in flight, a claim waits until an eighth of the slots are free: under a
  // backlog one query then leases dozens of SETs instead of one query per finished push.
  const claimAtLeast = Math.max(1, Math.floor(limit / 8));

  // Whether a claim may find something: set by every reason a SET can become claimable (new
  // SETs committed, the timer for retries and expired leases, a delivery that lets a younger
  // event about the same subject go), cleared by a claim that found fewer than it asked for
  // with no such reason arriving meanwhile. A finished push then claims again only when there
  // is a reason to: one claim per revocation instead of one per SET (on PostgreSQL the claims
  // were most of the push path's queries).
  let due = true;
  let reasons = 0;
  function markDue(): void {
    due = true;
    reasons++;
    schedule();
  }

  async function pumpOnce(): Promise<void> {
    for (;;) {
      const free = limit - running.size;
      if (stopped || !due || free <= 0 || (running.size > 0 && free < claimAtLeast)) return;
      const seen = reasons;
      const at = now();
      const claimed = await store.claimSsfPushEvents(owner, at, at + config.outbox.leaseSeconds * 1000, free);
      readStreams(claimed.map((event) => event.streamId));
      for (const event of claimed) {
        const task = deliver(event)
          .catch((error: unknown) => log.error({ err: error, event: event.id }, 'SSF push failed to record'))
          .finally(() => {
            running.delete(task);
            // A slot is free: claim if a claim was held back for want of slots.
            if (due) schedule();
          });
        running.add(task);
      }
      // Everything claimable was taken, unless a new reason came while the claim ran.
      if (claimed.length < free && reasons === seen) {
        due = false;
        return;
      }
    }
  }

  function schedule(): void {
    if (stopped) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    void (async () => {
      do {
        again = false;
        try {
          await pumpOnce();
        } catch (error) {
          log.error({ err: error }, 'SSF push claim failed');
        }
      } while (again && !stopped);
      pumping = false;
    })();
  }

  async function tick(): Promise<void> {
    try {
      // Events held past the horizon (a long pause, an unacknowledged poll) are given up.
      await store.expireSsfEvents(now(), 1_000);
      // Events a stream's enabling could not see yet (inserted by a transaction open at that
      // moment) are released to the claim.
      await store.releaseHeldSsfEvents(1_000);
    } catch (error) {
      log.error({ err: error }, 'SSF expiry failed');
    }
    // Retries falling due and leases of a crashed node expiring are noticed here.
    markDue();
  }

  return {
    owner,
    start(): void {
      if (!stopped) return;
      stopped = false;
      unsubscribe = wakeup.onWake(markDue);
      timer = setInterval(() => void tick(), config.outbox.pollIntervalMs);
      timer.unref();
      markDue();
    },
    /** Looks for due SETs now. */
    wake: markDue,
    get inFlight(): number {
      return running.size;
    },
    /** Stops claiming, lets in-flight pushes finish (bounded), gives back the other leases. */
    async stop(graceMs = timeoutMs + 1000): Promise<void> {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      unsubscribe?.();
      await Promise.race([Promise.allSettled([...running]), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
      await store.releaseSsfEvents(owner).catch((error: unknown) => log.warn({ err: error }, 'could not return SSF leases at shutdown'));
      poster.close();
    },
  };
}

/** The worker returned by {@link createSsfPushWorker}. */
export type SsfPushWorker = ReturnType<typeof createSsfPushWorker>;
