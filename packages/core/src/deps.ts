import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { RevocationEvent } from './model.js';
import type { SessionCache } from './session-cache.js';
import type { Store } from './store-port.js';

/** What every core service is built from. */
export interface CoreDeps {
  store: Store;
  config: Config;
  clock: Clock;
  /**
   * Called after a transaction that wrote revocation log entries has committed, with the
   * number of back-channel logout deliveries it added to the outbox (none: the outbox worker
   * has nothing new to look for).
   */
  onRevoked?: (events: RevocationEvent[], written: { deliveries: number }) => void;
  /** Called after a transaction that added SETs to the Shared Signals outbox has committed. */
  onSecurityEvents?: () => void;
  /**
   * Called after an app was changed, had its secret rotated, or was deleted (by this
   * process): long-lived connections bound to its old credentials are re-checked at once.
   */
  onAppChanged?: (clientId: string) => void;
  /** The hot-path cache of authenticated sessions (set up by createAuthority when the store allows). */
  cache?: SessionCache;
}

/** Device information recorded on a session. */
export interface Device {
  ip: string | null;
  userAgent: string | null;
}
