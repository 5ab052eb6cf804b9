import { describe, expect, it } from 'vitest';
import { createSsfWakeup } from '../src/ssf/wakeup.js';

describe('SSF wake-up', () => {
  it('wakes every waiter and every listener; a waiter whose time is up is no longer counted as waiting', async () => {
    const wakeup = createSsfWakeup();
    let heard = 0;
    const unsubscribe = wakeup.onWake(() => heard++);
    const woken = [wakeup.next(60_000), wakeup.next(60_000)];
    expect(wakeup.waiting).toBe(2);
    wakeup.wake();
    await Promise.all(woken);
    expect(wakeup.waiting).toBe(0);
    expect(heard).toBe(1);

    // Time up: resolved without a wake-up, and gone from the count (the gauge
    // tessera_ssf_long_polls_waiting reads it), while another still waits.
    const long = wakeup.next(60_000);
    await wakeup.next(5);
    expect(wakeup.waiting).toBe(1);
    wakeup.wake();
    await long;
    expect(wakeup.waiting).toBe(0);
    unsubscribe();
    wakeup.wake();
    expect(heard).toBe(2);
  });
});
