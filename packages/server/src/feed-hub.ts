import type { RevocationEvent, Store } from '@tessera/core';
import { createSingleFlight } from './single-flight.js';

/** A follower of the revocation log (one SSE connection). */
export interface FeedSubscriber {
  /** Writes events; returns false when the connection's buffer is full. */
  send(events: RevocationEvent[]): boolean;
  /** Resolves when the connection can take more. */
  drained(): Promise<void>;
  /** Ends the connection (hub closing). */
  end(): void;
}

interface Subscription {
  cursor: number;
  live: boolean;
  subscriber: FeedSubscriber;
}

const PAGE = 500;

/**
 * Serves the revocation log to followers in order, with no gaps. The log in the store is the
 * only source of truth: a wake-up (a commit on this node, a poll tick for ends written by the
 * CLI or another node) makes the hub read what is new once and hand it to every follower
 * that is caught up; a follower that is behind (new, or resuming from an old cursor) reads
 * pages from the store until it reaches the head, then joins the live set. Because events are
 * always read back from the log, order and completeness never depend on the order in which
 * wake-ups arrive.
 *
 * @example
 * ```ts
 * const hub = createFeedHub(store, { pollIntervalMs: 1000 });
 * const stop = await hub.subscribe(lastEventId, subscriber);
 * hub.wake(); // after a commit
 * ```
 */
export function createFeedHub(store: Store, options: { pollIntervalMs: number; onError?: (error: unknown) => void }) {
  const subscriptions = new Set<Subscription>();
  let head: number | null = null;
  let closed = false;

  /** The head: the furthest cursor the hub has read, or the store's when it has read none. */
  async function readHead(): Promise<number> {
    if (head !== null) return head;
    const read = await store.revocationHead();
    // Another read may have finished meanwhile with a later head: never go back.
    head = head === null ? read : Math.max(head, read);
    return head;
  }

  function deliver(sub: Subscription, batch: RevocationEvent[]): void {
    const fresh = batch.filter((e) => e.cursor > sub.cursor);
    if (fresh.length === 0) return;
    if (fresh[0]!.cursor !== sub.cursor + 1) {
      // Should not happen (live followers are at the head), but never skip: catch up instead.
      sub.live = false;
      void catchUp(sub);
      return;
    }
    sub.subscriber.send(fresh);
    sub.cursor = fresh[fresh.length - 1]!.cursor;
  }

  async function pumpOnce(): Promise<void> {
    // Nobody follows: nothing to read (a read per commit was one more round trip per
    // revocation on PostgreSQL). The head is forgotten, as at start: the first follower's
    // catch-up reads the log up to the head, and the next pump the head again.
    if (subscriptions.size === 0) {
      head = null;
      return;
    }
    // From the cursor of the live follower furthest behind, not from the hub's head: a
    // follower that went live just after a pass had read past its cursor (its check of the
    // head came before the commit, the pass after it) would otherwise never be handed those
    // entries. Live followers are normally all at the head, so this is the same read. With
    // no live follower there is nobody to hand anything to: those catching up read the store
    // themselves, and each one's switch to live asks for a pass.
    let from = Number.POSITIVE_INFINITY;
    for (const sub of subscriptions) if (sub.live && sub.cursor < from) from = sub.cursor;
    if (from === Number.POSITIVE_INFINITY) return;
    for (;;) {
      const batch = await store.listRevocations(from, PAGE);
      if (batch.length === 0) return;
      from = batch[batch.length - 1]!.cursor;
      head = Math.max(head ?? 0, from);
      for (const sub of subscriptions) if (sub.live) deliver(sub, batch);
      if (batch.length < PAGE) return;
    }
  }

  /** Reads what is new in the log and hands it to caught-up followers. Coalesces calls. */
  const pump = createSingleFlight(pumpOnce, (error) => options.onError?.(error), () => closed);
  const wake = () => pump.run();

  async function catchUp(sub: Subscription): Promise<void> {
    while (!closed && subscriptions.has(sub)) {
      const batch = await store.listRevocations(sub.cursor, PAGE);
      if (batch.length > 0) {
        const full = !sub.subscriber.send(batch);
        sub.cursor = batch[batch.length - 1]!.cursor;
        if (full) await sub.subscriber.drained();
        continue;
      }
      // Nothing after our cursor in the store. Unless the hub has meanwhile read further
      // (then those events are in the store: loop), we are at the head: go live. The check
      // and the switch happen in one synchronous step, so no delivery can fall between.
      if (sub.cursor >= (await readHead())) {
        sub.live = true;
        // A commit after this follower's last read may have had its pass while the follower
        // was not live yet: one more pass, from its cursor, hands it anything since.
        void wake();
        return;
      }
    }
  }

  /** Follows the log from `after` (exclusive). Returns the function that stops following. */
  async function subscribe(after: number, subscriber: FeedSubscriber): Promise<() => void> {
    const sub: Subscription = { cursor: after, live: false, subscriber };
    subscriptions.add(sub);
    const stop = () => {
      subscriptions.delete(sub);
    };
    try {
      await catchUp(sub);
    } catch (error) {
      stop();
      throw error;
    }
    return stop;
  }

  const timer = setInterval(() => void wake(), options.pollIntervalMs);
  timer.unref();

  return {
    wake,
    subscribe,
    /** The number of connected followers. */
    get size() {
      return subscriptions.size;
    },
    /** Ends every follower's connection and stops polling. */
    async close() {
      closed = true;
      clearInterval(timer);
      for (const sub of subscriptions) sub.subscriber.end();
      subscriptions.clear();
      await pump.idle();
    },
  };
}

/** The hub returned by {@link createFeedHub}. */
export type FeedHub = ReturnType<typeof createFeedHub>;
