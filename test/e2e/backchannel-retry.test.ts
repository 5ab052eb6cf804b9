// Durable back-channel logout over real HTTP: a real Tessera node (startServer, SQLite) and
// receivers on node:http that are down, failing, redirecting or hanging when the logout
// happens. The user's own logout answers at once whatever the receivers do; the delivery
// is retried with backoff until it arrives, or ends `dead` after its horizon and can be
// retried by an admin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createReceiver,
  createUser,
  fetchJwks,
  joinSession,
  logoutTokenOf,
  registerApp,
  startSession,
  startTesseraNode,
  verifyLogoutToken,
  waitFor,
  type DeliveryJson,
  type Receiver,
  type RegisteredApp,
  type SessionDeliveries,
  type TesseraNode,
} from './support/backchannel.js';

const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

async function receiver(options: Parameters<typeof createReceiver>[0] = {}): Promise<Receiver> {
  const r = await createReceiver(options);
  closers.push(() => r.close());
  return r;
}

/** One app with a back-channel URI, one trusted app that starts sessions, and a user. */
async function setUp(node: TesseraNode, backchannelUri: string) {
  const gateway = await registerApp(node.url, { name: `gateway-${Math.random()}`, trusted: true });
  const app = await registerApp(node.url, { name: `rp-${Math.random()}`, trusted: false, backchannel_logout_uri: backchannelUri });
  const userId = await createUser(node.url, `u${Math.random().toString(36).slice(2, 10)}`);
  return { gateway, app, userId };
}

async function sessionJoinedBy(node: TesseraNode, gateway: RegisteredApp, app: RegisteredApp, userId: string) {
  const session = await startSession(node.url, gateway, userId);
  await joinSession(node.url, app, session.token);
  return session;
}

/** Native-client logout; returns how long Tessera took to answer. */
async function logOut(node: TesseraNode, token: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${node.url}/v1/logout/api`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_token: token }) });
  const elapsed = performance.now() - started;
  expect(response.status).toBe(204);
  return elapsed;
}

async function deliveryFor(node: TesseraNode, handle: string, clientId: string): Promise<DeliveryJson> {
  const { status, body } = await node.admin<SessionDeliveries>('GET', `/sessions/${handle}/deliveries`);
  expect(status).toBe(200);
  const found = body.deliveries.filter((d) => d.client_id === clientId);
  expect(found).toHaveLength(1);
  return found[0]!;
}

function waitForDelivery(node: TesseraNode, handle: string, clientId: string, what: string, done: (d: DeliveryJson) => boolean, timeoutMs = 15_000): Promise<DeliveryJson> {
  let last: DeliveryJson | undefined;
  return waitFor(what, async () => {
    last = await deliveryFor(node, handle, clientId);
    return done(last) ? last : undefined;
  }, { timeoutMs, last: () => last });
}

const ATTEMPT_TIMEOUT_MS = 10_000;

describe('back-channel delivery with retries (backoff 50 ms, timeout 10 s)', () => {
  let node: TesseraNode;

  beforeAll(async () => {
    node = await startTesseraNode({ outbox: { backoffBaseMs: 50, backoffMaxMs: 400, pollIntervalMs: 20, timeoutMs: ATTEMPT_TIMEOUT_MS } });
    closers.push(() => node.close());
  });

  it('a receiver that is down at logout time gets the logout once it is back, after several attempts', async () => {
    const rp = await receiver({ listen: false });
    const { gateway, app, userId } = await setUp(node, rp.url);
    const session = await sessionJoinedBy(node, gateway, app, userId);

    const elapsed = await logOut(node, session.token);
    // Ending the session is local; a connection refused elsewhere is no concern of the user.
    // (Bounded by the attempt timeout, not by a speed: a loaded machine may take a second.)
    expect(elapsed).toBeLessThan(ATTEMPT_TIMEOUT_MS);

    // While the app is down, the delivery stays pending and its attempts grow.
    const failing = await waitForDelivery(node, session.handle, app.clientId, 'three failed attempts', (d) => d.attempts >= 3);
    expect(failing).toMatchObject({ status: 'pending', channel: 'backchannel', scope: 'session', sid: session.handle, sub: userId, reason: 'logout', last_status: null, delivered_at: null });
    expect(failing.last_error).toMatch(/ECONNREFUSED|fetch failed/);
    expect(rp.received).toHaveLength(0);

    await rp.listen();
    const delivered = await waitForDelivery(node, session.handle, app.clientId, 'delivered', (d) => d.status === 'delivered');
    expect(delivered.attempts).toBeGreaterThan(failing.attempts);
    expect(delivered.last_status).toBe(204);
    expect(delivered.last_error).toBeNull();
    expect(delivered.delivered_at).not.toBeNull();
    expect(delivered.next_attempt_at).toBeNull();
    // Exactly one attempt reached the app: the one that succeeded.
    expect(rp.received).toHaveLength(1);
    const jwks = await fetchJwks(node.url);
    const token = await verifyLogoutToken(logoutTokenOf(rp.received[0]!), jwks, { issuer: node.url, audience: app.clientId });
    expect(token.claims).toMatchObject({ sub: userId, sid: session.handle });
  });

  it('retries wait longer and longer (exponential backoff with jitter)', async () => {
    const rp = await receiver({ answer: () => ({ status: 503 }) });
    const { gateway, app, userId } = await setUp(node, rp.url);
    const session = await sessionJoinedBy(node, gateway, app, userId);
    await logOut(node, session.token);
    await waitFor('six attempts', () => (rp.received.length >= 6 ? true : undefined));
    rp.answer = () => ({ status: 200 });
    await waitForDelivery(node, session.handle, app.clientId, 'delivered', (d) => d.status === 'delivered');
    // The gap after failed attempt n is at least the fixed half of its ceiling
    // min(400, 50·2^(n-1)) ms ("equal jitter"): 25, 50, 100, 200, 200 ms.
    const at = rp.received.map((r) => r.at);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    gaps.slice(0, 5).forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(Math.min(400, 50 * 2 ** i) / 2 - 2));
    expect(gaps[3]! + gaps[4]!).toBeGreaterThan(gaps[0]! + gaps[1]!);
  });

  it('a receiver answering 500 then 200 is delivered on the second attempt', async () => {
    const rp = await receiver({ answer: (_r, i) => ({ status: i === 0 ? 500 : 200 }) });
    const { gateway, app, userId } = await setUp(node, rp.url);
    const session = await sessionJoinedBy(node, gateway, app, userId);
    await logOut(node, session.token);
    const delivered = await waitForDelivery(node, session.handle, app.clientId, 'delivered', (d) => d.status === 'delivered');
    expect(delivered).toMatchObject({ attempts: 2, last_status: 200, last_error: null });
    expect(rp.received).toHaveLength(2);
    for (const request of rp.received) {
      expect(request.method).toBe('POST');
      expect(request.path).toBe('/logout');
    }
  });

  it('a 500 is recorded as the last error while the delivery is pending', async () => {
    const rp = await receiver({ answer: () => ({ status: 500 }) });
    const { gateway, app, userId } = await setUp(node, rp.url);
    const session = await sessionJoinedBy(node, gateway, app, userId);
    await logOut(node, session.token);
    const failing = await waitForDelivery(node, session.handle, app.clientId, 'two failed attempts', (d) => d.attempts >= 2);
    expect(failing).toMatchObject({ status: 'pending', last_status: 500, last_error: 'HTTP 500', delivered_at: null });
    expect(failing.next_attempt_at).not.toBeNull();
    rp.answer = () => ({ status: 204 });
    await waitForDelivery(node, session.handle, app.clientId, 'delivered', (d) => d.status === 'delivered');
  });

  it('a redirect (302) is not followed and counts as a failure', async () => {
    const elsewhere = await receiver();
    const rp = await receiver({ answer: () => ({ status: 302, headers: { location: elsewhere.url } }) });
    const { gateway, app, userId } = await setUp(node, rp.url);
    const session = await sessionJoinedBy(node, gateway, app, userId);
    await logOut(node, session.token);
    const failing = await waitForDelivery(node, session.handle, app.clientId, 'two failed attempts', (d) => d.attempts >= 2);
    expect(failing).toMatchObject({ status: 'pending', last_status: 302, last_error: 'HTTP 302' });
    // The token never went where the redirect pointed.
    expect(elsewhere.received).toHaveLength(0);
    expect(rp.received.length).toBeGreaterThanOrEqual(2);

    rp.answer = () => ({ status: 200 });
    await waitForDelivery(node, session.handle, app.clientId, 'delivered', (d) => d.status === 'delivered');
    expect(elsewhere.received).toHaveLength(0);
  });

  it('a receiver that hangs does not delay the logout response', async () => {
    let release!: (answer: { status: number }) => void;
    const held = new Promise<{ status: number }>((resolve) => (release = resolve));
    const rp = await receiver({ answer: () => ({ hold: held }) });
    const { gateway, app, userId } = await setUp(node, rp.url);
    const session = await sessionJoinedBy(node, gateway, app, userId);

    const elapsed = await logOut(node, session.token);
    // Were the logout waiting on the delivery, it would take the 10 s attempt timeout; the
    // proof that it did not is below (the attempt is still in flight after the answer).
    expect(elapsed).toBeLessThan(ATTEMPT_TIMEOUT_MS);
    await waitFor('the held delivery request', () => (rp.received.length === 1 ? true : undefined));
    // The app has the request and has not answered; the logout was already done.
    const inFlight = await deliveryFor(node, session.handle, app.clientId);
    expect(inFlight).toMatchObject({ status: 'pending', attempts: 0 });
    const whoami = await fetch(`${node.url}/v1/whoami`, { headers: { 'x-session-token': session.token } });
    expect(whoami.status).toBe(401);

    release({ status: 200 });
    const delivered = await waitForDelivery(node, session.handle, app.clientId, 'delivered', (d) => d.status === 'delivered');
    expect(delivered).toMatchObject({ attempts: 1, last_status: 200 });
  });
});

describe('delivery horizon: dead, then an admin retry', () => {
  let node: TesseraNode;

  beforeAll(async () => {
    // The horizon cannot be shorter than 60 s. With a first retry delay of at least 65 s
    // (base 130 s, "equal jitter" draws from [65 s, 130 s]), the retry after a first failure
    // would fall past the horizon, so the first failure already ends the delivery `dead`.
    node = await startTesseraNode({ outbox: { horizonSeconds: 60, backoffBaseMs: 130_000, backoffMaxMs: 600_000, pollIntervalMs: 20, timeoutMs: 2_000 } });
    closers.push(() => node.close());
  });

  it('a delivery that cannot arrive before its horizon ends dead; a retry by an admin delivers it', async () => {
    const rp = await receiver({ listen: false });
    const { gateway, app, userId } = await setUp(node, rp.url);
    const session = await sessionJoinedBy(node, gateway, app, userId);
    await logOut(node, session.token);

    const dead = await waitForDelivery(node, session.handle, app.clientId, 'dead', (d) => d.status === 'dead');
    expect(dead).toMatchObject({ attempts: 1, next_attempt_at: null, delivered_at: null });
    expect(dead.last_error).toMatch(/ECONNREFUSED|fetch failed/);
    const listed = await node.admin<{ deliveries: DeliveryJson[]; counts: Record<string, number> }>('GET', `/deliveries?status=dead&client_id=${app.clientId}`);
    expect(listed.status).toBe(200);
    expect(listed.body.deliveries.map((d) => d.id)).toEqual([dead.id]);
    expect(listed.body.counts.dead).toBeGreaterThanOrEqual(1);

    // Dead stays dead: the worker does not pick it up again on its own.
    const before = rp.received.length;
    await rp.listen();
    // Ten poll intervals of the worker: time enough to have taken it, had it been due.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await deliveryFor(node, session.handle, app.clientId)).status).toBe('dead');
    expect(rp.received.length).toBe(before);

    const retried = await node.admin<{ delivery: DeliveryJson }>('POST', `/deliveries/${dead.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.delivery).toMatchObject({ id: dead.id, status: 'pending' });
    const delivered = await waitForDelivery(node, session.handle, app.clientId, 'delivered after the retry', (d) => d.status === 'delivered');
    expect(delivered).toMatchObject({ attempts: 2, last_status: 204 });
    expect(rp.received).toHaveLength(1);
    const jwks = await fetchJwks(node.url);
    const token = await verifyLogoutToken(logoutTokenOf(rp.received[0]!), jwks, { issuer: node.url, audience: app.clientId });
    expect(token.claims.sid).toBe(session.handle);

    // A delivered delivery cannot be retried, nor an unknown one.
    const again = await node.admin<{ error: string }>('POST', `/deliveries/${dead.id}/retry`);
    expect(again.status).toBe(404);
    expect(again.body.error).toBe('DELIVERY_NOT_FOUND');
    const unknown = await node.admin<{ error: string }>('POST', '/deliveries/999999/retry');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('DELIVERY_NOT_FOUND');
    // The retry is in the audit trail.
    const audit = await node.admin<{ events: Array<{ action: string; details: { delivery?: number } }> }>('GET', `/audit?user=${userId}`);
    expect(audit.body.events.some((e) => e.action === 'delivery.retried' && e.details.delivery === dead.id)).toBe(true);
  });
});
