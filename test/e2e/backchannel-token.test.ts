// What a relying party receives, checked the way a relying party checks it.
//
// Logout tokens are validated per OIDC Back-Channel Logout 1.0 §2.6 with jose's jwtVerify
// against the JWKS fetched over HTTP — what openid-client v6 builds on; openid-client itself
// offers no logout-token validation and needs an OIDC discovery document, which Tessera
// does not publish yet — and their signatures are checked a second time with node:crypto
// alone, which shares no code with jose (Tessera signs with jose). The webhook connector is
// checked with the `standardwebhooks` library's own Webhook#verify.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import {
  BACKCHANNEL_EVENT,
  createReceiver,
  createUser,
  fetchJwks,
  joinSession,
  logoutTokenOf,
  registerApp,
  startSession,
  startTesseraNode,
  verifyLogoutToken,
  verifySignatureWithNodeCrypto,
  waitFor,
  type Receiver,
  type RegisteredApp,
  type SessionDeliveries,
  type TesseraNode,
} from './support/backchannel.js';

let node: TesseraNode;
let gateway: RegisteredApp;
let rpApp: RegisteredApp;
let hookApp: RegisteredApp;
let rp: Receiver;
let hook: Receiver;
let jwks: JSONWebKeySet;

beforeAll(async () => {
  node = await startTesseraNode({ outbox: { backoffBaseMs: 50, backoffMaxMs: 200, pollIntervalMs: 20 } });
  // Each receiver fails the first request of every logout, so each notice is sent twice.
  rp = await createReceiver();
  hook = await createReceiver();
  gateway = await registerApp(node.url, { name: 'gateway', trusted: true });
  rpApp = await registerApp(node.url, { name: 'relying party', trusted: false, backchannel_logout_uri: rp.url });
  hookApp = await registerApp(node.url, { name: 'php forum', trusted: false, connectors: { webhook: { url: hook.url } } });
  jwks = await fetchJwks(node.url);
});

afterAll(async () => {
  await Promise.allSettled([rp?.close(), hook?.close()]);
  await node?.close();
});

/** Makes each receiver answer 500 to the first request after this call, 204 after. */
function failFirstAttempt(...receivers: Receiver[]): void {
  for (const r of receivers) {
    const first = r.received.length;
    r.answer = (_request, index) => ({ status: index === first ? 500 : 204 });
  }
}

async function waitDelivered(handle: string, count: number): Promise<SessionDeliveries> {
  let last: SessionDeliveries | undefined;
  return waitFor(`${count} delivered deliveries of ${handle}`, async () => {
    last = (await node.admin<SessionDeliveries>('GET', `/sessions/${handle}/deliveries`)).body;
    return last.deliveries.length === count && last.deliveries.every((d) => d.status === 'delivered') ? last : undefined;
  }, { last: () => last });
}

describe('back-channel logout token, as a relying party validates it (OIDC BCL 1.0 §2.5, §2.6)', () => {
  let userId: string;
  let handle: string;
  let accessSid: string;
  let accessSub: string;
  let requests: Receiver['received'];

  beforeAll(async () => {
    userId = await createUser(node.url, 'tokenuser');
    const session = await startSession(node.url, gateway, userId);
    handle = session.handle;
    // The relying party signs the user in with an access token: the logout token must name
    // the same sid and sub (§2.6 steps 9 and 10 compare them with what the RP holds).
    const exchanged = await fetch(`${node.url}/v1/token`, {
      method: 'POST',
      headers: { authorization: rpApp.basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'session_token', session_token: session.token }).toString(),
    });
    expect(exchanged.status).toBe(200);
    const pair = (await exchanged.json()) as { access_token: string; sid: string };
    const access = await jwtVerify(pair.access_token, createLocalJWKSet(jwks), { issuer: node.url, audience: rpApp.clientId });
    accessSid = access.payload.sid as string;
    accessSub = access.payload.sub!;
    await joinSession(node.url, hookApp, session.token);

    const before = rp.received.length;
    failFirstAttempt(rp, hook);
    const ended = await node.admin('DELETE', `/sessions/${handle}`);
    expect(ended.status).toBe(204);
    await waitDelivered(handle, 2);
    requests = rp.received.slice(before);
  });

  it('is POSTed as application/x-www-form-urlencoded with only logout_token, once per attempt', () => {
    expect(requests).toHaveLength(2);
    for (const request of requests) {
      expect(request.method).toBe('POST');
      expect(request.path).toBe(new URL(rp.url).pathname);
      expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
      const form = new URLSearchParams(request.body);
      expect([...form.keys()]).toEqual(['logout_token']);
      expect(form.get('logout_token')!.split('.')).toHaveLength(3);
    }
  });

  it('passes every relying-party check of §2.6, on every attempt', async () => {
    for (const request of requests) {
      const token = logoutTokenOf(request);
      const { header, claims } = await verifyLogoutToken(token, jwks, { issuer: node.url, audience: rpApp.clientId });
      // Signed with a published key, never `none`; explicitly typed.
      expect(header.typ).toBe('logout+jwt');
      expect(['EdDSA', 'ES256']).toContain(header.alg);
      expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
      expect(verifySignatureWithNodeCrypto(token, jwks)).toBe(true);
      // iss, aud, iat, exp (at most 2 minutes), jti.
      expect(claims.iss).toBe(node.url);
      expect(claims.aud === rpApp.clientId || (Array.isArray(claims.aud) && claims.aud.length === 1 && claims.aud[0] === rpApp.clientId)).toBe(true);
      expect(Number.isInteger(claims.iat)).toBe(true);
      expect(Number.isInteger(claims.exp)).toBe(true);
      expect(claims.exp! - claims.iat!).toBeGreaterThan(0);
      expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(120);
      expect(Math.abs(claims.iat! - request.at / 1000)).toBeLessThan(10);
      expect(typeof claims.jti).toBe('string');
      expect(claims.jti!.length).toBeGreaterThanOrEqual(16);
      // The event, as a JSON object.
      expect(claims.events).toEqual({ [BACKCHANNEL_EVENT]: {} });
      // Who: the same sub and sid as the tokens the app holds for this session.
      expect(claims.sub).toBe(userId);
      expect(claims.sub).toBe(accessSub);
      expect(claims.sid).toBe(handle);
      expect(claims.sid).toBe(accessSid);
      // A logout token is not an ID token: no nonce.
      expect(claims).not.toHaveProperty('nonce');
    }
  });

  it('carries a fresh jti on every attempt (a receiver rejecting replays accepts the retry)', () => {
    const jtis = requests.map((r) => decodeJwt(logoutTokenOf(r)).jti);
    expect(new Set(jtis).size).toBe(requests.length);
  });

  it('fails the same checks when something is wrong (the checks are real)', async () => {
    const token = logoutTokenOf(requests[0]!);
    // Another app's audience, another issuer.
    await expect(verifyLogoutToken(token, jwks, { issuer: node.url, audience: hookApp.clientId })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
    await expect(verifyLogoutToken(token, jwks, { issuer: 'http://127.0.0.1:1', audience: rpApp.clientId })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' });
    // A changed claim breaks the signature, for both verifiers.
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${s}`;
    await expect(verifyLogoutToken(forged, jwks, { issuer: node.url, audience: rpApp.clientId })).rejects.toBeInstanceOf(joseErrors.JWSSignatureVerificationFailed);
    expect(verifySignatureWithNodeCrypto(forged, jwks)).toBe(false);
    // `alg: none` is refused.
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'logout+jwt' })).toString('base64url')}.${p}.`;
    await expect(verifyLogoutToken(unsigned, jwks, { issuer: node.url, audience: rpApp.clientId })).rejects.toBeInstanceOf(joseErrors.JOSEAlgNotAllowed);
    // Past its two minutes, a relying party rejects it.
    await expect(jwtVerify(token, createLocalJWKSet(jwks), { currentDate: new Date((claims.exp as number) * 1000 + 60_000) })).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
  });

  it('an access token of the same issuer is not accepted as a logout token (typ, events)', async () => {
    const session = await startSession(node.url, gateway, userId);
    const exchanged = await fetch(`${node.url}/v1/token`, {
      method: 'POST',
      headers: { authorization: rpApp.basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'session_token', session_token: session.token }).toString(),
    });
    const { access_token: accessToken } = (await exchanged.json()) as { access_token: string };
    expect(decodeProtectedHeader(accessToken).typ).not.toBe('logout+jwt');
    await expect(verifyLogoutToken(accessToken, jwks, { issuer: node.url, audience: rpApp.clientId })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' });
    await node.admin('DELETE', `/sessions/${session.handle}`);
    await waitDelivered(session.handle, 1);
  });
});

describe('user-wide end', () => {
  it('names the user and no session: sub present, sid absent, one notice per app for all sessions', async () => {
    const userId = await createUser(node.url, 'widthuser');
    const sessions = [await startSession(node.url, gateway, userId, 'laptop'), await startSession(node.url, gateway, userId, 'phone')];
    for (const s of sessions) await joinSession(node.url, rpApp, s.token);
    const before = rp.received.length;
    failFirstAttempt(rp);
    const ended = await node.admin<{ revoked: string[] }>('DELETE', `/users/${userId}/sessions`);
    expect(ended.status).toBe(200);
    expect(ended.body.revoked.sort()).toEqual(sessions.map((s) => s.handle).sort());

    const status = await waitDelivered(sessions[0]!.handle, 1);
    expect(status.deliveries[0]).toMatchObject({ client_id: rpApp.clientId, scope: 'user', sid: null, sub: userId, sessions: 2, attempts: 2, reason: 'admin_revoked' });
    // The same notice covers the other session.
    const other = await waitDelivered(sessions[1]!.handle, 1);
    expect(other.deliveries[0]!.id).toBe(status.deliveries[0]!.id);

    const attempts = rp.received.slice(before);
    expect(attempts).toHaveLength(2);
    const jtis = new Set<string>();
    for (const request of attempts) {
      const token = logoutTokenOf(request);
      const { claims } = await verifyLogoutToken(token, jwks, { issuer: node.url, audience: rpApp.clientId });
      expect(verifySignatureWithNodeCrypto(token, jwks)).toBe(true);
      expect(claims.sub).toBe(userId);
      expect(claims).not.toHaveProperty('sid');
      expect(claims).not.toHaveProperty('nonce');
      expect(claims.events).toEqual({ [BACKCHANNEL_EVENT]: {} });
      jtis.add(claims.jti!);
    }
    expect(jtis.size).toBe(2);
  });
});

describe('webhook connector (Standard Webhooks)', () => {
  it('signs every attempt so that standardwebhooks verifies it, with one webhook-id across retries', async () => {
    expect(hookApp.webhookSecret).toMatch(/^whsec_/);
    const userId = await createUser(node.url, 'hookuser');
    const session = await startSession(node.url, gateway, userId);
    await joinSession(node.url, hookApp, session.token);
    const before = hook.received.length;
    failFirstAttempt(hook);
    const logout = await fetch(`${node.url}/v1/logout/api`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_token: session.token }) });
    expect(logout.status).toBe(204);
    const status = await waitDelivered(session.handle, 1);
    expect(status.deliveries[0]).toMatchObject({ channel: 'webhook', client_id: hookApp.clientId, attempts: 2, reason: 'logout', scope: 'session' });

    const attempts = hook.received.slice(before);
    expect(attempts).toHaveLength(2);
    const verifier = new Webhook(hookApp.webhookSecret!);
    for (const request of attempts) {
      expect(request.method).toBe('POST');
      expect(request.headers['content-type']).toBe('application/json');
      const headers = { 'webhook-id': String(request.headers['webhook-id']), 'webhook-timestamp': String(request.headers['webhook-timestamp']), 'webhook-signature': String(request.headers['webhook-signature']) };
      expect(Math.abs(Number(headers['webhook-timestamp']) - request.at / 1000)).toBeLessThan(10);
      const payload = verifier.verify(request.body, headers) as { type: string; timestamp: string; data: Record<string, unknown> };
      expect(payload).toMatchObject({ type: 'session.ended', data: { sub: userId, sid: session.handle, sids: [session.handle], reason: 'logout', client_id: hookApp.clientId } });
      // A changed body, or another secret, does not verify.
      expect(() => verifier.verify(request.body.replace(userId, 'someone-else'), headers)).toThrow(WebhookVerificationError);
      expect(() => new Webhook(`whsec_${Buffer.from('another secret of 24 bytes').toString('base64')}`).verify(request.body, headers)).toThrow(WebhookVerificationError);
    }
    // The receiver deduplicates on webhook-id: the retry carries the same one.
    expect(attempts[0]!.headers['webhook-id']).toBe(attempts[1]!.headers['webhook-id']);
    expect(String(attempts[0]!.headers['webhook-id'])).toMatch(/^msg_/);
  });

  it('says user.sessions_ended, with every ended session, for a user-wide end', async () => {
    const userId = await createUser(node.url, 'hookuser2');
    const sessions = [await startSession(node.url, gateway, userId), await startSession(node.url, gateway, userId)];
    for (const s of sessions) await joinSession(node.url, hookApp, s.token);
    const before = hook.received.length;
    hook.answer = () => ({ status: 204 });
    expect((await node.admin('PATCH', `/users/${userId}`, { disabled: true })).status).toBe(200);
    await waitDelivered(sessions[0]!.handle, 1);
    const [request] = hook.received.slice(before);
    const payload = new Webhook(hookApp.webhookSecret!).verify(request!.body, {
      'webhook-id': String(request!.headers['webhook-id']), 'webhook-timestamp': String(request!.headers['webhook-timestamp']), 'webhook-signature': String(request!.headers['webhook-signature']),
    }) as { type: string; data: { sub: string; sid: string | null; sids: string[]; reason: string } };
    expect(payload.type).toBe('user.sessions_ended');
    expect(payload.data).toMatchObject({ sub: userId, sid: null, reason: 'user_disabled' });
    expect([...payload.data.sids].sort()).toEqual(sessions.map((s) => s.handle).sort());
  });
});
