// Back-channel logout to OIDC clients through the durable outbox, for every kind of session
// end: two clients signed in with openid-client to the same Tessera session, each with a
// receiver that validates logout tokens as a relying party must (§2.6). One client requires
// sid (backchannel_logout_session_required): a user-wide end then reaches it once per session.
import * as client from 'openid-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Browser, formFields, signInThrough, startClockedNode, startOidcNode, startReceiver, waitFor, type ClockedNode, type OidcNode, type Receiver } from './oidc-support.js';

const PASSWORD = 'correct horse battery';

interface Rp {
  id: { clientId: string; clientSecret: string };
  config: client.Configuration;
  receiver: Receiver;
  callback: string;
}

async function setUp(node: OidcNode, name: string, sessionRequired: boolean, now?: () => number): Promise<Rp> {
  let clientId = '';
  // The receiver checks the RS256 signature the client registered for its ID tokens, and
  // sid when the client requires it.
  const receiver = await startReceiver(node.url, () => clientId, ['RS256'], 0, { sessionRequired, ...(now ? { now } : {}) });
  const callback = `https://${name}.example/cb`;
  const id = await node.createClient({ name, trusted: true, redirect_uris: [callback], backchannel_logout_uri: receiver.uri, backchannel_logout_session_required: sessionRequired });
  clientId = id.clientId;
  const config = await client.discovery(new URL(node.url), id.clientId, undefined, client.ClientSecretBasic(id.clientSecret), { execute: [client.allowInsecureRequests] });
  return { id, config, receiver, callback };
}

/** Signs `username` in to both clients in a fresh browser; returns the sid and the tokens. */
async function signInBoth(node: OidcNode, rps: Rp[], username: string): Promise<{ sid: string; browser: Browser; tokens: Array<{ refresh: string; access: string; idToken: string }> }> {
  const browser = new Browser();
  let sid = '';
  const tokens: Array<{ refresh: string; access: string; idToken: string }> = [];
  for (const rp of rps) {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(rp.config, { redirect_uri: rp.callback, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'st' });
    const { hop } = await signInThrough(browser, url.toString(), node.url, username, PASSWORD);
    const result = await client.authorizationCodeGrant(rp.config, new URL(hop.location!), { pkceCodeVerifier: verifier, expectedState: 'st' });
    const claims = result.claims()!;
    if (sid && claims.sid !== sid) throw new Error('the second client did not join the same session');
    sid = claims.sid as string;
    tokens.push({ refresh: result.refresh_token!, access: result.access_token, idToken: result.id_token! });
  }
  return { sid, browser, tokens };
}

const heard = (rp: Rp, predicate: (c: Receiver['received'][number]['claims']) => boolean) => rp.receiver.received.filter((r) => predicate(r.claims));

describe('OIDC back-channel logout through the outbox', () => {
  let node: OidcNode;
  let strict: Rp;
  let plain: Rp;

  beforeAll(async () => {
    node = await startOidcNode();
    strict = await setUp(node, 'strict-rp', true);
    plain = await setUp(node, 'plain-rp', false);
  });
  afterAll(async () => {
    await strict?.receiver.close();
    await plain?.receiver.close();
    await node?.close();
  });

  const ends: Array<[string, (ctx: { userId: string; sid: string; username: string; tokens: Array<{ refresh: string; access: string; idToken: string }>; browser: Browser }) => Promise<void>]> = [
    ['an admin ends the session', async ({ sid }) => void expect((await node.admin('DELETE', `/sessions/${sid}`)).status).toBe(204)],
    ['an admin ends it among others (bulk revoke)', async ({ sid }) => void expect((await node.admin('POST', '/sessions/revoke', { handles: [sid] })).status).toBe(200)],
    ['the user ends it from another device (self-service)', async ({ sid, username }) => {
      const other = new Browser();
      const form = await other.request('GET', `${node.url}/login`);
      await other.request('POST', `${node.url}/login`, { ...formFields(form.body), username, password: PASSWORD });
      const token = other.cookie(node.url, 'tessera_session')!;
      expect((await fetch(`${node.url}/v1/sessions/${sid}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
    }],
    ['the other client logs the user out (RP-initiated, id_token_hint)', async ({ tokens, browser }) => {
      const url = client.buildEndSessionUrl(plain.config, { id_token_hint: tokens[1]!.idToken });
      expect((await browser.request('GET', url.toString())).status).toBe(200);
    }],
    ['a refresh token is used twice (theft detection)', async ({ tokens }) => {
      await client.refreshTokenGrant(strict.config, tokens[0]!.refresh);
      await expect(client.refreshTokenGrant(strict.config, tokens[0]!.refresh)).rejects.toMatchObject({ error: 'invalid_grant' });
    }],
  ];

  for (const [what, end] of ends) {
    it(`reaches both clients with the session's sid when ${what}`, async () => {
      const userId = await node.createUser(`u-${Math.random().toString(36).slice(2, 10)}`, PASSWORD);
      const username = (await node.admin<{ user: { username: string } }>('GET', `/users/${userId}`)).body.user.username;
      const { sid, tokens, browser } = await signInBoth(node, [strict, plain], username);
      await end({ userId, sid, username, tokens, browser });
      await waitFor(() => heard(strict, (c) => c.sid === sid).length === 1 && heard(plain, (c) => c.sid === sid).length === 1, `logout tokens for ${sid}`);
      for (const rp of [strict, plain]) expect(heard(rp, (c) => c.sid === sid)[0]!.claims.sub).toBe(userId);
      // The refresh tokens of both clients are dead.
      await expect(client.refreshTokenGrant(plain.config, tokens[1]!.refresh)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect(strict.receiver.rejected).toEqual([]);
      expect(plain.receiver.rejected).toEqual([]);
    });
  }

  for (const [what, endAll] of [
    ['an admin signs the user out everywhere', async (userId: string) => void expect((await node.admin('DELETE', `/users/${userId}/sessions`)).status).toBe(200)],
    ['the password changes', async (userId: string) => void expect((await node.admin('PATCH', `/users/${userId}`, { password: 'another long password' })).status).toBe(200)],
    ['the user is disabled', async (userId: string) => void expect((await node.admin('PATCH', `/users/${userId}`, { disabled: true })).status).toBe(200)],
    ['the user is deleted', async (userId: string) => void expect((await node.admin('DELETE', `/users/${userId}`)).status).toBe(200)],
  ] as const) {
    it(`on a user-wide end (${what}) sends one token per session with sid to the client that requires sid, and one by sub to the other`, async () => {
      const userId = await node.createUser(`w-${Math.random().toString(36).slice(2, 10)}`, PASSWORD);
      const username = (await node.admin<{ user: { username: string } }>('GET', `/users/${userId}`)).body.user.username;
      const one = await signInBoth(node, [strict, plain], username);
      const two = await signInBoth(node, [strict, plain], username);
      expect(one.sid).not.toBe(two.sid);
      await endAll(userId);
      await waitFor(() => heard(strict, (c) => c.sub === userId).length === 2 && heard(plain, (c) => c.sub === userId).length === 1, `user-wide logout tokens for ${userId}`);
      expect(heard(strict, (c) => c.sub === userId).map((c) => c.claims.sid).sort()).toEqual([one.sid, two.sid].sort());
      // The other client gets the user-wide form: sub, no sid (it did not ask for sid).
      expect(heard(plain, (c) => c.sub === userId)[0]!.claims.sid).toBeUndefined();
      for (const { tokens } of [one, two]) await expect(client.refreshTokenGrant(strict.config, tokens[0]!.refresh)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect(strict.receiver.rejected).toEqual([]);
      expect(plain.receiver.rejected).toEqual([]);
    });
  }

  it('keeps retrying a client that is down, and delivers once it is back (durable, not fire-and-forget)', async () => {
    const userId = await node.createUser(`d-${Math.random().toString(36).slice(2, 10)}`, PASSWORD);
    const username = (await node.admin<{ user: { username: string } }>('GET', `/users/${userId}`)).body.user.username;
    // A third client whose receiver is not listening yet.
    let clientId = '';
    const late = await startReceiver(node.url, () => clientId, ['RS256']);
    const uri = late.uri;
    await late.close();
    const id = await node.createClient({ name: 'Late RP', trusted: true, redirect_uris: ['https://late.example/cb'], backchannel_logout_uri: uri });
    clientId = id.clientId;
    const config = await client.discovery(new URL(node.url), id.clientId, undefined, client.ClientSecretBasic(id.clientSecret), { execute: [client.allowInsecureRequests] });
    const { sid } = await signInBoth(node, [{ id, config, receiver: late, callback: 'https://late.example/cb' }], username);
    expect((await node.admin('DELETE', `/sessions/${sid}`)).status).toBe(204);
    await waitFor(async () => {
      const { body } = await node.admin<{ deliveries: Array<{ client_id: string; attempts: number; status: string }> }>('GET', `/sessions/${sid}/deliveries`);
      return body.deliveries.some((d) => d.client_id === clientId && d.attempts >= 1 && d.status === 'pending');
    }, 'a failed first attempt');
    // The receiver comes back on the same port; the admin retries at once rather than waiting out the backoff.
    const port = Number(new URL(uri).port);
    const back = await startReceiver(node.url, () => clientId, ['RS256'], port);
    const deliveryOf = async () => (await node.admin<{ deliveries: Array<{ id: number; client_id: string; status: string }> }>('GET', `/sessions/${sid}/deliveries`)).body.deliveries.find((d) => d.client_id === clientId)!;
    const delivery = await deliveryOf();
    // A stalled machine can let the worker's own retry (due 0.5-1 s after the failure) reach
    // the receiver first; then there is nothing left to retry (404) and that is fine too.
    const retried = await node.admin('POST', `/deliveries/${delivery.id}/retry`);
    if (retried.status !== 200) {
      expect(retried.status).toBe(404);
      expect((await deliveryOf()).status).toBe('delivered');
    }
    await waitFor(() => back.received.some((r) => r.claims.sid === sid), 'the retried delivery');
    await back.close();
  });
});


describe('OIDC back-channel logout on expiry, to two clients', () => {
  // A listening Tessera whose clock the test moves: idle 10 minutes, absolute 1 hour, last
  // seen written at every use. The relying parties' clock is the same one (their logout
  // token checks of iat and exp run against it).
  const IDLE_MS = 600_000;
  const LIFETIME_MS = 3_600_000;
  let node: ClockedNode;
  let strict: Rp;
  let plain: Rp;

  beforeEach(async () => {
    node = await startClockedNode({ session: { idleTimeoutSeconds: IDLE_MS / 1000, absoluteLifetimeSeconds: LIFETIME_MS / 1000, touchIntervalSeconds: 0, cacheSeconds: 0 } });
    const now = () => node.clock.now();
    strict = await setUp(node, 'strict-rp', true, now);
    plain = await setUp(node, 'plain-rp', false, now);
  });
  afterEach(async () => {
    await strict?.receiver.close();
    await plain?.receiver.close();
    await node?.close();
  });

  /** Both clients heard of `sid`, each token valid per §2.6 (the receivers), with sid and the user's sub. */
  async function expectBothTold(sid: string, userId: string, tokens: Array<{ refresh: string }>): Promise<void> {
    await waitFor(() => heard(strict, (c) => c.sid === sid).length === 1 && heard(plain, (c) => c.sid === sid).length === 1, `logout tokens for ${sid} at both clients`, 30_000);
    for (const rp of [strict, plain]) {
      expect(heard(rp, (c) => c.sid === sid)[0]!.claims).toMatchObject({ iss: node.url, aud: rp.id.clientId, sub: userId, sid });
      expect(rp.receiver.rejected).toEqual([]);
    }
    // And their grants are dead: a refresh of either client is refused.
    await expect(client.refreshTokenGrant(strict.config, tokens[0]!.refresh)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(client.refreshTokenGrant(plain.config, tokens[1]!.refresh)).rejects.toMatchObject({ error: 'invalid_grant' });
  }

  it('idle expiry: the sweeper ends the unused session and both clients are told, with sid', async () => {
    const userId = await node.createUser('ida', PASSWORD);
    const { sid, tokens, browser } = await signInBoth(node, [strict, plain], 'ida');
    const cookie = browser.cookie(node.url, 'tessera_session')!;
    // One millisecond short of the idle deadline nothing happens.
    node.clock.advance(IDLE_MS - 1);
    expect(await node.authority.sessions.sweepExpired()).toBe(0);
    expect(strict.receiver.received.length + plain.receiver.received.length).toBe(0);
    node.clock.advance(1);
    // What the sweeper runs every interval.
    expect(await node.authority.sessions.sweepExpired()).toBe(1);
    await expectBothTold(sid, userId, tokens);
    expect((await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${cookie}` } })).status).toBe(401);
    expect(await node.authority.deps.store.findSessionByHandle(sid)).toMatchObject({ endReason: 'expired' });
  });

  it('absolute expiry: a session in constant use ends at its lifetime (found by its next use), and both clients are told, with sid', async () => {
    const userId = await node.createUser('abe', PASSWORD);
    const { sid, tokens, browser } = await signInBoth(node, [strict, plain], 'abe');
    const cookie = browser.cookie(node.url, 'tessera_session')!;
    const whoami = async () => (await fetch(`${node.url}/v1/whoami`, { headers: { authorization: `Bearer ${cookie}` } })).status;
    // Used every 5 minutes, it never idles out; the idle sweeper finds nothing.
    const started = node.clock.now();
    while (node.clock.now() + IDLE_MS / 2 < started + LIFETIME_MS) {
      node.clock.advance(IDLE_MS / 2);
      expect(await whoami()).toBe(200);
      expect(await node.authority.sessions.sweepExpired()).toBe(0);
    }
    expect(strict.receiver.received.length + plain.receiver.received.length).toBe(0);
    // Past its absolute lifetime the next use finds it ended (reason expired).
    node.clock.set(started + LIFETIME_MS);
    expect(await whoami()).toBe(401);
    await expectBothTold(sid, userId, tokens);
    // Recorded as an expiry at the lifetime, not as a logout.
    expect(await node.authority.deps.store.findSessionByHandle(sid)).toMatchObject({ endReason: 'expired', endedAt: started + LIFETIME_MS });
  });
});
