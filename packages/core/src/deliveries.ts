import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import { channelsOf } from './logout-plan.js';
import type { Actor, Delivery, Session } from './model.js';

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

  /**
   * The logout delivery status of one session, per app: every back-channel or webhook notice
   * that covers it (user-wide ones too), and the joined apps without a push channel, which
   * learn of the end on their next check. Null for an unknown handle. The admin API and the
   * admin console both show this.
   */
  async function sessionDeliveries(handle: string): Promise<{ session: Session; deliveries: Delivery[]; pullOnly: string[] } | null> {
    const session = await store.findSessionByHandle(handle);
    if (!session) return null;
    const deliveries = await store.listDeliveriesBySession(session.handle);
    const apps = new Map((await store.listApps()).map((a) => [a.clientId, a]));
    const pullOnly = session.apps.map((a) => a.clientId).filter((id) => {
      const app = apps.get(id);
      return !app || channelsOf(app).length === 0;
    });
    const { tokenId: _id, secretHash: _hash, ...publicSession } = session;
    return { session: publicSession, deliveries, pullOnly };
  }

  return { retryDelivery, sessionDeliveries };
}

/** The delivery service returned by {@link createDeliveryService}. */
export type DeliveryService = ReturnType<typeof createDeliveryService>;
