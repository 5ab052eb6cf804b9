// 1,000 sessions, each joined by 5 apps, all ended by one admin call: every one of the
// 5,000 back-channel logouts arrives, exactly once, verified by its app as a relying party
// would, and the outbox shows them all delivered. The apps are node:http receivers on their
// own ports; Tessera is a real node (startServer, SQLite). No timing assertions here: the
// throughput is measured by bench/backchannel-throughput.mjs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, jwtVerify } from 'jose';
import {
  BACKCHANNEL_EVENT,
  createReceiver,
  createUser,
  fetchJwks,
  logoutTokenOf,
  mapLimit,
  registerApp,
  startTesseraNode,
  waitFor,
  type DeliveryJson,
  type Receiver,
  type RegisteredApp,
  type TesseraNode,
} from './support/backchannel.js';

const SESSIONS = 1_000;
const APPS = 5;
const PER_APP = 8;

let node: TesseraNode;
const receivers: Receiver[] = [];
const apps: RegisteredApp[] = [];
/** Per app: session id → arrivals. */
const arrivals: Array<Map<string, number>> = [];
const rejected: string[] = [];
const concurrent = { now: [] as number[], max: [] as number[] };

beforeAll(async () => {
  node = await startTesseraNode({ outbox: { concurrencyPerApp: PER_APP, maxInFlight: 128 } });
  const keys = createLocalJWKSet(await fetchJwks(node.url));
  for (let i = 0; i < APPS; i += 1) {
    arrivals.push(new Map());
    concurrent.now.push(0);
    concurrent.max.push(0);
    receivers.push(await createReceiver({
      onRequest: () => {
        concurrent.now[i]! += 1;
        concurrent.max[i] = Math.max(concurrent.max[i]!, concurrent.now[i]!);
      },
      answer: async (request) => {
        try {
          const { payload } = await jwtVerify(logoutTokenOf(request), keys, { issuer: node.url, audience: apps[i]!.clientId, typ: 'logout+jwt', requiredClaims: ['iat', 'exp', 'jti', 'sid'] });
          if (typeof (payload.events as Record<string, unknown> | undefined)?.[BACKCHANNEL_EVENT] !== 'object' || 'nonce' in payload) throw new Error('not a logout token');
          const sid = payload.sid as string;
          arrivals[i]!.set(sid, (arrivals[i]!.get(sid) ?? 0) + 1);
          return { status: 204 };
        } catch (error) {
          rejected.push((error as Error).message);
          return { status: 400 };
        } finally {
          concurrent.now[i]! -= 1;
        }
      },
    }));
    apps.push(await registerApp(node.url, { name: `bulk app ${i}`, trusted: i === 0, backchannel_logout_uri: receivers[i]!.url }));
  }
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(receivers.map((r) => r.close()));
  await node?.close();
});

describe('1,000 sessions × 5 apps ended at once', () => {
  it('delivers every one of the 5,000 logouts exactly once, each app at most 8 at a time', async () => {
    const users = await mapLimit(Array.from({ length: SESSIONS / 10 }, (_, i) => `bulk${i}`), 8, (name) => createUser(node.url, name));
    const handles = await mapLimit(Array.from({ length: SESSIONS }, (_, i) => users[i % users.length]!), 16, async (userId) => {
      const started = await fetch(`${node.url}/v1/sessions`, { method: 'POST', headers: { authorization: apps[0]!.basic, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: userId }) });
      expect(started.status).toBe(201);
      const { session, session_token: token } = (await started.json()) as { session: { handle: string }; session_token: string };
      for (const app of apps.slice(1)) {
        const joined = await fetch(`${node.url}/v1/whoami`, { headers: { authorization: app.basic, 'x-session-token': token } });
        await joined.arrayBuffer();
        expect(joined.status).toBe(200);
      }
      return session.handle;
    });
    expect(new Set(handles).size).toBe(SESSIONS);

    const revoked = await node.admin<{ revoked: string[] }>('POST', '/sessions/revoke', { handles });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toHaveLength(SESSIONS);
    // Planned with the revocation: every notice is in the outbox once the call has answered.
    const planned = await node.admin<{ counts: { pending: number; delivered: number; dead: number } }>('GET', '/deliveries?limit=1');
    expect(planned.body.counts.pending + planned.body.counts.delivered).toBe(SESSIONS * APPS);

    const arrived = () => arrivals.reduce((n, m) => n + m.size, 0);
    await waitFor('all 5,000 logouts to arrive', () => (arrived() === SESSIONS * APPS ? true : undefined), { timeoutMs: 90_000, intervalMs: 50, last: () => ({ arrived: arrived(), rejected: rejected.length }) });
    let counts: Record<string, number> | undefined;
    await waitFor('the outbox to record them', async () => {
      counts = (await node.admin<{ counts: Record<string, number> }>('GET', '/deliveries?limit=1')).body.counts;
      return counts.delivered === SESSIONS * APPS ? true : undefined;
    }, { last: () => counts });

    expect(rejected).toEqual([]);
    expect(counts).toEqual({ pending: 0, delivered: SESSIONS * APPS, dead: 0 });
    for (const [i, app] of apps.entries()) {
      // Every session, at every app, once: no loss and, without a crash, no duplicate.
      expect([...arrivals[i]!.keys()].sort()).toEqual([...handles].sort());
      expect([...arrivals[i]!.values()].every((n) => n === 1)).toBe(true);
      expect(concurrent.max[i]).toBeGreaterThan(1);
      expect(concurrent.max[i]).toBeLessThanOrEqual(PER_APP);
      const listed = await node.admin<{ deliveries: DeliveryJson[] }>('GET', `/deliveries?client_id=${app.clientId}&limit=1000`);
      expect(listed.body.deliveries).toHaveLength(SESSIONS);
      expect(listed.body.deliveries.every((d) => d.status === 'delivered' && d.attempts === 1 && d.last_status === 204 && d.scope === 'session' && d.reason === 'admin_revoked')).toBe(true);
      expect(new Set(listed.body.deliveries.map((d) => d.sid))).toEqual(new Set(handles));
    }
  }, 240_000);
});
