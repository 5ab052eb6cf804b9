import type { Authority, Config, PurgeCounts } from '@tessera/core';
import type { FastifyBaseLogger } from 'fastify';

/** A job run on a timer, at most one run at a time; `stop` waits for the run in progress. */
export interface PeriodicJob {
  stop(): Promise<void>;
}

/** Runs `run` now and then every `intervalMs` (skipping a tick while a run is still going). */
export function startPeriodic(run: () => Promise<void>, intervalMs: number): PeriodicJob {
  let running: Promise<void> | null = null;
  const tick = () => {
    if (running) return;
    running = run().finally(() => {
      running = null;
    });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  tick();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * Ends expired sessions on a timer, so that expiry is written to the revocation log (and
 * so told to every app) even for sessions nobody presents again.
 */
export function startSweeper(authority: Authority, intervalMs: number, log: FastifyBaseLogger): PeriodicJob {
  return startPeriodic(async () => {
    try {
      const n = await authority.sessions.sweepExpired();
      if (n > 0) log.info({ expired: n }, 'expired sessions ended');
    } catch (error) {
      log.error({ err: error }, 'expiry sweep failed');
    }
  }, intervalMs);
}

/** Runs the retention job (see `retention` in the configuration) on a timer, when enabled. */
export function startRetention(authority: Authority, config: Config, log: FastifyBaseLogger, onPurged?: (counts: PurgeCounts) => void): PeriodicJob {
  if (!config.retention.enabled) return { stop: async () => undefined };
  return startPeriodic(async () => {
    try {
      const purged = await authority.retention.purge('system');
      onPurged?.(purged);
      if (Object.values(purged).some((n) => n > 0)) log.info({ purged }, 'retention: old rows deleted');
    } catch (error) {
      log.error({ err: error }, 'retention run failed');
    }
  }, config.retention.intervalSeconds * 1000);
}
