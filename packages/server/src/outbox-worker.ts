import { randomUUID } from 'node:crypto';
import type { AppRecord, Authority, Config, Delivery, DeliveryOutcome, Store } from '@tessera/core';
import type { FastifyBaseLogger } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { createSingleFlight } from './single-flight.js';
import { createHttpPoster } from './http-post.js';

/** One attempt's transport result. */
interface AttemptResult {
  ok: boolean;
  httpStatus: number | null;
  error: string;
}

/**
 * Retry delay after `attempts` failed attempts: exponential, capped, with "equal jitter"
 * (half fixed, half random) so that many deliveries failing together do not retry in lock
 * step against a recovering app.
 */
export function backoffDelay(attempts: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * The durable logout delivery worker. It leases due deliveries from the outbox (several
 * nodes may run it; leases keep them from sending the same attempt twice at once), sends
 * each one — an OIDC back-channel logout token or a Standard Webhooks signed POST — with a
 * short timeout and no redirects, and records the outcome: delivered on 200/204, otherwise
 * retried with backoff until the horizon, then dead. A crashed node's leases expire and
 * are taken again (at-least-once). It never runs inside a user's request: a logout commits
 * first and only wakes the worker.
 *
 * @example
 * ```ts
 * const worker = createOutboxWorker({ store, authority, config, log });
 * worker.start();
 * worker.wake(); // after a revocation committed
 * await worker.stop();
 * ```
 */
export function createOutboxWorker(input: { store: Store; authority: Authority; config: Config; log: FastifyBaseLogger; owner?: string; now?: () => number; onAttempt?: (outcome: 'delivered' | 'failed' | 'dead') => void }) {
  const { store, authority, config, log } = input;
  const settings = config.outbox;
  const now = input.now ?? (() => Date.now());
  const owner = input.owner ?? `node-${randomUUID()}`;
  const inFlight = new Map<string, number>();
  const running = new Set<Promise<void>>();
  let total = 0;
  // What the next pump must do: `full` after a commit, a poll or an admin retry (claim until
  // nothing more is due); `freed` after a completion took its app below the per-app limit
  // (top up the apps below their limit).
  let full = false;
  let freed = false;
  let fillQueued = false;
  const drained = new Set<string>();
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;

  const poster = createHttpPoster({ timeoutMs: settings.timeoutMs });

  /** An app answered 200 or 204: the notice arrived. Anything else is a failed attempt. */
  async function post(url: string, body: string, headers: Record<string, string>): Promise<AttemptResult> {
    const { httpStatus, error } = await poster.post(url, body, headers);
    if (error) return { ok: false, httpStatus, error };
    const ok = httpStatus === 200 || httpStatus === 204;
    return { ok, httpStatus, error: ok ? '' : `HTTP ${httpStatus}` };
  }

  // An app's settings, read at most once a second per app: a burst of thousands of
  // deliveries to a few apps would otherwise read the same row once per attempt (on
  // PostgreSQL a round trip each). A changed URI or secret applies within a second.
  const apps = new Map<string, { at: number; app: Promise<AppRecord | null> }>();
  function findApp(clientId: string): Promise<AppRecord | null> {
    const at = Date.now();
    const cached = apps.get(clientId);
    if (cached && at - cached.at < 1_000) return cached.app;
    const app = store.findApp(clientId);
    apps.set(clientId, { at, app });
    app.catch(() => apps.delete(clientId));
    return app;
  }

  async function attempt(delivery: Delivery): Promise<AttemptResult> {
    const app = await findApp(delivery.clientId);
    if (!app) return { ok: false, httpStatus: null, error: 'app no longer registered' };
    if (delivery.channel === 'backchannel') {
      if (!app.backchannelLogoutUri) return { ok: false, httpStatus: null, error: 'app has no backchannel_logout_uri' };
      // A fresh logout token (new jti, iat = now) for every attempt: receivers reject a
      // replayed jti and a stale iat. What it ends stays that of the revocation: the
      // delivery was planned in the revoking transaction, so its createdAt is the log
      // entry's `at` (revoked_at), and handles are the sessions it ended (sids).
      // An OIDC client verifies logout tokens like its ID tokens (Back-Channel Logout 1.0
      // §2.6), so it gets them signed with the algorithm it registered for those.
      const alg = app.oidc.redirectUris.length > 0 ? app.oidc.idTokenSignedResponseAlg : undefined;
      const token = await authority.tokens.signLogoutToken({ clientId: app.clientId, sub: delivery.sub, sid: delivery.sid, revokedAt: delivery.createdAt, handles: delivery.handles, alg });
      return post(app.backchannelLogoutUri, new URLSearchParams({ logout_token: token }).toString(), { 'content-type': 'application/x-www-form-urlencoded' });
    }
    const webhook = app.connectors.webhook as { url?: string; secret?: string } | undefined;
    if (!webhook?.url || !webhook.secret) return { ok: false, httpStatus: null, error: 'app has no webhook url or secret' };
    const at = new Date(now());
    const payload = JSON.stringify({
      type: delivery.sid ? 'session.ended' : 'user.sessions_ended',
      timestamp: at.toISOString(),
      // timestamp is this attempt's; revoked_at is the revocation's, the same on every retry
      // (docs/decisions/0006-late-logouts.md).
      data: { sub: delivery.sub, sid: delivery.sid, sids: delivery.handles, reason: delivery.reason, cursor: delivery.cursor, client_id: app.clientId, revoked_at: delivery.createdAt },
    });
    // webhook-id stays the same across retries (receivers deduplicate on it); the
    // timestamp and signature are fresh per attempt, as Standard Webhooks specifies.
    const id = `msg_tessera_${delivery.id}`;
    const signature = new Webhook(webhook.secret).sign(id, at, payload);
    return post(webhook.url, payload, { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature });
  }

  async function deliver(delivery: Delivery): Promise<void> {
    let result: AttemptResult;
    try {
      result = await attempt(delivery);
    } catch (error) {
      result = { ok: false, httpStatus: null, error: (error as Error).message };
    }
    const at = now();
    let outcome: DeliveryOutcome;
    if (result.ok) {
      outcome = { status: 'delivered', at, httpStatus: result.httpStatus ?? 200 };
    } else {
      const next = at + backoffDelay(delivery.attempts + 1, settings.backoffBaseMs, settings.backoffMaxMs);
      outcome = { status: next > delivery.horizonAt ? 'dead' : 'pending', at, nextAttemptAt: next, error: result.error, httpStatus: result.httpStatus };
    }
    const recorded = await store.completeDelivery(delivery.id, owner, outcome);
    input.onAttempt?.(outcome.status === 'pending' ? 'failed' : outcome.status);
    if (!recorded) log.warn({ delivery: delivery.id }, 'delivery lease lost before its outcome was recorded');
    else if (outcome.status === 'dead') log.warn({ delivery: delivery.id, app: delivery.clientId, error: result.error }, 'logout delivery gave up after its horizon');
  }

  function launch(delivery: Delivery): void {
    inFlight.set(delivery.clientId, (inFlight.get(delivery.clientId) ?? 0) + 1);
    total += 1;
    const task = deliver(delivery)
      .catch((error: unknown) => log.error({ err: error, delivery: delivery.id }, 'delivery failed to record'))
      .finally(() => {
        const left = inFlight.get(delivery.clientId)! - 1;
        inFlight.set(delivery.clientId, left);
        total -= 1;
        running.delete(task);
        // A slot of this app freed: fill it. While the app is still at its limit the freed
        // slot could only go to another app, and the claim that looks for one scans the
        // whole due backlog of the apps at their limit; other apps' work is found by the
        // next poll or commit instead.
        if (left < settings.concurrencyPerApp) freed = true;
        // After the current I/O phase: completions that arrive together share one claim.
        if (!stopped && freed && !fillQueued) {
          fillQueued = true;
          setImmediate(() => {
            fillQueued = false;
            void schedule();
          });
        }
      });
    running.add(task);
  }

  async function claim(limit: number, exclude: string[]): Promise<number> {
    const at = now();
    const claimed = await store.claimDeliveries(owner, at, at + settings.leaseSeconds * 1000, limit, exclude);
    for (const delivery of claimed) launch(delivery);
    return claimed.length;
  }

  /**
   * Tops up each app below its limit, emptiest first, with a claim of its own: excluding
   * every other app this node is sending to, the claim gets this app's rows (or rows of apps
   * with nothing in flight), so no app passes its limit, and a claim takes every slot the
   * app freed since the last one. An app whose claim comes back short has no more due work;
   * it is left alone until the next poll or commit (a claim for it would scan the other
   * apps' whole backlog to find nothing).
   */
  async function fill(): Promise<void> {
    for (;;) {
      const free = settings.maxInFlight - total;
      if (stopped || free <= 0) return;
      let target: string | null = null;
      let least = settings.concurrencyPerApp;
      for (const [clientId, n] of inFlight) {
        if (n < least && !drained.has(clientId)) {
          target = clientId;
          least = n;
        }
      }
      if (target === null) return;
      const limit = Math.min(free, settings.concurrencyPerApp - least);
      const got = await claim(limit, [...inFlight.keys()].filter((clientId) => clientId !== target));
      if (got < limit) drained.add(target);
    }
  }

  async function pumpOnce(): Promise<void> {
    const wantFull = full;
    const wantFill = freed;
    full = false;
    freed = false;
    if (wantFull) {
      // New work may have come for any app (a commit, retries falling due, expired leases).
      drained.clear();
      // First the apps this node is not sending to (up to the limit each can take), then
      // the others.
      for (;;) {
        const free = settings.maxInFlight - total;
        if (stopped || free <= 0) return;
        const limit = Math.min(free, settings.concurrencyPerApp);
        if ((await claim(limit, [...inFlight.keys()])) < limit) break;
      }
      await fill();
    } else if (wantFill) {
      await fill();
    }
  }

  const pump = createSingleFlight(pumpOnce, (error) => log.error({ err: error }, 'outbox claim failed'), () => stopped);
  const schedule = () => pump.run();

  /** Looks for due deliveries now (after a revocation commits; on every poll). Coalesces calls. */
  function wake(): Promise<void> {
    full = true;
    return schedule();
  }

  return {
    owner,
    start(): void {
      if (!stopped) return;
      stopped = false;
      timer = setInterval(() => void wake(), settings.pollIntervalMs);
      timer.unref();
      void wake();
    },
    wake,
    /** Deliveries being sent right now. */
    get inFlight(): number {
      return total;
    },
    /**
     * Stops claiming, lets in-flight attempts finish (up to `graceMs`), then gives back any
     * lease still held so another node can take those deliveries at once.
     */
    async stop(graceMs = settings.timeoutMs + 1000): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await pump.idle();
      await Promise.race([Promise.allSettled([...running]), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
      // With the database gone the leases cannot be returned; they expire on their own.
      await store.releaseDeliveries(owner).catch((error: unknown) => log.warn({ err: error }, 'could not return delivery leases at shutdown'));
      poster.close();
    },
  };
}

/** The worker returned by {@link createOutboxWorker}. */
export type OutboxWorker = ReturnType<typeof createOutboxWorker>;
