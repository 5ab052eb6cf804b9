import type { Authority } from '@tessera/core';
import type { FastifyBaseLogger } from 'fastify';

/**
 * Ends expired sessions on a timer, so that expiry is written to the revocation log (and
 * so told to every app) even for sessions nobody presents again.
 */
export function startSweeper(authority: Authority, intervalMs: number, log: FastifyBaseLogger): { stop(): Promise<void> } {
  let running: Promise<void> | null = null;
  const tick = () => {
    if (running) return;
    running = authority.sessions
      .sweepExpired()
      .then((n) => {
        if (n > 0) log.info({ expired: n }, 'expired sessions ended');
      })
      .catch((error: unknown) => log.error({ err: error }, 'expiry sweep failed'))
      .finally(() => {
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
