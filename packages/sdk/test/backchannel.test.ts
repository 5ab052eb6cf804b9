// The back-channel logout receiver (OIDC Back-Channel Logout 1.0 §2.6–2.8), unit level: a
// stand-in issuer signs the tokens and serves its JWKS over node:http (so each claim can be
// bent), and the receiver runs behind a real node:http server and an Express app. Tessera's
// real logout tokens reach this receiver in test/e2e (late-logout, webhook-receivers).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKCHANNEL_LOGOUT_EVENT, createBackchannelHandler, createBackchannelReceiver, createExpressBackchannelHandler, type BackchannelLogout } from '../src/backchannel.js';
import { startJwksServer, type JwksServer, type SigningKey } from './support/jwks-server.js';

const CLIENT_ID = 'forum';
let issuer: JwksServer;
let key: SigningKey;
// Published before the receiver first fetches the JWKS (its refetch on an unknown kid has a cooldown).
let rsaKey: SigningKey;
let pssKey: SigningKey;
let received: BackchannelLogout[];
let failNext = false;
let nodeUrl: string;
let expressUrl: string;
const servers: Server[] = [];

function listen(server: Server): Promise<string> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

beforeAll(async () => {
  issuer = await startJwksServer();
  key = await issuer.addKey('EdDSA');
  rsaKey = await issuer.addKey('RS256');
  pssKey = await issuer.addKey('PS256');
  const receiver = createBackchannelReceiver({
    issuer: issuer.url,
    clientId: CLIENT_ID,
    jwksUri: issuer.jwksUri,
    onLogout(logout) {
      if (failNext) {
        failNext = false;
        throw new Error('database down');
      }
      received.push(logout);
    },
  });
  nodeUrl = await listen(createServer(createBackchannelHandler(receiver, { onError: () => undefined })));
  const app = express();
  app.post('/logout', express.urlencoded({ extended: false }), createExpressBackchannelHandler(receiver));
  expressUrl = await listen(createServer(app));
});
beforeEach(() => {
  received = [];
  failNext = false;
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  await issuer?.close();
});

let jtis = 0;
function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(Date.now() / 1000);
  return { iss: issuer.url, aud: CLIENT_ID, iat, exp: iat + 120, jti: `bc-${++jtis}-${Date.now()}`, sub: 'u1', sid: 's1', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...extra };
}

function logoutToken(extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}, signWith: SigningKey = key): Promise<string> {
  return issuer.sign(signWith, claims(extra), { typ: 'logout+jwt', ...header });
}

function without(name: string): Record<string, unknown> {
  const c = claims();
  delete c[name];
  return c;
}

async function post(url: string, body: string, contentType = 'application/x-www-form-urlencoded') {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body });
  const text = await response.text();
  return { status: response.status, cacheControl: response.headers.get('cache-control'), body: text ? (JSON.parse(text) as Record<string, string>) : null };
}
const form = (token: string) => `logout_token=${encodeURIComponent(token)}`;

describe.each([
  ['node:http', () => nodeUrl],
  ['express', () => `${expressUrl}/logout`],
])('back-channel receiver (%s)', (_name, urlOf) => {
  async function expectRefused(body: string, contentType?: string) {
    const res = await post(urlOf(), body, contentType);
    expect(res.status).toBe(400);
    expect(res.body?.error).toBe('invalid_request');
    expect(typeof res.body?.error_description).toBe('string');
    expect(res.cacheControl).toBe('no-store');
    expect(received).toEqual([]);
  }

  it('accepts a valid logout token: handler called with sub and sid, 200 no-store', async () => {
    const token = await logoutToken();
    const res = await post(urlOf(), form(token));
    expect(res).toEqual({ status: 200, cacheControl: 'no-store', body: null });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ sub: 'u1', sid: 's1', iss: issuer.url });
  });

  it('accepts a token with only sid, or only sub', async () => {
    expect((await post(urlOf(), form(await issuer.sign(key, without('sub'), { typ: 'logout+jwt' })))).status).toBe(200);
    expect((await post(urlOf(), form(await issuer.sign(key, without('sid'), { typ: 'logout+jwt' })))).status).toBe(200);
    expect(received.map((r) => [r.sub, r.sid])).toEqual([[undefined, 's1'], ['u1', undefined]]);
  });

  it('refuses a wrong typ', async () => {
    await expectRefused(form(await logoutToken({}, { typ: 'at+jwt' })));
    await expectRefused(form(await logoutToken({}, { typ: 'JWT' })));
  });
  it('refuses a wrong issuer', async () => expectRefused(form(await logoutToken({ iss: 'https://evil.example' }))));
  it('refuses an audience without this client', async () => expectRefused(form(await logoutToken({ aud: ['other-app'] }))));
  it('refuses an expired token', async () => {
    const past = Math.floor(Date.now() / 1000) - 600;
    await expectRefused(form(await logoutToken({ iat: past, exp: past + 60 })));
  });
  it('refuses a token issued in the future', async () => {
    const future = Math.floor(Date.now() / 1000) + 600;
    await expectRefused(form(await logoutToken({ iat: future, exp: future + 60 })));
  });
  it('refuses missing iat, exp or jti', async () => {
    for (const claim of ['iat', 'exp', 'jti']) await expectRefused(form(await issuer.sign(key, without(claim), { typ: 'logout+jwt' })));
  });
  it('refuses a missing or malformed events claim', async () => {
    await expectRefused(form(await issuer.sign(key, without('events'), { typ: 'logout+jwt' })));
    await expectRefused(form(await logoutToken({ events: { 'http://schemas.openid.net/event/other': {} } })));
    await expectRefused(form(await logoutToken({ events: { [BACKCHANNEL_LOGOUT_EVENT]: 'yes' } })));
    await expectRefused(form(await logoutToken({ events: [BACKCHANNEL_LOGOUT_EVENT] })));
  });
  it('refuses a nonce', async () => expectRefused(form(await logoutToken({ nonce: 'n-0S6_WzA2Mj' }))));
  it('refuses a token with neither sub nor sid', async () => {
    const c = claims();
    delete c.sub;
    delete c.sid;
    await expectRefused(form(await issuer.sign(key, c, { typ: 'logout+jwt' })));
  });
  it('refuses a replayed jti', async () => {
    const token = await logoutToken();
    expect((await post(urlOf(), form(token))).status).toBe(200);
    received = [];
    await expectRefused(form(token));
    // Another token with the same jti is a replay too.
    const sameJti = await logoutToken({ jti: (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti });
    await expectRefused(form(sameJti));
  });
  it('refuses a bad signature and an unpublished key', async () => {
    const token = await logoutToken();
    const [h, p, s] = token.split('.');
    await expectRefused(form(`${h}.${p}.${s!.slice(0, -4)}AAAA`));
    await expectRefused(form(await logoutToken({}, {}, await issuer.addKey('EdDSA', false))));
  });
  it('accepts RS256 (what Tessera signs with for an app that is also an OIDC client) and refuses PS256', async () => {
    await expectRefused(form(await logoutToken({}, {}, pssKey)));
    const accepted = await post(urlOf(), form(await logoutToken({}, {}, rsaKey)));
    expect(accepted.status).toBe(200);
    expect(received).toMatchObject([{ sub: 'u1', sid: 's1' }]);
  });

  it('refuses alg none and HS256', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    await expectRefused(form(`${b64({ alg: 'none', typ: 'logout+jwt' })}.${b64(claims())}.`));
    await expectRefused(form(`${b64({ alg: 'HS256', typ: 'logout+jwt', kid: key.kid })}.${b64(claims())}.c2ln`));
  });
  it('refuses malformed bodies', async () => {
    const token = await logoutToken();
    await expectRefused('');
    await expectRefused('logout_token=');
    await expectRefused('token=abc');
    await expectRefused('logout_token=not-a-jwt');
    await expectRefused(`${form(token)}&${form(token)}`);
    await expectRefused(`logout_token=${'a'.repeat(20_000)}`);
  });
  it('answers 400 and forgets the jti when the handler fails, so the sender\'s retry succeeds', async () => {
    const token = await logoutToken();
    failNext = true;
    await expectRefused(form(token));
    expect((await post(urlOf(), form(token))).status).toBe(200);
    expect(received).toHaveLength(1);
  });
});

describe('back-channel receiver (framework-neutral)', () => {
  it('says why it refused, with a stable code', async () => {
    const handled: BackchannelLogout[] = [];
    const receiver = createBackchannelReceiver({ issuer: issuer.url, clientId: CLIENT_ID, jwksUri: issuer.jwksUri, onLogout: (l) => void handled.push(l) });
    const code = async (body: string, contentType = 'application/x-www-form-urlencoded') => (await receiver.receive({ body, contentType })).code ?? 'OK';
    expect(await code(form(await logoutToken({}, { typ: 'JWT' })))).toBe('TOKEN_WRONG_TYPE');
    expect(await code(form(await logoutToken({ iss: 'https://evil.example' })))).toBe('TOKEN_WRONG_ISSUER');
    expect(await code(form(await logoutToken({ aud: 'other' })))).toBe('TOKEN_WRONG_AUDIENCE');
    expect(await code(form(await logoutToken({ exp: 1000, iat: 900 })))).toBe('TOKEN_EXPIRED');
    expect(await code(form(await logoutToken({ nonce: 'x' })))).toBe('LOGOUT_TOKEN_INVALID');
    const token = await logoutToken();
    expect(await code(form(token))).toBe('OK');
    expect(await code(form(token))).toBe('LOGOUT_TOKEN_REPLAYED');
    expect(await code(form(await logoutToken()), 'application/json')).toBe('LOGOUT_TOKEN_INVALID');
    // A body some framework already parsed.
    expect((await receiver.receive({ body: { logout_token: await logoutToken() } })).status).toBe(200);
    expect(handled).toHaveLength(2);
  });

  it('a late user-wide logout covers the sessions it ended, never one started after it (revoked_at, sids)', async () => {
    const handled: BackchannelLogout[] = [];
    const receiver = createBackchannelReceiver({ issuer: issuer.url, clientId: CLIENT_ID, jwksUri: issuer.jwksUri, onLogout: (l) => void handled.push(l) });
    // The revocation happened 40 minutes ago; this retry is signed now (iat).
    const revokedAt = Date.now() - 40 * 60_000;
    const userWide = without('sid');
    const listed = await issuer.sign(key, { ...userWide, jti: 'late-1', revoked_at: revokedAt, sids: ['s-old-1', 's-old-2'] }, { typ: 'logout+jwt' });
    expect((await receiver.receive({ body: form(listed) })).status).toBe(200);
    const [late] = handled;
    expect(late).toMatchObject({ sub: 'u1', revokedAt, sids: ['s-old-1', 's-old-2'] });
    expect(late!.sid).toBeUndefined();
    // By sid when the list and the local session's sid are known…
    expect(late!.covers({ sid: 's-old-2' })).toBe(true);
    expect(late!.covers({ sid: 's-new', startedAt: revokedAt - 1_000 })).toBe(false);
    // …by start time otherwise: at or before the revocation, not after (and not "now").
    expect(late!.covers({ startedAt: revokedAt })).toBe(true);
    expect(late!.covers({ startedAt: revokedAt + 1 })).toBe(false);
    expect(late!.covers({ startedAt: Date.now() - 60_000 })).toBe(false);
    expect(() => late!.covers({})).toThrow(TypeError);

    // Without a list (too many sessions, or a sid the app does not know) the time decides.
    const unlisted = await issuer.sign(key, { ...userWide, jti: 'late-2', revoked_at: revokedAt }, { typ: 'logout+jwt' });
    expect((await receiver.receive({ body: form(unlisted) })).status).toBe(200);
    expect(handled[1]!.covers({ sid: 's-new', startedAt: revokedAt + 5_000 })).toBe(false);
    expect(handled[1]!.covers({ sid: 's-old-1', startedAt: revokedAt - 5_000 })).toBe(true);

    // A logout of one session covers that session only, however the times compare.
    const one = await issuer.sign(key, { ...claims(), jti: 'late-3', revoked_at: revokedAt }, { typ: 'logout+jwt' });
    expect((await receiver.receive({ body: form(one) })).status).toBe(200);
    expect(handled[2]!.covers({ sid: 's1', startedAt: Date.now() })).toBe(true);
    expect(handled[2]!.covers({ sid: 's2', startedAt: revokedAt - 5_000 })).toBe(false);
    expect(handled[2]!.covers({ startedAt: revokedAt - 5_000 })).toBe(false);

    // Tokens of other issuers have no revoked_at: iat stands in.
    const plain = await logoutToken({ sid: undefined });
    expect((await receiver.receive({ body: form(plain) })).status).toBe(200);
    const iat = (JSON.parse(Buffer.from(plain.split('.')[1]!, 'base64url').toString()) as { iat: number }).iat;
    expect(handled[3]!.revokedAt).toBe(iat * 1000);
  });

  it('refuses a revoked_at after the token was signed or not an integer, and sids that are not strings', async () => {
    const handled: BackchannelLogout[] = [];
    const receiver = createBackchannelReceiver({ issuer: issuer.url, clientId: CLIENT_ID, jwksUri: issuer.jwksUri, onLogout: (l) => void handled.push(l) });
    const code = async (extra: Record<string, unknown>) => (await receiver.receive({ body: form(await logoutToken({ sid: undefined, ...extra })) })).code ?? 'OK';
    expect(await code({ revoked_at: Date.now() + 10 * 60_000 })).toBe('LOGOUT_TOKEN_INVALID');
    expect(await code({ revoked_at: '2026-01-01T00:00:00Z' })).toBe('LOGOUT_TOKEN_INVALID');
    expect(await code({ revoked_at: 1.5 })).toBe('LOGOUT_TOKEN_INVALID');
    expect(await code({ sids: 's1' })).toBe('LOGOUT_TOKEN_INVALID');
    expect(await code({ sids: ['s1', 7] })).toBe('LOGOUT_TOKEN_INVALID');
    expect(handled).toEqual([]);
    expect(await code({ revoked_at: Date.now() - 1_000, sids: [] })).toBe('OK');
    expect(handled[0]!.covers({ sid: 'anything' })).toBe(false);
  });

  it('needs onLogout and an issuer', () => {
    expect(() => createBackchannelReceiver({ issuer: 'https://x', clientId: 'a' } as never)).toThrow(TypeError);
    expect(() => createBackchannelReceiver({ onLogout: () => undefined })).toThrow(TypeError);
  });

  it('answers 405 to anything but POST', async () => {
    const res = await fetch(nodeUrl, { method: 'GET' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});
