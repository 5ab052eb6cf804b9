// Every way a session ends tells every app that joined it (issue 4, point 1), over real
// HTTP against a real Tessera node: the delivery rows exist as soon as the ending call has
// answered (they are written in the revoking transaction), one per app and channel, with
// the reason and scope of the end (user-wide ends: one notice per app naming only the
// user), and they arrive — a verified logout token at the back-channel receiver, a signed
// webhook at the connector's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JSONWebKeySet } from 'jose';
import { Webhook } from 'standardwebhooks';
import { createFormClient } from './support/form-client.js';
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
  type VerifiedLogoutToken,
} from './support/backchannel.js';

const PASSWORD = 'correct horse battery staple';
const ORIGIN = 'http://rp.example.test';

/** A node with a gateway (trusted, pull-only), a back-channel app and a webhook app. */
interface World {
  node: TesseraNode;
  gateway: RegisteredApp;
  bcl: RegisteredApp;
  hook: RegisteredApp;
  rp: Receiver;
  hookReceiver: Receiver;
  jwks: JSONWebKeySet;
}

async function createWorld(file: Record<string, unknown>): Promise<World> {
  const node = await startTesseraNode({ outbox: { backoffBaseMs: 50, backoffMaxMs: 200, pollIntervalMs: 20 }, ...file });
  const rp = await createReceiver();
  const hookReceiver = await createReceiver();
  const gateway = await registerApp(node.url, { name: 'gateway', trusted: true });
  const bcl = await registerApp(node.url, { name: 'back-channel app', trusted: false, backchannel_logout_uri: rp.url, allowed_origins: [ORIGIN] });
  const hook = await registerApp(node.url, { name: 'webhook app', trusted: false, connectors: { webhook: { url: hookReceiver.url } } });
  return { node, gateway, bcl, hook, rp, hookReceiver, jwks: await fetchJwks(node.url) };
}

async function destroyWorld(world: World | undefined): Promise<void> {
  if (!world) return;
  await Promise.allSettled([world.rp.close(), world.hookReceiver.close()]);
  await world.node.close();
}

let counter = 0;
const newUser = (w: World) => createUser(w.node.url, `ends${++counter}x${Date.now().toString(36)}`, PASSWORD);

/** A session started by the gateway and joined by both apps with a push channel. */
async function joinedSession(w: World, userId: string, device = 'device'): Promise<{ handle: string; token: string }> {
  const session = await startSession(w.node.url, w.gateway, userId, device);
  await joinSession(w.node.url, w.bcl, session.token);
  await joinSession(w.node.url, w.hook, session.token);
  return session;
}

async function deliveriesOf(w: World, handle: string): Promise<SessionDeliveries> {
  const { status, body } = await w.node.admin<SessionDeliveries>('GET', `/sessions/${handle}/deliveries`);
  expect(status).toBe(200);
  return body;
}

const verified = new Map<string, Promise<VerifiedLogoutToken>>();
function tokensAt(w: World): Promise<VerifiedLogoutToken[]> {
  return Promise.all(w.rp.received.map((r) => {
    const token = logoutTokenOf(r);
    if (!verified.has(token)) verified.set(token, verifyLogoutToken(token, w.jwks, { issuer: w.node.url, audience: w.bcl.clientId }));
    return verified.get(token)!;
  }));
}

interface Expected {
  reason: string;
  scope: 'session' | 'user';
  sub: string;
  /** Sessions a user-wide notice covers. */
  sessions?: number;
  /** The apps told (default: both push apps). */
  apps?: Array<'bcl' | 'hook'>;
  /** Whether the session is over (false for an app-scoped end). */
  ended?: boolean;
}

/**
 * Asserts the notices of an ended session: present now (same transaction as the end), one
 * per app told, with reason and scope; then that each one arrives.
 */
async function expectNotices(w: World, handle: string, expected: Expected, options: { alreadyPlanned?: boolean } = {}): Promise<DeliveryJson[]> {
  const apps = expected.apps ?? ['bcl', 'hook'];
  let status = await deliveriesOf(w, handle);
  if (options.alreadyPlanned === false) {
    status = await waitFor(`notices of ${handle}`, async () => {
      const s = await deliveriesOf(w, handle);
      return s.deliveries.length >= apps.length ? s : undefined;
    });
  }
  expect(status.active).toBe(expected.ended === false);
  expect(status.deliveries.map((d) => d.client_id).sort()).toEqual(apps.map((a) => w[a].clientId).sort());
  // The gateway joined too, but has no push channel: it learns on its next check.
  expect(status.pull_only).toEqual([w.gateway.clientId]);
  for (const d of status.deliveries) {
    expect(d).toMatchObject({
      channel: d.client_id === w.bcl.clientId ? 'backchannel' : 'webhook',
      reason: expected.reason,
      scope: expected.scope,
      sub: expected.sub,
      sid: expected.scope === 'session' ? handle : null,
    });
    if (expected.sessions !== undefined) expect(d.sessions).toBe(expected.sessions);
  }

  const ids = status.deliveries.map((d) => d.id);
  const done = await waitFor(`delivery of the notices of ${handle}`, async () => {
    const s = await deliveriesOf(w, handle);
    return s.deliveries.every((d) => d.status === 'delivered') ? s : undefined;
  });
  expect(done.deliveries.map((d) => d.id)).toEqual(ids);

  // What arrived says the same.
  if (apps.includes('bcl')) {
    const tokens = await tokensAt(w);
    const match = tokens.filter((t) => (expected.scope === 'session' ? t.claims.sid === handle : t.claims.sub === expected.sub && t.claims.sid === undefined));
    expect(match.length).toBeGreaterThanOrEqual(1);
    expect(match[0]!.claims.sub).toBe(expected.sub);
  }
  if (apps.includes('hook')) {
    const hooks = w.hookReceiver.received.map((r) => new Webhook(w.hook.webhookSecret!).verify(r.body, {
      'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']),
    }) as { data: { sub: string; sid: string | null; sids: string[]; reason: string } });
    const match = hooks.filter((h) => h.data.sids.includes(handle) && h.data.reason === expected.reason);
    expect(match.length).toBeGreaterThanOrEqual(1);
    expect(match[0]!.data.sid).toBe(expected.scope === 'session' ? handle : null);
  }
  return done.deliveries;
}

/** Notices planned for a session that must not have been told anything. */
async function expectNoNotices(w: World, handle: string): Promise<void> {
  const status = await deliveriesOf(w, handle);
  expect(status.active).toBe(true);
  expect(status.deliveries).toEqual([]);
}

describe('every session end tells every app that joined', () => {
  let w: World;
  beforeAll(async () => {
    w = await createWorld({});
  });
  afterAll(() => destroyWorld(w));

  // The notices of the browser flow's logout; the flow itself is walked in Chromium
  // (browser-flows.test.ts), so an HTTP form client is enough here.
  it('user logout, browser flow (login page, logout URL)', async () => {
    const userId = await newUser(w);
    const { body: { user } } = await w.node.admin<{ user: { username: string } }>('GET', `/users/${userId}`);
    const client = createFormClient({ userAgent: 'e2e laptop' });
    const login = await client.open(`${w.node.url}/login`);
    const signedIn = await client.submitForm(login, { action: '/login', fields: { username: user.username, password: PASSWORD } });
    expect(signedIn.hops[0]!.status).toBe(303);
    const cookie = client.jar.get('tessera_session', w.node.url)!;
    expect(cookie).toBeDefined();
    await joinSession(w.node.url, w.bcl, cookie.value);
    await joinSession(w.node.url, w.hook, cookie.value);
    // The login page's session joined no app of its own; the gateway joins to be pull-only.
    await joinSession(w.node.url, w.gateway, cookie.value);
    const whoami = (await (await fetch(`${w.node.url}/v1/whoami`, { headers: { 'x-session-token': cookie.value } })).json()) as { session: { handle: string } };

    const issued = await fetch(`${w.node.url}/v1/logout/browser`, { headers: { cookie: client.jar.headerFor(`${w.node.url}/v1/logout/browser`) } });
    expect(issued.status).toBe(200);
    const { logout_url: logoutUrl } = (await issued.json()) as { logout_url: string };
    const out = await client.open(logoutUrl);
    expect(out.hops[0]!.status).toBe(303);
    expect(client.jar.get('tessera_session', w.node.url)).toBeUndefined();
    await expectNotices(w, whoami.session.handle, { reason: 'logout', scope: 'session', sub: userId });
  });

  it('user logout, XHR from a registered origin', async () => {
    const userId = await newUser(w);
    const s = await joinedSession(w, userId);
    const response = await fetch(`${w.node.url}/v1/logout`, { method: 'POST', headers: { origin: ORIGIN, 'x-tessera-csrf': '1', cookie: `tessera_session=${s.token}` } });
    expect(response.status).toBe(204);
    await expectNotices(w, s.handle, { reason: 'logout', scope: 'session', sub: userId });
  });

  it('user logout, native API (DELETE /v1/logout/api)', async () => {
    const userId = await newUser(w);
    const s = await joinedSession(w, userId);
    const response = await fetch(`${w.node.url}/v1/logout/api`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_token: s.token }) });
    expect(response.status).toBe(204);
    await expectNotices(w, s.handle, { reason: 'logout', scope: 'session', sub: userId });
  });

  it('server-to-server logout: scope session, app and user', async () => {
    const userId = await newUser(w);
    const s2s = (token: string, scope?: string, app = w.bcl) => fetch(`${w.node.url}/api/v1/logout`, {
      method: 'POST',
      headers: { authorization: app.basic, 'content-type': scope ? 'application/json' : 'text/plain' },
      body: scope ? JSON.stringify({ token, scope }) : token,
    });

    const one = await joinedSession(w, userId, 'one');
    expect((await s2s(one.token)).status).toBe(200);
    await expectNotices(w, one.handle, { reason: 'logout', scope: 'session', sub: userId });

    // Scope app: only the calling app leaves, and only it is told; the session goes on.
    const two = await joinedSession(w, userId, 'two');
    expect((await s2s(two.token, 'app')).status).toBe(200);
    await expectNotices(w, two.handle, { reason: 'logout', scope: 'session', sub: userId, apps: ['bcl'], ended: false });

    // Scope user: every session of the user (two, still active for the others, and three).
    // Only a trusted app may end a user's every session (docs/security.md, "What an app may do").
    const three = await joinedSession(w, userId, 'three');
    expect((await s2s(three.token, 'user', w.gateway)).status).toBe(200);
    const notices = await expectNotices(w, three.handle, { reason: 'logout', scope: 'user', sub: userId });
    // The back-channel app had already left session two: its user-wide notice covers three only.
    expect(notices.find((d) => d.client_id === w.bcl.clientId)!.sessions).toBe(1);
    expect(notices.find((d) => d.client_id === w.hook.clientId)!.sessions).toBe(2);
  });

  it('self-service: end one of my sessions, end all my other sessions', async () => {
    const userId = await newUser(w);
    const [mine, other, third] = [await joinedSession(w, userId, 'a'), await joinedSession(w, userId, 'b'), await joinedSession(w, userId, 'c')];
    const one = await fetch(`${w.node.url}/v1/sessions/${other.handle}`, { method: 'DELETE', headers: { authorization: `Bearer ${mine.token}` } });
    expect(one.status).toBe(204);
    await expectNotices(w, other.handle, { reason: 'user_revoked', scope: 'session', sub: userId });

    const all = await fetch(`${w.node.url}/v1/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${mine.token}` } });
    expect(all.status).toBe(200);
    expect(((await all.json()) as { revoked: string[] }).revoked).toEqual([third.handle]);
    await expectNotices(w, third.handle, { reason: 'user_revoked', scope: 'session', sub: userId });
    await expectNoNotices(w, mine.handle);
  });

  it('admin: end one session, end many', async () => {
    const userId = await newUser(w);
    const one = await joinedSession(w, userId);
    expect((await w.node.admin('DELETE', `/sessions/${one.handle}`)).status).toBe(204);
    await expectNotices(w, one.handle, { reason: 'admin_revoked', scope: 'session', sub: userId });

    const other = await newUser(w);
    const many = [await joinedSession(w, userId), await joinedSession(w, userId), await joinedSession(w, other)];
    const revoked = await w.node.admin<{ revoked: string[] }>('POST', '/sessions/revoke', { handles: many.map((s) => s.handle) });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked.sort()).toEqual(many.map((s) => s.handle).sort());
    for (const [i, s] of many.entries()) await expectNotices(w, s.handle, { reason: 'admin_revoked', scope: 'session', sub: i < 2 ? userId : other });
  });

  it('admin: end all of a user\'s sessions (one notice per app that joined any of them)', async () => {
    const userId = await newUser(w);
    const a = await joinedSession(w, userId, 'a');
    // Session b is joined by the back-channel app only.
    const b = await startSession(w.node.url, w.gateway, userId, 'b');
    await joinSession(w.node.url, w.bcl, b.token);
    const revoked = await w.node.admin<{ revoked: string[] }>('DELETE', `/users/${userId}/sessions`);
    expect(revoked.body.revoked.sort()).toEqual([a.handle, b.handle].sort());
    const notices = await expectNotices(w, a.handle, { reason: 'admin_revoked', scope: 'user', sub: userId });
    expect(notices.find((d) => d.client_id === w.bcl.clientId)!.sessions).toBe(2);
    expect(notices.find((d) => d.client_id === w.hook.clientId)!.sessions).toBe(1);
    const ofB = await expectNotices(w, b.handle, { reason: 'admin_revoked', scope: 'user', sub: userId, apps: ['bcl'] });
    // The same single notice covers both sessions.
    expect(ofB[0]!.id).toBe(notices.find((d) => d.client_id === w.bcl.clientId)!.id);
  });

  it('admin: end a user\'s sessions in one app only (?app=)', async () => {
    const userId = await newUser(w);
    const [a, b] = [await joinedSession(w, userId), await joinedSession(w, userId)];
    const revoked = await w.node.admin<{ revoked: string[] }>('DELETE', `/users/${userId}/sessions?app=${w.hook.clientId}`);
    expect(revoked.body.revoked.sort()).toEqual([a.handle, b.handle].sort());
    for (const s of [a, b]) await expectNotices(w, s.handle, { reason: 'admin_revoked', scope: 'session', sub: userId, apps: ['hook'], ended: false });
  });

  it('admin: end all but one (?except=)', async () => {
    const userId = await newUser(w);
    const [keep, a, b] = [await joinedSession(w, userId), await joinedSession(w, userId), await joinedSession(w, userId)];
    const revoked = await w.node.admin<{ revoked: string[] }>('DELETE', `/users/${userId}/sessions?except=${keep.handle}`);
    expect(revoked.body.revoked.sort()).toEqual([a.handle, b.handle].sort());
    for (const s of [a, b]) await expectNotices(w, s.handle, { reason: 'admin_revoked', scope: 'session', sub: userId });
    await expectNoNotices(w, keep.handle);
  });

  it('user disabled', async () => {
    const userId = await newUser(w);
    const [a, b] = [await joinedSession(w, userId), await joinedSession(w, userId)];
    const patched = await w.node.admin<{ revoked: string[] }>('PATCH', `/users/${userId}`, { disabled: true });
    expect(patched.status).toBe(200);
    expect(patched.body.revoked.sort()).toEqual([a.handle, b.handle].sort());
    const notices = await expectNotices(w, a.handle, { reason: 'user_disabled', scope: 'user', sub: userId, sessions: 2 });
    expect((await deliveriesOf(w, b.handle)).deliveries.map((d) => d.id).sort()).toEqual(notices.map((d) => d.id).sort());
  });

  it('user deleted', async () => {
    const userId = await newUser(w);
    const [a, b] = [await joinedSession(w, userId), await joinedSession(w, userId)];
    const deleted = await w.node.admin<{ revoked: string[] }>('DELETE', `/users/${userId}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.revoked.sort()).toEqual([a.handle, b.handle].sort());
    await expectNotices(w, a.handle, { reason: 'user_deleted', scope: 'user', sub: userId, sessions: 2 });
  });

  it('password change: by the user (other sessions), by an admin (all sessions)', async () => {
    const userId = await newUser(w);
    const [mine, other] = [await joinedSession(w, userId), await joinedSession(w, userId)];
    const changed = await fetch(`${w.node.url}/v1/password`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mine.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ current_password: PASSWORD, new_password: 'another long password' }),
    });
    expect(changed.status).toBe(200);
    await expectNotices(w, other.handle, { reason: 'password_changed', scope: 'session', sub: userId });
    await expectNoNotices(w, mine.handle);

    const again = await joinedSession(w, userId);
    const patched = await w.node.admin<{ revoked: string[] }>('PATCH', `/users/${userId}`, { password: 'a third long password' });
    expect(patched.body.revoked.sort()).toEqual([mine.handle, again.handle].sort());
    await expectNotices(w, mine.handle, { reason: 'password_changed', scope: 'user', sub: userId, sessions: 2 });
  });

  it('refresh-token theft (a spent refresh token used again)', async () => {
    const userId = await newUser(w);
    const s = await joinedSession(w, userId);
    const token = (body: Record<string, string>) => fetch(`${w.node.url}/v1/token`, {
      method: 'POST',
      headers: { authorization: w.bcl.basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(body).toString(),
    });
    const first = (await (await token({ grant_type: 'session_token', session_token: s.token })).json()) as { refresh_token: string };
    const rotated = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token });
    expect(rotated.status).toBe(200);
    await expectNoNotices(w, s.handle);
    const reused = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token });
    expect(((await reused.json()) as { error: string }).error).toBe('REFRESH_TOKEN_REUSED');
    expect(reused.status).toBe(401);
    await expectNotices(w, s.handle, { reason: 'token_theft', scope: 'session', sub: userId });
  });
});

// Idle 3 s, absolute 15 s: far enough apart that a loaded machine (a late sweep, a slow
// request between two uses) cannot make one look like the other.
const IDLE_S = 3;
const ABSOLUTE_S = 15;

describe('expiry tells every app too (sweeper every second)', () => {
  let w: World;
  beforeAll(async () => {
    w = await createWorld({
      session: { idleTimeoutSeconds: IDLE_S, absoluteLifetimeSeconds: ABSOLUTE_S, touchIntervalSeconds: 0, cacheSeconds: 0 },
      sweeper: { intervalSeconds: 1 },
    });
  });
  afterAll(() => destroyWorld(w));

  it('idle expiry', async () => {
    const userId = await newUser(w);
    const s = await joinedSession(w, userId);
    const notices = await expectNotices(w, s.handle, { reason: 'expired', scope: 'session', sub: userId }, { alreadyPlanned: false });
    const status = await deliveriesOf(w, s.handle);
    // It ended by idleness, not at its absolute deadline.
    const { body: { session } } = await w.node.admin<{ session: { created_at: string; ended_at: string } }>('GET', `/sessions/${s.handle}`);
    expect(Date.parse(session.ended_at) - Date.parse(session.created_at)).toBeLessThan(ABSOLUTE_S * 1000);
    expect(notices).toHaveLength(status.deliveries.length);
  });

  it('absolute expiry of a session kept in use', async () => {
    const userId = await newUser(w);
    const s = await joinedSession(w, userId);
    // Used every 300 ms, the session never idles out; it ends at its absolute deadline.
    let used = 0;
    await waitFor('the end of a session in use', async () => {
      const response = await fetch(`${w.node.url}/v1/whoami`, { headers: { 'x-session-token': s.token } });
      await response.arrayBuffer();
      if (response.status === 200) used += 1;
      return response.status === 401 ? true : undefined;
    }, { intervalMs: 300, timeoutMs: (ABSOLUTE_S + 30) * 1000 });
    expect(used).toBeGreaterThan(8);
    await expectNotices(w, s.handle, { reason: 'expired', scope: 'session', sub: userId }, { alreadyPlanned: false });
    const { body: { session } } = await w.node.admin<{ session: { created_at: string; ended_at: string } }>('GET', `/sessions/${s.handle}`);
    expect(Date.parse(session.ended_at) - Date.parse(session.created_at)).toBeGreaterThanOrEqual(ABSOLUTE_S * 1000);
  }, (ABSOLUTE_S + 45) * 1000);
});
