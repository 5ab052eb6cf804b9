/** A listener map: event name → the payload its listeners receive. */
export type EventMap = object;

/**
 * A tiny typed event emitter. Listener errors are caught and reported to `onListenerError`:
 * an app's listener that throws must never break the feed that called it.
 */
export function createEmitter<E extends EventMap>(onListenerError: (error: unknown) => void) {
  const listeners = new Map<keyof E, Set<(payload: never) => void>>();
  return {
    on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): () => void {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as (payload: never) => void);
      return () => set.delete(listener as (payload: never) => void);
    },
    off<K extends keyof E>(event: K, listener: (payload: E[K]) => void): void {
      listeners.get(event)?.delete(listener as (payload: never) => void);
    },
    has(event: keyof E): boolean {
      return (listeners.get(event)?.size ?? 0) > 0;
    },
    emit<K extends keyof E>(event: K, payload: E[K]): void {
      const set = listeners.get(event);
      if (!set) return;
      for (const listener of [...set]) {
        try {
          (listener as (payload: E[K]) => void)(payload);
        } catch (error) {
          onListenerError(error);
        }
      }
    },
  };
}
