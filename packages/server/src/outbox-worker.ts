import { randomUUID } from 'node:crypto';
import type { Authority, Config, Delivery, DeliveryOutcome, Store } from '@tessera/core';
import type { FastifyBaseLogger } from 'fastify';
import { Webhook } from 'standardwebhooks';

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
export function createOutboxWorker(input: { store: Store; authority: Authority; config: Config; log: FastifyBaseLogger; owner?: string; now?: () => number }) {
  const { store, authority, config, log } = input;
  const settings = config.outbox;
  const now = input.now ?? (() => Date.now());
  const owner = input.owner ?? `node-${randomUUID()}`;
  const inFlight = new Map<string, number>();
  const running = new Set<Promise<void>>();
  let total = 0;
  let pumping: Promise<void> | null = null;
  let again = false;
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;

  async function post(url: string, body: string, headers: Record<string, string>): Promise<AttemptResult> {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        // A logout endpoint that redirects is misconfigured; following it could send the
        // token somewhere else.
        redirect: 'manual',
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      const ok = res.status === 200 || res.status === 204;
      return { ok, httpStatus: res.status, error: ok ? '' : `HTTP ${res.status}` };
    } catch (error) {
      const e = error as Error & { cause?: { code?: string } };
      return { ok: false, httpStatus: null, error: e.name === 'TimeoutError' ? `timeout after ${settings.timeoutMs} ms` : (e.cause?.code ?? e.message) };
    }
  }

  async function attempt(delivery: Delivery): Promise<AttemptResult> {
    const app = await store.findApp(delivery.clientId);
    if (!app) return { ok: false, httpStatus: null, error: 'app no longer registered' };
    if (delivery.channel === 'backchannel') {
      if (!app.backchannelLogoutUri) return { ok: false, httpStatus: null, error: 'app has no backchannel_logout_uri' };
      // A fresh logout token (new jti) for every attempt: receivers reject a replayed jti.
      const token = await authority.tokens.signLogoutToken({ clientId: app.clientId, sub: delivery.sub, sid: delivery.sid });
      return post(app.backchannelLogoutUri, new URLSearchParams({ logout_token: token }).toString(), { 'content-type': 'application/x-www-form-urlencoded' });
    }
    const webhook = app.connectors.webhook as { url?: string; secret?: string } | undefined;
    if (!webhook?.url || !webhook.secret) return { ok: false, httpStatus: null, error: 'app has no webhook url or secret' };
    const at = new Date(now());
    const payload = JSON.stringify({
      type: delivery.sid ? 'session.ended' : 'user.sessions_ended',
      timestamp: at.toISOString(),
      data: { sub: delivery.sub, sid: delivery.sid, sids: delivery.handles, reason: delivery.reason, cursor: delivery.cursor, client_id: app.clientId },
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
    if (!recorded) log.warn({ delivery: delivery.id }, 'delivery lease lost before its outcome was recorded');
    else if (outcome.status === 'dead') log.warn({ delivery: delivery.id, app: delivery.clientId, error: result.error }, 'logout delivery gave up after its horizon');
  }

  function launch(delivery: Delivery): void {
    inFlight.set(delivery.clientId, (inFlight.get(delivery.clientId) ?? 0) + 1);
    total += 1;
    const task = deliver(delivery)
      .catch((error: unknown) => log.error({ err: error, delivery: delivery.id }, 'delivery failed to record'))
      .finally(() => {
        inFlight.set(delivery.clientId, inFlight.get(delivery.clientId)! - 1);
        total -= 1;
        running.delete(task);
        // A slot freed: look for more work.
        if (!stopped) void wake();
      });
    running.add(task);
  }

  async function pumpOnce(): Promise<void> {
    for (;;) {
      const free = settings.maxInFlight - total;
      if (stopped || free <= 0) return;
      const saturated = [...inFlight].filter(([, n]) => n >= settings.concurrencyPerApp).map(([clientId]) => clientId);
      const at = now();
      const claimed = await store.claimDeliveries(owner, at, at + settings.leaseSeconds * 1000, Math.min(free, settings.concurrencyPerApp), saturated);
      if (claimed.length === 0) return;
      // The per-app limit is checked per claim, so one batch may take an app up to twice its
      // limit; batches are small, and the global limit holds exactly.
      for (const delivery of claimed) launch(delivery);
    }
  }

  /** Looks for due deliveries now (after a local revocation commits). Coalesces calls. */
  function wake(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (pumping) {
      again = true;
      return pumping;
    }
    pumping = (async () => {
      try {
        do {
          again = false;
          await pumpOnce();
        } while (again && !stopped);
      } catch (error) {
        log.error({ err: error }, 'outbox claim failed');
      } finally {
        pumping = null;
      }
    })();
    return pumping;
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
      await pumping;
      await Promise.race([Promise.allSettled([...running]), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
      await store.releaseDeliveries(owner);
    },
  };
}

/** The worker returned by {@link createOutboxWorker}. */
export type OutboxWorker = ReturnType<typeof createOutboxWorker>;
