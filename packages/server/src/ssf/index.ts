import type { ServerContext, TesseraApp } from '../context.js';
import { ssfDiscoveryRoutes } from './discovery.js';
import { globalRevocationRoutes } from './global-revocation.js';
import { ssfPollRoutes } from './poll.js';
import { ssfReceiveRoutes } from './receive.js';
import { ssfStreamRoutes } from './streams.js';
import type { SsfWakeup } from './wakeup.js';

export { createSsfPushWorker, type SsfPushWorker } from './push-worker.js';
export { createSsfWakeup, type SsfWakeup } from './wakeup.js';
export { transmitterMetadata } from './discovery.js';
export { streamView } from './streams.js';
export { SSF_PATHS } from './paths.js';

/**
 * The Shared Signals (SSF 1.0) transmitter: discovery, stream management, poll delivery and
 * the global token revocation endpoint. Push delivery is the SSF push worker; the events are
 * planned where their causes commit (core `commitRevocation`). And the receiver of upstream
 * transmitters' pushes (`ssf.upstreams`).
 *
 * @example
 * ```ts
 * await app.register(async (scope) => ssfRoutes(scope, context, wakeup, () => closing));
 * ```
 */
export async function ssfRoutes(app: TesseraApp, context: ServerContext, wakeup: SsfWakeup, isClosing: () => boolean): Promise<void> {
  await ssfDiscoveryRoutes(app, context);
  await ssfStreamRoutes(app, context);
  await ssfPollRoutes(app, context, wakeup, isClosing);
  await globalRevocationRoutes(app, context);
  await ssfReceiveRoutes(app, context);
}
