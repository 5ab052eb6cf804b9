import type { RevocationEvent, Store } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFeedHub, type FeedHub } from '../src/feed-hub.js';

/** The hub over a real SQLite store, with the log reads it makes counted. */
describe('feed hub', () => {
  let store: Store;
  let hub: FeedHub;
  let reads = 0;
  let n = 0;

  beforeEach(async () => {
    const real = createSqliteStore(':memory:');
    await real.migrate();
    reads = 0;
    store = new Proxy(real, {
      get(target, key, receiver) {
        if (key === 'listRevocations') reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    // A poll interval longer than any test: only wake() makes the hub read.
    hub = createFeedHub(store, { pollIntervalMs: 60_000 });
  });
  afterEach(async () => {
    await hub.close();
    await store.close();
  });

  /** Starts and ends `count` sessions in the store: entries in the log, the hub not told. */
  async function commit(count: number): Promise<RevocationEvent[]> {
    const handles: string[] = [];
    for (let i = 0; i < count; i++) {
      n++;
      await store.createSession({ tokenId: `tok_${n}`, secretHash: 'x'.repeat(64), handle: `ses_${n}`, userId: 'usr_1', ip: null, userAgent: null, createdAt: 1, idleTimeoutMs: 60_000, expiresAt: 10_000_000, apps: [] });
      handles.push(`ses_${n}`);
    }
    return store.endSessions(handles, { at: 2, reason: 'logout', actor: 'user' });
  }

  /** {@link commit}, then the hub's wake-up, as after a commit on this node. */
  async function end(count: number): Promise<RevocationEvent[]> {
    const events = await commit(count);
    await hub.wake();
    return events;
  }

  function follower() {
    const received: RevocationEvent[] = [];
    return { received, subscriber: { send: (events: RevocationEvent[]) => (received.push(...events), true), drained: async () => undefined, end: () => undefined } };
  }

  const waitFor = async (check: () => boolean) => {
    for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(check()).toBe(true);
  };

  it('a follower that goes live while a pass reads past its cursor still gets those entries, with no further commit', async () => {
    await end(2);
    // Nobody follows, so the hub knows no head. The head reads are held and let go in this
    // order: the follower's (taken before the next commit: 2), then a pass's (after it: 3).
    const held: Array<() => void> = [];
    let holding = true;
    const realHead = store.revocationHead.bind(store);
    store.revocationHead = async () => {
      const head = await realHead();
      if (holding) await new Promise<void>((resolve) => held.push(resolve));
      return head;
    };
    const { received, subscriber } = follower();
    const joined = hub.subscribe(2, subscriber);
    await waitFor(() => held.length === 1);
    const [third] = await commit(1);
    const pass = hub.wake();
    // The pass of that commit either waits on its own head read or has nothing to do yet.
    let passDone = false;
    void pass.then(() => (passDone = true));
    await waitFor(() => held.length === 2 || passDone);
    holding = false;
    held[0]!();
    await joined;
    held[1]?.();
    await pass;
    // The poll interval is a minute: only the hub's own reading can bring it.
    await waitFor(() => received.length === 1);
    expect(received.map((e) => e.cursor)).toEqual([third!.cursor]);
  });

  it('reads nothing on commits while nobody follows', async () => {
    await end(3);
    await end(2);
    expect(reads).toBe(0);
  });

  it('gives a follower who joins after unfollowed commits every entry after its cursor, then the live ones, in order and once', async () => {
    const before = await end(5);
    const { received, subscriber } = follower();
    const stop = await hub.subscribe(before[1]!.cursor, subscriber);
    expect(received.map((e) => e.cursor)).toEqual(before.slice(2).map((e) => e.cursor));
    const live = await end(3);
    await waitFor(() => received.length === 6);
    expect(received.map((e) => e.cursor)).toEqual([...before.slice(2), ...live].map((e) => e.cursor));
    // Everyone leaves: commits are not read; a new follower from the start gets the whole log.
    stop();
    const readsAlone = reads;
    const later = await end(2);
    expect(reads).toBe(readsAlone);
    const second = follower();
    await hub.subscribe(0, second.subscriber);
    const more = await end(1);
    await waitFor(() => second.received.length === 11);
    expect(second.received.map((e) => e.cursor)).toEqual([...before, ...live, ...later, ...more].map((e) => e.cursor));
    expect(second.received.map((e) => e.cursor)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });
});
