import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PurgeCounts, RevocationEvent, Store } from '@tessera/core';
import type { FastifyInstance } from 'fastify';

// Counting rows on every scrape would cost a table scan on a large store; the gauges that
// need the database refresh at most this often.
const STORE_GAUGE_MS = 15_000;

/** `load`, called again only when its last result is STORE_GAUGE_MS old. */
function everyStoreGaugePeriod<T>(load: () => Promise<T>): () => Promise<T> {
  let cached: { at: number; value: T } | null = null;
  return async () => {
    if (!cached || Date.now() - cached.at >= STORE_GAUGE_MS) cached = { at: Date.now(), value: await load() };
    return cached.value;
  };
}

/**
 * Prometheus metrics of one node (prom-client): active sessions, revocations, outbox
 * deliveries pending / dead, feed subscribers, request latency, and Node's own defaults.
 *
 * @example
 * ```ts
 * const metrics = createMetrics({ store, feedSubscribers: () => hub.size });
 * metrics.instrument(app);
 * metrics.recordRevocations(events);
 * ```
 */
export function createMetrics(input: { store: Store; feedSubscribers: () => number; deliveriesInFlight: () => number; ssfPushesInFlight?: () => number; ssfPollsWaiting?: () => number; signalsUp?: () => Record<string, boolean> }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tessera_process_' });
  const storeFigures = everyStoreGaugePeriod(async () => {
    const counts = await input.store.operationalCounts();
    return { active: counts.activeSessions, pending: counts.pendingDeliveries, dead: counts.deadDeliveries };
  });

  new Gauge({ name: 'tessera_active_sessions', help: 'Sessions not ended (PostgreSQL: the planner estimate; refreshed at most every 15 s).', registers: [registry], async collect() { this.set((await storeFigures()).active); } });
  const deliveries = new Gauge({ name: 'tessera_outbox_deliveries', help: 'Logout deliveries by status (pending includes retrying; refreshed at most every 15 s).', labelNames: ['status'], registers: [registry], async collect() {
    const figures = await storeFigures();
    deliveries.set({ status: 'pending' }, figures.pending);
    deliveries.set({ status: 'dead' }, figures.dead);
  } });
  new Gauge({ name: 'tessera_outbox_in_flight', help: 'Deliveries being sent by this node right now.', registers: [registry], collect() { this.set(input.deliveriesInFlight()); } });
  new Gauge({ name: 'tessera_feed_subscribers', help: 'Revocation stream connections on this node.', registers: [registry], collect() { this.set(input.feedSubscribers()); } });
  // Whether each configured wake-up path between nodes (postgres LISTEN, redis SUBSCRIBE) is
  // connected, and how many wake-ups came through it: a Redis outage shows as up 0 while
  // NOTIFY keeps the feed moving, and its return as up 1 with the counter growing again.
  const signalUp = new Gauge({ name: 'tessera_revocation_signal_up', help: 'Wake-up path from other nodes connected (1) or not (0), by source.', labelNames: ['source'], registers: [registry], collect() {
    for (const [source, up] of Object.entries(input.signalsUp?.() ?? {})) signalUp.set({ source }, up ? 1 : 0);
  } });
  const signals = new Counter({ name: 'tessera_revocation_signals_total', help: 'Wake-ups received, by source: postgres counts other nodes\' commits and reconnects (this node\'s own commits wake it in-process), redis every publication, this node\'s included.', labelNames: ['source'], registers: [registry] });
  // Shared Signals: the streams by status, their SETs waiting or given up (store-wide, read
  // at most every 15 s: one query per stream), and this node's push attempts.
  const ssfFigures = everyStoreGaugePeriod(async () => {
    const streams = await input.store.listSsfStreams();
    const byStatus: Record<string, number> = { enabled: 0, paused: 0, disabled: 0 };
    let pending = 0;
    let dead = 0;
    for (const stream of streams) {
      byStatus[stream.status] = (byStatus[stream.status] ?? 0) + 1;
      const state = await input.store.ssfDeliveryState(stream.id);
      pending += state.pending;
      dead += state.dead;
    }
    return { streams: byStatus, pending, dead };
  });
  const ssfStreams = new Gauge({ name: 'tessera_ssf_streams', help: 'Shared Signals streams by status (refreshed at most every 15 s).', labelNames: ['status'], registers: [registry], async collect() {
    for (const [status, n] of Object.entries((await ssfFigures()).streams)) ssfStreams.set({ status }, n);
  } });
  const ssfEvents = new Gauge({ name: 'tessera_ssf_events', help: 'Shared Signals SETs by status: pending (to push, retrying, held by a paused stream, or not yet acknowledged by a poller) and dead (refreshed at most every 15 s).', labelNames: ['status'], registers: [registry], async collect() {
    const figures = await ssfFigures();
    ssfEvents.set({ status: 'pending' }, figures.pending);
    ssfEvents.set({ status: 'dead' }, figures.dead);
  } });
  new Gauge({ name: 'tessera_ssf_push_in_flight', help: 'SETs being pushed by this node right now.', registers: [registry], collect() { this.set(input.ssfPushesInFlight?.() ?? 0); } });
  new Gauge({ name: 'tessera_ssf_long_polls_waiting', help: 'RFC 8936 long polls waiting on this node right now for a SET.', registers: [registry], collect() { this.set(input.ssfPollsWaiting?.() ?? 0); } });
  const ssfAttempts = new Counter({ name: 'tessera_ssf_push_attempts_total', help: 'SET push attempts made by this node, by outcome: delivered, failed (will retry) or dead (gave up).', labelNames: ['outcome'], registers: [registry] });
  const attempts = new Counter({ name: 'tessera_outbox_attempts_total', help: 'Delivery attempts made by this node, by outcome: delivered, failed (will retry) or dead (gave up).', labelNames: ['outcome'], registers: [registry] });
  const purged = new Counter({ name: 'tessera_retention_deleted_total', help: 'Rows deleted by this node\'s retention job, by kind (ended_sessions, revocations, deliveries, audit).', labelNames: ['kind'], registers: [registry] });
  const revocations = new Counter({ name: 'tessera_revocations_total', help: 'Session ends committed by this node, by reason.', labelNames: ['reason'], registers: [registry] });
  const latency = new Histogram({
    name: 'tessera_http_request_duration_seconds',
    help: 'HTTP request latency by route, method and status.',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  return {
    registry,
    recordSignal(source: string): void {
      signals.inc({ source });
    },
    recordAttempt(outcome: 'delivered' | 'failed' | 'dead'): void {
      attempts.inc({ outcome });
    },
    recordSsfAttempt(outcome: 'delivered' | 'failed' | 'dead'): void {
      ssfAttempts.inc({ outcome });
    },
    recordPurge(counts: PurgeCounts): void {
      purged.inc({ kind: 'ended_sessions' }, counts.endedSessions);
      purged.inc({ kind: 'revocations' }, counts.revocations);
      purged.inc({ kind: 'deliveries' }, counts.deliveries);
      purged.inc({ kind: 'audit' }, counts.audit);
    },
    recordRevocations(events: RevocationEvent[]): void {
      for (const e of events) revocations.inc({ reason: e.reason });
    },
    /** Records one request (the lean whoami path calls this; Fastify's requests go through {@link instrument}). */
    observeRequest(route: string, method: string, status: number, seconds: number): void {
      latency.observe({ route, method, status: String(status) }, seconds);
    },
    /** Times every request by its route pattern (never the raw URL: it may carry tokens). */
    instrument(app: FastifyInstance): void {
      app.addHook('onResponse', (request, reply, done) => {
        latency.observe({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
        done();
      });
    },
  };
}

/** The metrics returned by {@link createMetrics}. */
export type Metrics = ReturnType<typeof createMetrics>;
