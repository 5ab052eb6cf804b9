import type { RevocationEvent } from '@tessera/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSweeper } from '../src/sweeper.js';
import {
  START,
  adminRequest,
  bearer,
  createApp,
  createTestServer,
  createUser,
  revocationLog,
  startAppSession,
  whoamiStatus,
  type SessionJson,
  type TestApp,
  type TestServer,
} from './support.js';

const IDLE_S = 600;
const LIFETIME_S = 3600;
const seconds = (s: number) => s * 1000;

describe('session expiry (manual clock)', () => {
  let t: TestServer;
  let app: TestApp;
  let userId: string;
  const published: RevocationEvent[] = [];
  beforeEach(async () => {
    published.length = 0;
    t = await createTestServer({
      env: { TESSERA_SESSION_IDLE_TIMEOUT: String(IDLE_S), TESSERA_SESSION_LIFETIME: String(LIFETIME_S) },
      onRevoked: (events) => published.push(...events),
    });
    app = await createApp(t);
    userId = (await createUser(t)).user.id;
  });
  afterEach(async () => t.close());

  /** Moves the clock to START + `s` seconds. */
  const at = (s: number) => t.clock.set(START + seconds(s));

  it('a session unused for the idle timeout ends: whoami 401 and the log records reason expired', async () => {
    const s = await startAppSession(t, app, userId);
    expect(s.session.idle_expires_at).toBe(new Date(START + seconds(IDLE_S)).toISOString());
    expect(s.session.expires_at).toBe(new Date(START + seconds(LIFETIME_S)).toISOString());
    at(IDLE_S - 1);
    expect(await whoamiStatus(t, s.token)).toBe(200);
    expect(await revocationLog(t)).toHaveLength(0);
    // That use moved the idle deadline; unused from here, it dies IDLE_S later.
    at(IDLE_S - 1 + IDLE_S - 1);
    expect(await whoamiStatus(t, s.token)).toBe(200);
    at(2 * (IDLE_S - 1) + IDLE_S);
    expect(await whoamiStatus(t, s.token)).toBe(401);
    const log = await revocationLog(t);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ sid: s.handle, sub: userId, reason: 'expired', actor: 'system', app: null, at: START + seconds(2 * (IDLE_S - 1) + IDLE_S) });
    expect(published.map((e) => e.reason)).toEqual(['expired']);
    // Ended for good: presenting it again writes nothing more.
    expect(await whoamiStatus(t, s.token)).toBe(401);
    expect(await revocationLog(t)).toHaveLength(1);
  });

  it('is alive a millisecond before the idle deadline and ended at it', async () => {
    const early = await startAppSession(t, app, userId);
    const late = await startAppSession(t, app, userId);
    t.clock.set(START + seconds(IDLE_S) - 1);
    expect(await whoamiStatus(t, early.token)).toBe(200);
    t.clock.set(START + seconds(IDLE_S));
    expect(await whoamiStatus(t, late.token)).toBe(401);
    expect((await revocationLog(t)).map((e) => e.sid)).toEqual([late.handle]);
  });

  it('uses closer together than the touch interval do not extend the idle deadline', async () => {
    const s = await startAppSession(t, app, userId);
    const touch = t.config.session.touchIntervalSeconds;
    expect(touch).toBeGreaterThan(1);
    at(touch - 1);
    expect(await whoamiStatus(t, s.token)).toBe(200);
    at(IDLE_S);
    expect(await whoamiStatus(t, s.token)).toBe(401);
    expect((await revocationLog(t))[0]!.reason).toBe('expired');
  });

  it('a session used all the time still ends at its absolute lifetime', async () => {
    const s = await startAppSession(t, app, userId);
    for (let now = 500; now < LIFETIME_S; now += 500) {
      at(now);
      expect(await whoamiStatus(t, s.token), `at ${now}s`).toBe(200);
    }
    const who = await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: bearer(s.token) });
    // The idle deadline is capped by the absolute end.
    expect(who.json<{ session: SessionJson }>().session.idle_expires_at).toBe(new Date(START + seconds(LIFETIME_S)).toISOString());
    at(LIFETIME_S);
    expect(await whoamiStatus(t, s.token)).toBe(401);
    const log = await revocationLog(t);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ sid: s.handle, reason: 'expired', actor: 'system' });
  });

  it('expired sessions are not listed as mine, even before the sweeper passes', async () => {
    const old = await startAppSession(t, app, userId);
    at(IDLE_S / 2);
    const fresh = await startAppSession(t, app, userId);
    at(IDLE_S + 1);
    const res = await t.app.inject({ method: 'GET', url: '/v1/sessions', headers: bearer(fresh.token) });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ sessions: SessionJson[] }>().sessions.map((s) => s.handle)).toEqual([fresh.handle]);
    const admin = await adminRequest(t, 'GET', `/users/${userId}/sessions`);
    expect(admin.json<{ sessions: SessionJson[] }>().sessions.map((s) => s.handle)).toEqual([fresh.handle]);
    expect(old.handle).not.toBe(fresh.handle);
  });

  it('the sweeper ends sessions nobody presents and writes reason expired, once', async () => {
    const idle = await startAppSession(t, app, userId, 'idle');
    const idle2 = await startAppSession(t, app, userId, 'idle-2');
    const busy = await startAppSession(t, app, userId, 'busy');
    at(IDLE_S - 10);
    expect(await whoamiStatus(t, busy.token)).toBe(200);
    expect(await t.authority.sessions.sweepExpired()).toBe(0);
    expect(await revocationLog(t)).toHaveLength(0);

    at(IDLE_S);
    expect(await t.authority.sessions.sweepExpired()).toBe(2);
    const log = await revocationLog(t);
    expect(log.map((e) => e.sid).sort()).toEqual([idle.handle, idle2.handle].sort());
    expect(log.every((e) => e.reason === 'expired' && e.actor === 'system' && e.sub === userId && e.at === START + seconds(IDLE_S))).toBe(true);
    expect(log.map((e) => e.cursor)).toEqual([log[0]!.cursor, log[0]!.cursor + 1]);
    expect(published.map((e) => e.sid).sort()).toEqual([idle.handle, idle2.handle].sort());
    const ended = await t.store.findSessionByHandle(idle.handle);
    expect(ended).toMatchObject({ endReason: 'expired', endedBy: 'system', endedAt: START + seconds(IDLE_S) });

    // A second sweep finds nothing; presenting a swept token writes nothing either.
    expect(await t.authority.sessions.sweepExpired()).toBe(0);
    expect(await whoamiStatus(t, idle.token)).toBe(401);
    expect(await revocationLog(t)).toHaveLength(2);
    expect(await whoamiStatus(t, busy.token)).toBe(200);
  });

  it('the sweeper works through more sessions than one batch', async () => {
    const count = t.config.sweeper.batchSize + 3;
    const user = (await t.store.findUserById(userId))!;
    for (let i = 0; i < count; i += 1) await t.authority.sessions.startSession(user, { ip: null, userAgent: null });
    at(LIFETIME_S);
    expect(await t.authority.sessions.sweepExpired()).toBe(count);
    expect(await t.store.listSessionsByUser(userId)).toHaveLength(0);
    expect(await revocationLog(t)).toHaveLength(count);
  });

  it('the background sweeper (startSweeper) runs a sweep at start and on stop leaves nothing running', async () => {
    const s = await startAppSession(t, app, userId);
    at(IDLE_S + 5);
    const sweeper = startSweeper(t.authority, 60_000, t.app.log);
    await sweeper.stop();
    const log = await revocationLog(t);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ sid: s.handle, reason: 'expired' });
  });
});
