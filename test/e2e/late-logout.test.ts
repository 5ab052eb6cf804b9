// A late logout must never end a newer session (CONVENTIONS 14; docs/decisions/0006).
// A real Tessera node (SQLite, its outbox worker over real HTTP) and an app whose
// back-channel endpoint is the SDK's receiver on node:http. The app keeps local sessions,
// each remembering the Tessera session it came from and when that began. An administrator
// ends all of the user's sessions while the app answers 400; the user signs in again; the
// app recovers and Tessera's retry arrives — signed afresh, so `iat` is after the new
// sign-in. The retry must end the old local session and leave the new one alone.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBackchannelReceiver, type BackchannelLogout } from '@tessera/sdk/backchannel';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, joinSession, registerApp, startSession, startTesseraNode, waitFor, type DeliveryJson, type RegisteredApp, type TesseraNode } from './support/backchannel.js';

interface LocalSession {
  id: string;
  userId: string;
  tesseraSid: string;
  startedAt: number;
  ended: boolean;
}

/** An app with local sessions and a back-channel endpoint that can be told to fail. */
async function startApp(issuer: string) {
  const sessions = new Map<string, LocalSession>();
  const logouts: BackchannelLogout[] = [];
  const tokens: string[] = [];
  let failing = 0;
  let clientId = '';
  let receiver: ReturnType<typeof createBackchannelReceiver> | null = null;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      tokens.push(new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token') ?? '');
      // The app's database is down: it cannot end anything, so it answers 400 (as the
      // SDK does when onLogout throws) and Tessera retries.
      if (failing > 0) {
        failing--;
        return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
      }
      // The body is already read: hand it to the SDK's framework-neutral entry point.
      void receiver!.receive({ body: Buffer.concat(chunks), contentType: req.headers['content-type'] ?? null }).then((r) => res.writeHead(r.status, r.headers).end(r.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`,
    sessions,
    logouts,
    tokens,
    failNext(n: number) {
      failing = n;
    },
    get failing() {
      return failing;
    },
    attach(id: string) {
      clientId = id;
      receiver = createBackchannelReceiver({
        issuer,
        clientId,
        onLogout(logout) {
          logouts.push(logout);
          for (const local of sessions.values()) {
            if (local.ended) continue;
            if (logout.sid === undefined && local.userId !== logout.sub) continue;
            if (logout.covers({ sid: local.tesseraSid, startedAt: local.startedAt })) local.ended = true;
          }
        },
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('a retried user-wide logout that arrives after the user signed in again', () => {
  let node: TesseraNode;
  let app: Awaited<ReturnType<typeof startApp>>;
  let gateway: RegisteredApp;
  let rp: RegisteredApp;

  beforeAll(async () => {
    node = await startTesseraNode({ outbox: { backoffBaseMs: 50, backoffMaxMs: 200, pollIntervalMs: 20, timeoutMs: 5_000 } });
    app = await startApp(node.url);
    gateway = await registerApp(node.url, { name: 'gateway', trusted: true });
    rp = await registerApp(node.url, { name: 'rp', trusted: false, backchannel_logout_uri: app.url });
    app.attach(rp.clientId);
  });
  afterAll(async () => {
    await app?.close();
    await node?.close();
  });

  /** The user signs in at the gateway and the app joins; the app starts a local session. */
  async function signIn(userId: string, id: string): Promise<LocalSession> {
    const session = await startSession(node.url, gateway, userId);
    await joinSession(node.url, rp, session.token);
    const me = (await (await fetch(`${node.url}/v1/whoami`, { headers: { 'x-session-token': session.token } })).json()) as { session: { handle: string; created_at: string } };
    const local = { id, userId, tesseraSid: me.session.handle, startedAt: Date.parse(me.session.created_at), ended: false };
    app.sessions.set(id, local);
    return local;
  }

  it('ends the sessions the revocation ended and not the one started after it, on the SDK receiver', async () => {
    const userId = await createUser(node.url, `late${Math.random().toString(36).slice(2, 8)}`);
    const old1 = await signIn(userId, 'old-1');
    const old2 = await signIn(userId, 'old-2');
    const otherUser = await createUser(node.url, `other${Math.random().toString(36).slice(2, 8)}`);
    const bystander = await signIn(otherUser, 'bystander');

    app.failNext(Number.POSITIVE_INFINITY);
    const ended = await node.admin<{ revoked: string[] }>('DELETE', `/users/${userId}/sessions`);
    expect(ended.status).toBe(200);
    expect(ended.body.revoked.sort()).toEqual([old1.tesseraSid, old2.tesseraSid].sort());
    await waitFor('two failed attempts', () => (app.tokens.length >= 2 ? true : undefined));

    // The user signs in again while the logout is still being retried. Tessera's session
    // `created_at` has millisecond precision; wait until it is past the revocation's.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const fresh = await signIn(userId, 'fresh');
    expect(fresh.ended).toBe(false);
    // The app recovers over a second later, so the delivering attempt's iat (whole seconds)
    // is after the new sign-in: a receiver reading iat as the time of the logout would end it.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    app.failNext(0);

    await waitFor('the logout delivered', async () => {
      const { body } = await node.admin<{ deliveries: DeliveryJson[] }>('GET', `/sessions/${old1.tesseraSid}/deliveries`);
      return body.deliveries.find((d) => d.client_id === rp.clientId && d.status === 'delivered');
    });
    expect(app.tokens.length).toBeGreaterThanOrEqual(3);
    expect(app.logouts).toHaveLength(1);
    const [logout] = app.logouts;
    expect(logout!.sid).toBeUndefined();
    expect(logout!.sub).toBe(userId);
    expect([...logout!.sids!].sort()).toEqual([old1.tesseraSid, old2.tesseraSid].sort());

    // What the retries carried: a fresh iat and jti each, one revoked_at — that of the
    // revocation, before the new session began.
    const claims = app.tokens.map((t) => decodeJwt(t));
    expect(new Set(claims.map((c) => c.jti)).size).toBe(claims.length);
    expect(new Set(claims.map((c) => c.revoked_at)).size).toBe(1);
    const revokedAt = claims[0]!.revoked_at as number;
    expect(revokedAt).toBeLessThan(fresh.startedAt);
    expect(claims.at(-1)!.iat! * 1000).toBeGreaterThan(fresh.startedAt);

    expect(old1.ended).toBe(true);
    expect(old2.ended).toBe(true);
    expect(fresh.ended).toBe(false);
    expect(bystander.ended).toBe(false);

    // Without the list (a receiver that only knows start times) the outcome is the same.
    expect(logout!.covers({ startedAt: old2.startedAt })).toBe(true);
    expect(logout!.covers({ startedAt: fresh.startedAt })).toBe(false);
  });
});
