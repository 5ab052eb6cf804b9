import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  basicAuth,
  createApp,
  createTestServer,
  createUser,
  expectError,
  revocationLog,
  startAppSession,
  storedSession,
  whoamiStatus,
  type TestApp,
  type TestServer,
} from './support.js';

describe('server-to-server logout: POST /api/v1/logout', () => {
  let t: TestServer;
  let forum: TestApp;
  let shop: TestApp;
  beforeEach(async () => {
    t = await createTestServer();
    forum = await createApp(t, { name: 'forum' });
    shop = await createApp(t, { name: 'shop', trusted: false });
  });
  afterEach(async () => t.close());

  function post(app: TestApp | string | null, payload: string | object, contentType?: string) {
    const authorization = app === null ? undefined : typeof app === 'string' ? app : app.basic;
    return t.app.inject({
      method: 'POST',
      url: '/api/v1/logout',
      headers: { ...(authorization ? { authorization } : {}), ...(contentType ? { 'content-type': contentType } : typeof payload === 'string' ? { 'content-type': 'text/plain' } : {}) },
      payload,
    });
  }

  async function sessionJoinedByBoth(userId: string) {
    const s = await startAppSession(t, forum, userId);
    await t.authority.sessions.joinSession(await storedSession(t, s.handle), shop.clientId);
    return s;
  }

  it('takes the token as text/plain → 200 with an empty body; the session ends everywhere', async () => {
    const { user } = await createUser(t);
    const s = await sessionJoinedByBoth(user.id);
    const other = await startAppSession(t, forum, user.id);
    const res = await post(shop, `${s.token}\n`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(await whoamiStatus(t, s.token)).toBe(401);
    expect(await whoamiStatus(t, other.token)).toBe(200);
    const log = await revocationLog(t);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ sid: s.handle, sub: user.id, reason: 'logout', actor: `app:${shop.clientId}`, app: null });
  });

  it('JSON with scope session (the default) ends the whole session', async () => {
    const { user } = await createUser(t);
    const a = await sessionJoinedByBoth(user.id);
    const b = await sessionJoinedByBoth(user.id);
    expect((await post(forum, { token: a.token })).statusCode).toBe(200);
    expect((await post(forum, { token: b.token, scope: 'session' })).statusCode).toBe(200);
    expect(await whoamiStatus(t, a.token)).toBe(401);
    expect(await whoamiStatus(t, b.token)).toBe(401);
    expect((await revocationLog(t)).map((e) => [e.sid, e.app])).toEqual([[a.handle, null], [b.handle, null]]);
  });

  it('scope app ends only the calling app’s part: the session stays active and the app has left', async () => {
    const { user } = await createUser(t);
    const s = await sessionJoinedByBoth(user.id);
    const res = await post(shop, { token: s.token, scope: 'app' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(await whoamiStatus(t, s.token)).toBe(200);
    const stored = await storedSession(t, s.handle);
    expect(stored.endedAt).toBeNull();
    expect(stored.apps.find((a) => a.clientId === shop.clientId)!.leftAt).not.toBeNull();
    expect(stored.apps.find((a) => a.clientId === forum.clientId)!.leftAt).toBeNull();
    const log = await revocationLog(t);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ sid: s.handle, app: shop.clientId, reason: 'logout', actor: `app:${shop.clientId}` });

    // Leaving twice writes nothing more.
    expect((await post(shop, { token: s.token, scope: 'app' })).statusCode).toBe(200);
    expect(await revocationLog(t)).toHaveLength(1);
  });

  it('scope user ends every session of the user, and no one else’s', async () => {
    const { user } = await createUser(t);
    const { user: bystander } = await createUser(t);
    const sessions = [await startAppSession(t, forum, user.id), await startAppSession(t, forum, user.id), await startAppSession(t, forum, user.id)];
    const theirs = await startAppSession(t, forum, bystander.id);
    const res = await post(forum, { token: sessions[1]!.token, scope: 'user' });
    expect(res.statusCode).toBe(200);
    for (const s of sessions) expect(await whoamiStatus(t, s.token)).toBe(401);
    expect(await whoamiStatus(t, theirs.token)).toBe(200);
    const log = await revocationLog(t);
    expect(log.map((e) => e.sid).sort()).toEqual(sessions.map((s) => s.handle).sort());
    expect(log.every((e) => e.sub === user.id && e.app === null)).toBe(true);
  });

  it('a token of an already ended session → 200, nothing more written', async () => {
    const { user } = await createUser(t);
    const s = await startAppSession(t, forum, user.id);
    expect((await post(forum, s.token)).statusCode).toBe(200);
    expect((await post(forum, s.token)).statusCode).toBe(200);
    expect((await post(forum, { token: s.token, scope: 'app' })).statusCode).toBe(200);
    expect(await revocationLog(t)).toHaveLength(1);
  });

  it('an unknown token → 403 TOKEN_INVALID', async () => {
    const { user } = await createUser(t);
    const s = await startAppSession(t, forum, user.id);
    const [id] = s.token.split('.');
    for (const token of ['unknownid1234567.unknownsecret12345678', `${id}.wrongsecretwrongsecret`, 'garbage', 'a.b.c']) {
      expectError(await post(forum, token), 403, 'TOKEN_INVALID');
      expectError(await post(forum, { token, scope: 'user' }), 403, 'TOKEN_INVALID');
    }
    expect(await whoamiStatus(t, s.token)).toBe(200);
  });

  it('a bad scope, unknown fields or an empty body → 400', async () => {
    const { user } = await createUser(t);
    const s = await startAppSession(t, forum, user.id);
    expectError(await post(forum, { token: s.token, scope: 'everything' }), 400, 'INVALID_REQUEST');
    expectError(await post(forum, { token: s.token, scope: 'APP' }), 400, 'INVALID_REQUEST');
    expectError(await post(forum, { token: s.token, reason: 'ban' }), 400, 'INVALID_REQUEST');
    expectError(await post(forum, { scope: 'user' }), 400, 'INVALID_REQUEST');
    expectError(await post(forum, ''), 400, 'INVALID_REQUEST');
    expect(await whoamiStatus(t, s.token)).toBe(200);
  });

  it('no or wrong Basic credentials → 401 INVALID_CLIENT with WWW-Authenticate; nothing ends', async () => {
    const { user } = await createUser(t);
    const s = await startAppSession(t, forum, user.id);
    const wrong = [null, basicAuth(forum.clientId, 'wrong-secret'), basicAuth('app_unknown', forum.clientSecret), `Bearer ${forum.clientSecret}`, `Bearer ${s.token}`, 'Basic', 'Basic Og=='];
    for (const authorization of wrong) {
      for (const payload of [s.token, { token: s.token, scope: 'user' }]) {
        const res = await post(authorization, payload);
        expectError(res, 401, 'INVALID_CLIENT');
        expect(res.headers['www-authenticate']).toMatch(/^Basic realm=/);
      }
    }
    expect(await whoamiStatus(t, s.token)).toBe(200);
    expect(await revocationLog(t)).toHaveLength(0);
  });

  it('a content type other than text/plain or JSON → 415', async () => {
    const { user } = await createUser(t);
    const s = await startAppSession(t, forum, user.id);
    expectError(await post(forum, `token=${s.token}`, 'application/xml'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(await whoamiStatus(t, s.token)).toBe(200);
  });
});
