/**
 * Runs `task` one at a time: a call while it runs does not start a second run but asks for
 * one more pass after the current one (so work signalled mid-run is never missed), and
 * every caller gets the promise of the run that covers its call. Errors go to `onError`;
 * the returned promise never rejects.
 *
 * @example
 * ```ts
 * const pump = createSingleFlight(readNewEntries, (e) => log.error(e), () => closed);
 * pump.run(); pump.run(); // one run, plus one more pass if the second came mid-run
 * await pump.idle();
 * ```
 */
export function createSingleFlight(task: () => Promise<void>, onError: (error: unknown) => void, isStopped: () => boolean = () => false) {
  let running: Promise<void> | null = null;
  let again = false;
  return {
    run(): Promise<void> {
      if (isStopped()) return Promise.resolve();
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        try {
          do {
            again = false;
            await task();
          } while (again && !isStopped());
        } catch (error) {
          onError(error);
        } finally {
          running = null;
        }
      })();
      return running;
    },
    /** Resolves when no run is in progress. */
    async idle(): Promise<void> {
      await running;
    },
  };
}
