import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import type { Actor, Delivery } from './model.js';

/**
 * Operator actions on the logout outbox.
 *
 * @example
 * ```ts
 * const deliveries = createDeliveryService(deps);
 * await deliveries.retryDelivery(42, 'admin'); // pending again, with a fresh horizon
 * ```
 */
export function createDeliveryService(deps: CoreDeps) {
  const { store, clock, config } = deps;

  /**
   * Puts a pending or dead delivery back to pending now, with a new retry horizon, and
   * audits it. A delivered or unknown one is `DELIVERY_NOT_FOUND`.
   */
  async function retryDelivery(id: number, actor: Actor, ip: string | null = null): Promise<Delivery> {
    const now = clock.now();
    const retried = await store.retryDelivery(id, now, now + config.outbox.horizonSeconds * 1000);
    if (!retried) throw new TesseraError('DELIVERY_NOT_FOUND');
    await store.appendAudit({ at: now, actor, action: 'delivery.retried', userId: retried.sub, sessionHandle: retried.sid, clientId: retried.clientId, ip, details: { delivery: retried.id } });
    return retried;
  }

  return { retryDelivery };
}

/** The delivery service returned by {@link createDeliveryService}. */
export type DeliveryService = ReturnType<typeof createDeliveryService>;
