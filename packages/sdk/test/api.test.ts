// The server-to-server client against a real Tessera node: exchange, refresh (with theft
// detection), introspection, logout scopes, session revocation; and how their outcomes reach
// local verification through the feed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTesseraSdkError, type RevocationEvent, type Tessera } from '../src/index.js';
import { clientFor, eventually, startTesseraServer, type TestApp, type TesseraServer } from './support/tessera-server.js';

let server: TesseraServer;
let app: TestApp;
let untrusted: TestApp;
let client: Tessera;
let untrustedClient: Tessera;
const events: RevocationEvent[] = [];

beforeAll(async () => {
  server = await startTesseraServer();
  app = await server.createApp('site');
  untrusted = await server.createApp('widget', { trusted: false });
  client = clientFor(server, app);
  untrustedClient = clientFor(server, untrusted, { feed: { enabled: false } });
  client.on('revoked', (e) => events.push(e));
  await client.start();
});
afterAll(async () => {
  await client?.close();
  await untrustedClient?.close();
  await server?.close();
});

async function failure(promise: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await promise;
  } catch (error) {
    if (isTesseraSdkError(error)) return { code: String(error.code), status: error.status };
    throw error;
  }
  throw new Error('expected a rejection');
}

async function revokedEventually(token: string): Promise<boolean> {
  return eventually(async () => {
    try {
      await client.verify(token);
      return false;
    } catch (error) {
      return isTesseraSdkError(error, 'TOKEN_REVOKED');
    }
  });
}

describe('tokens', () => {
  it('startSession + exchange give a token pair that verifies', async () => {
    const userId = await server.createUser();
    const started = await client.startSession({ userId }, { ip: '203.0.113.7', userAgent: 'sdk-test' });
    expect(started.user.id).toBe(userId);
    const tokens = await client.exchange(started.sessionToken);
    expect(tokens).toMatchObject({ tokenType: 'Bearer', expiresIn: 300, sid: started.session.handle });
    const session = await client.verify(tokens.accessToken);
    expect(session).toMatchObject({ sub: userId, sid: started.session.handle, aud: app.clientId });
  });

  it('refresh rotates the pair; reusing a spent refresh token ends the session everywhere', async () => {
    const userId = await server.createUser();
    const { sessionToken } = await client.startSession({ userId });
    const first = await client.exchange(sessionToken);
    const second = await client.refresh(first.refreshToken);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.sid).toBe(first.sid);
    await client.verify(second.accessToken);
    expect(await failure(client.refresh(first.refreshToken))).toEqual({ code: 'REFRESH_TOKEN_REUSED', status: 401 });
    expect(await revokedEventually(second.accessToken)).toBe(true);
    expect(events.find((e) => e.sid === first.sid)?.reason).toBe('token_theft');
  });

  it('passes the server\'s stable codes through', async () => {
    expect(await failure(client.exchange('not-a-session-token'))).toEqual({ code: 'INVALID_GRANT', status: 400 });
    expect(await failure(client.refresh('not-a-refresh-token'))).toEqual({ code: 'INVALID_GRANT', status: 400 });
    const wrong = clientFor(server, { clientId: app.clientId, clientSecret: 'wrong' }, { feed: { enabled: false } });
    expect(await failure(wrong.exchange('x.y'))).toEqual({ code: 'INVALID_CLIENT', status: 401 });
    await wrong.close();
    await expect(client.exchange('')).rejects.toBeInstanceOf(TypeError);
  });

  it('reports TESSERA_UNAVAILABLE when Tessera cannot be reached', async () => {
    const away = clientFor(server, app, { url: 'http://127.0.0.1:9', feed: { enabled: false } });
    expect(await failure(away.exchange('x.y'))).toEqual({ code: 'TESSERA_UNAVAILABLE', status: 503 });
    await away.close();
  });

  it('introspect reflects revocation at once', async () => {
    const userId = await server.createUser();
    const { sessionToken, session } = await client.startSession({ userId });
    const { accessToken } = await client.exchange(sessionToken);
    const active = await client.introspect(accessToken);
    expect(active).toMatchObject({ active: true, sub: userId, sid: session.handle, client_id: app.clientId });
    await server.revokeSession(String(session.handle));
    expect(await client.introspect(accessToken)).toEqual({ active: false });
  });
});

describe('logout and revocation', () => {
  it('logout scope session ends the session; the feed makes verify reject it', async () => {
    const userId = await server.createUser();
    const { sessionToken } = await client.startSession({ userId });
    const { accessToken, sid } = await client.exchange(sessionToken);
    await client.logout(sessionToken, { scope: 'session' });
    expect(await revokedEventually(accessToken)).toBe(true);
    expect(events.find((e) => e.sid === sid)).toMatchObject({ reason: 'logout', app: null });
    // Idempotent.
    await client.logout(sessionToken);
  });

  it('logout scope app ends only this app\'s part: its older tokens are revoked, another app\'s are not', async () => {
    const userId = await server.createUser();
    const { sessionToken } = await client.startSession({ userId });
    const mine = await client.exchange(sessionToken);
    const theirs = await untrustedClient.exchange(sessionToken);
    await client.logout(sessionToken, { scope: 'app' });
    expect(await revokedEventually(mine.accessToken)).toBe(true);
    expect(events.find((e) => e.sid === mine.sid)).toMatchObject({ app: app.clientId });
    expect((await untrustedClient.introspect(theirs.accessToken)).active).toBe(true);
  });

  it('revokeSession ends a session by handle; an unknown handle resolves false', async () => {
    const userId = await server.createUser();
    const { sessionToken } = await client.startSession({ userId });
    const { accessToken, sid } = await client.exchange(sessionToken);
    expect(await client.revokeSession(sid)).toBe(true);
    expect(await revokedEventually(accessToken)).toBe(true);
    expect(await client.revokeSession(`${sid.slice(0, -4)}zzzz`)).toBe(false);
  });

  it('an untrusted app may only end sessions it joined', async () => {
    const userId = await server.createUser();
    const { sessionToken, session } = await client.startSession({ userId });
    expect(await untrustedClient.revokeSession(String(session.handle))).toBe(false);
    await untrustedClient.exchange(sessionToken);
    expect(await untrustedClient.revokeSession(String(session.handle))).toBe(true);
  });

  it('revokeUserSessions ends all but the kept one; untrusted apps are refused', async () => {
    const userId = await server.createUser();
    const sids: string[] = [];
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { sessionToken } = await client.startSession({ userId });
      const t = await client.exchange(sessionToken);
      sids.push(t.sid);
      tokens.push(t.accessToken);
    }
    const ended = await client.revokeUserSessions(userId, { except: sids[0] });
    expect([...ended].sort()).toEqual([sids[1], sids[2]].sort());
    expect(await revokedEventually(tokens[2]!)).toBe(true);
    expect((await client.verify(tokens[0]!)).sid).toBe(sids[0]);
    expect(await failure(untrustedClient.revokeUserSessions(userId))).toEqual({ code: 'APP_NOT_TRUSTED', status: 403 });
  });
});
