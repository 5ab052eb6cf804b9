/**
 * "New SETs may be waiting": wakes the push worker and every waiting long poll of this node.
 * It carries no data — the outbox in the store is the only truth — so a lost or duplicated
 * wake-up delays nothing by more than the fallback tick of its waiter.
 *
 * @example
 * ```ts
 * const wakeup = createSsfWakeup();
 * const woken = wakeup.next(1_000); // resolves on the next wake() or after 1 s
 * wakeup.wake();
 * ```
 */
export function createSsfWakeup() {
  // Each waiter leaves the set when it is woken or its time is up, so `waiting` is the number
  // of long polls waiting right now (the tessera_ssf_long_polls_waiting gauge).
  let waiters = new Set<() => void>();
  const listeners = new Set<() => void>();
  return {
    wake(): void {
      const now = waiters;
      waiters = new Set();
      for (const resolve of now) resolve();
      for (const listener of listeners) listener();
    },
    /** Resolves on the next wake-up, or after `ms` at the latest. */
    next(ms: number): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    },
    onWake(listener: () => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Long polls of this node waiting for a wake-up now. */
    get waiting(): number {
      return waiters.size;
    },
  };
}

/** The wake-up returned by {@link createSsfWakeup}. */
export type SsfWakeup = ReturnType<typeof createSsfWakeup>;
