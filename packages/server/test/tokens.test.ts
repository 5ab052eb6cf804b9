import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, generateKeyPair, UnsecuredJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ISSUER, adminRequest, createApp, createUser, expectError, revocationLog, startAppSession, whoamiStatus, type TestApp, type TestServer, createTestServer } from './support.js';

let t: TestServer;
let app: TestApp;
let other: TestApp;
let userId: string;

beforeEach(async () => {
  t = await createTestServer();
  app = await createApp(t, { name: 'forum' });
  other = await createApp(t, { name: 'shop', trusted: false });
  userId = (await createUser(t)).user.id;
});
afterEach(async () => t.close());

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

function token(caller: TestApp, fields: Record<string, string>) {
  return t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: caller.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: form(fields) });
}

function introspect(caller: TestApp, tokenValue: string, hint?: string) {
  return t.app.inject({ method: 'POST', url: '/v1/introspect', headers: { authorization: caller.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ token: tokenValue, ...(hint ? { token_type_hint: hint } : {}) }) });
}

interface Pair { access_token: string; refresh_token: string; expires_in: number; token_type: string; sid: string }

async function exchange(caller: TestApp, sessionToken: string): Promise<Pair> {
  const res = await token(caller, { grant_type: 'session_token', session_token: sessionToken });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Pair>();
}

describe('POST /v1/token grant_type=session_token', () => {
  it('returns a signed access token with the documented claims and records the app as joined', async () => {
    const s = await startAppSession(t, app, userId);
    const pair = await exchange(other, s.token);
    expect(pair.token_type).toBe('Bearer');
    expect(pair.expires_in).toBe(300);
    expect(pair.sid).toBe(s.handle);
    const header = decodeProtectedHeader(pair.access_token);
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const jwks = (await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<{ keys: object[] }>();
    const { payload } = await jwtVerify(pair.access_token, createLocalJWKSet(jwks as never), { issuer: ISSUER, audience: other.clientId, currentDate: new Date(t.clock.now()) });
    expect(payload).toMatchObject({ sub: userId, sid: s.handle, aud: other.clientId, client_id: other.clientId });
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(typeof payload.jti).toBe('string');
    const stored = await t.store.findSessionByHandle(s.handle);
    expect(stored!.apps.map((a) => a.clientId).sort()).toEqual([app.clientId, other.clientId].sort());
  });

  it('gives every token a fresh jti', async () => {
    const s = await startAppSession(t, app, userId);
    const a = decodeJwt((await exchange(app, s.token)).access_token);
    const b = decodeJwt((await exchange(app, s.token)).access_token);
    expect(a.jti).not.toBe(b.jti);
  });

  it('rejects unknown, malformed and ended session tokens with INVALID_GRANT', async () => {
    const s = await startAppSession(t, app, userId);
    expectError(await token(app, { grant_type: 'session_token', session_token: 'nope' }), 400, 'INVALID_GRANT');
    expectError(await token(app, { grant_type: 'session_token', session_token: `${s.token.split('.')[0]}.wrongsecretwrongsecret` }), 400, 'INVALID_GRANT');
    await adminRequest(t, 'DELETE', `/sessions/${s.handle}`);
    expectError(await token(app, { grant_type: 'session_token', session_token: s.token }), 400, 'INVALID_GRANT');
  });

  it('needs client credentials, a known grant type and the grant\'s token field', async () => {
    const s = await startAppSession(t, app, userId);
    const noAuth = await t.app.inject({ method: 'POST', url: '/v1/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ grant_type: 'session_token', session_token: s.token }) });
    expectError(noAuth, 401, 'INVALID_CLIENT');
    expectError(await token({ ...app, basic: `Basic ${Buffer.from(`${app.clientId}:wrong`).toString('base64')}` }, { grant_type: 'session_token', session_token: s.token }), 401, 'INVALID_CLIENT');
    expectError(await token(app, { grant_type: 'password', session_token: s.token }), 400, 'UNSUPPORTED_GRANT_TYPE');
    expectError(await token(app, { grant_type: 'session_token' }), 400, 'INVALID_REQUEST');
    expectError(await token(app, { grant_type: 'refresh_token' }), 400, 'INVALID_REQUEST');
    expectError(await token(app, { grant_type: 'session_token', session_token: s.token, extra: 'x' }), 400, 'INVALID_REQUEST');
  });
});

describe('POST /v1/token grant_type=refresh_token', () => {
  it('rotates: a new pair, and the old refresh token is spent', async () => {
    const s = await startAppSession(t, app, userId);
    const first = await exchange(app, s.token);
    const second = (await token(app, { grant_type: 'refresh_token', refresh_token: first.refresh_token })).json<Pair>();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    const third = await token(app, { grant_type: 'refresh_token', refresh_token: second.refresh_token });
    expect(third.statusCode).toBe(200);
  });

  it('ends the whole session with reason token_theft when a spent refresh token comes back', async () => {
    const s = await startAppSession(t, app, userId);
    const first = await exchange(app, s.token);
    expect((await token(app, { grant_type: 'refresh_token', refresh_token: first.refresh_token })).statusCode).toBe(200);
    expectError(await token(app, { grant_type: 'refresh_token', refresh_token: first.refresh_token }), 401, 'REFRESH_TOKEN_REUSED');
    expect(await whoamiStatus(t, s.token)).toBe(401);
    const log = await revocationLog(t);
    expect(log.at(-1)).toMatchObject({ sid: s.handle, reason: 'token_theft', actor: `app:${app.clientId}` });
  });

  it('lets exactly one of two concurrent refreshes with the same token win; the other ends the session', async () => {
    const s = await startAppSession(t, app, userId);
    const first = await exchange(app, s.token);
    const results = await Promise.all([0, 1].map(() => token(app, { grant_type: 'refresh_token', refresh_token: first.refresh_token })));
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 401]);
    expect(await whoamiStatus(t, s.token)).toBe(401);
  });

  it('rejects another app\'s refresh token, unknown ones, and tokens of ended sessions or of apps that left', async () => {
    const s = await startAppSession(t, app, userId);
    const pair = await exchange(app, s.token);
    expectError(await token(other, { grant_type: 'refresh_token', refresh_token: pair.refresh_token }), 400, 'INVALID_GRANT');
    expectError(await token(app, { grant_type: 'refresh_token', refresh_token: 'rtxxxxxxxxxx.yyyyyyyyyyyy' }), 400, 'INVALID_GRANT');
    // The app leaves the session (scope app): its refresh token stops working.
    const left = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic }, payload: { token: s.token, scope: 'app' } });
    expect(left.statusCode).toBe(200);
    expectError(await token(app, { grant_type: 'refresh_token', refresh_token: pair.refresh_token }), 400, 'INVALID_GRANT');
    const again = await exchange(other, s.token);
    await adminRequest(t, 'DELETE', `/sessions/${s.handle}`);
    expectError(await token(other, { grant_type: 'refresh_token', refresh_token: again.refresh_token }), 400, 'INVALID_GRANT');
  });
});

describe('POST /v1/introspect', () => {
  it('reports an access token active until the session ends, then inactive at once', async () => {
    const s = await startAppSession(t, app, userId);
    const pair = await exchange(app, s.token);
    const active = (await introspect(app, pair.access_token)).json();
    expect(active).toMatchObject({ active: true, token_type: 'access_token', sub: userId, sid: s.handle, client_id: app.clientId, aud: app.clientId, iss: ISSUER });
    expect(typeof active.exp).toBe('number');
    await adminRequest(t, 'DELETE', `/sessions/${s.handle}`);
    expect((await introspect(app, pair.access_token)).json()).toEqual({ active: false });
  });

  it('reports refresh and session tokens, and nothing for tokens of other apps or garbage', async () => {
    const s = await startAppSession(t, app, userId);
    const pair = await exchange(app, s.token);
    expect((await introspect(app, pair.refresh_token)).json()).toMatchObject({ active: true, token_type: 'refresh_token', sid: s.handle });
    expect((await introspect(other, s.token)).json()).toMatchObject({ active: true, token_type: 'session_token', sub: userId });
    expect((await introspect(other, pair.access_token)).json()).toEqual({ active: false });
    expect((await introspect(other, pair.refresh_token)).json()).toEqual({ active: false });
    for (const junk of ['x', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'é'.repeat(50)]) {
      expect((await introspect(app, junk)).json()).toEqual({ active: false });
    }
  });

  it('reports inactive once the access token expired, and for the token of an app that left', async () => {
    const s = await startAppSession(t, app, userId);
    const pair = await exchange(app, s.token);
    t.clock.advance(301_000);
    expect((await introspect(app, pair.access_token)).json()).toEqual({ active: false });
    const fresh = await exchange(app, s.token);
    await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic }, payload: { token: s.token, scope: 'app' } });
    expect((await introspect(app, fresh.access_token)).json()).toEqual({ active: false });
  });

  it('rejects tokens signed by another key, alg none, and HS256 with the public key', async () => {
    const s = await startAppSession(t, app, userId);
    const pair = await exchange(app, s.token);
    const claims = decodeJwt(pair.access_token);
    const { kid } = decodeProtectedHeader(pair.access_token);
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' }).sign(privateKey);
    expect((await introspect(app, forged)).json()).toEqual({ active: false });
    const none = new UnsecuredJWT(claims).encode();
    expect((await introspect(app, none)).json()).toEqual({ active: false });
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' }).sign(new TextEncoder().encode('x'.repeat(32)));
    expect((await introspect(app, hs)).json()).toEqual({ active: false });
  });
});

describe('GET /.well-known/jwks.json and key rotation', () => {
  it('publishes the current and the next period\'s key, and keeps a retired key until its tokens expired', async () => {
    const rotating = await createTestServer({ env: { TESSERA_KEY_ROTATION: '3600' } });
    try {
      const a = await createApp(rotating, { name: 'a' });
      const uid = (await createUser(rotating)).user.id;
      const s = await startAppSession(rotating, a, uid);
      const jwks = async () => (await rotating.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<{ keys: Array<{ kid: string; kty: string; d?: string }> }>().keys;
      const before = await jwks();
      // This and the next period of the main series (access tokens), and of the two other ID
      // token algorithms the discovery document lists.
      expect(before.filter((k) => /^tk-\d+$/.test(k.kid))).toHaveLength(2);
      expect(before).toHaveLength(6);
      for (const k of before) expect(k.d).toBeUndefined();
      const res = await rotating.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: a.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ grant_type: 'session_token', session_token: s.token }) });
      const oldKid = decodeProtectedHeader(res.json<Pair>().access_token).kid!;
      expect(before.map((k) => k.kid)).toContain(oldKid);
      // Move into the next period: a new key signs, the old one is still published.
      rotating.clock.advance(3_600_000);
      const res2 = await rotating.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: a.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: form({ grant_type: 'session_token', session_token: s.token }) });
      const newKid = decodeProtectedHeader(res2.json<Pair>().access_token).kid!;
      expect(newKid).not.toBe(oldKid);
      expect((await jwks()).map((k) => k.kid)).toContain(oldKid);
      // Every series rotated with it: the next period's EdDSA, ES256 and RS256 keys are out.
      const next = newKid.replace(/^tk-(\d+)$/, (_m, p: string) => `tk-${Number(p) + 1}`);
      expect((await jwks()).map((k) => k.kid)).toEqual(expect.arrayContaining([next, `${next}-es256`, `${next}-rs256`]));
      // Long after every token of the old key expired, it is gone.
      rotating.clock.advance(3_600_000);
      expect((await jwks()).map((k) => k.kid)).not.toContain(oldKid);
    } finally {
      await rotating.close();
    }
  });
});

describe('logout tokens (signLogoutToken): what the revocation ended, the same on every attempt', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('carries revoked_at (ms) and, user-wide, sids; iat and jti are the attempt\'s own', async () => {
    const revokedAt = t.clock.now() - 3_600_000 + 123;
    const first = decodeJwt(await t.authority.tokens.signLogoutToken({ clientId: 'forum', sub: 'usr_1', sid: null, revokedAt, handles: ['ses_a', 'ses_b'] }));
    t.clock.advance(60_000);
    const retry = decodeJwt(await t.authority.tokens.signLogoutToken({ clientId: 'forum', sub: 'usr_1', sid: null, revokedAt, handles: ['ses_a', 'ses_b'] }));
    expect(first).toMatchObject({ sub: 'usr_1', revoked_at: revokedAt, sids: ['ses_a', 'ses_b'] });
    expect(first.sid).toBeUndefined();
    expect(retry).toMatchObject({ revoked_at: revokedAt, sids: ['ses_a', 'ses_b'] });
    expect(retry.iat).toBe(first.iat! + 60);
    expect(retry.jti).not.toBe(first.jti);
    // A session end names its sid and lists nothing.
    const one = decodeJwt(await t.authority.tokens.signLogoutToken({ clientId: 'forum', sub: 'usr_1', sid: 'ses_a', revokedAt, handles: ['ses_a'] }));
    expect(one).toMatchObject({ sid: 'ses_a', revoked_at: revokedAt });
    expect(one.sids).toBeUndefined();
  });

  it('leaves sids out above 100 handles (the token stays small; receivers fall back to revoked_at)', async () => {
    const handles = Array.from({ length: 101 }, (_, i) => `ses_${String(i).padStart(22, '0')}`);
    const many = await t.authority.tokens.signLogoutToken({ clientId: 'forum', sub: 'usr_1', sid: null, revokedAt: t.clock.now(), handles });
    expect(decodeJwt(many).sids).toBeUndefined();
    const hundred = await t.authority.tokens.signLogoutToken({ clientId: 'forum', sub: 'usr_1', sid: null, revokedAt: t.clock.now(), handles: handles.slice(0, 100) });
    expect((decodeJwt(hundred).sids as string[]).length).toBe(100);
    expect(hundred.length).toBeLessThan(8192);
  });
});
