import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  basicAuth,
  bearer,
  createApp,
  createTestServer,
  createUser,
  expectError,
  startAppSession,
  whoamiStatus,
  type SessionJson,
  type TestServer,
  type UserJson,
} from './support.js';

describe('POST /v1/sessions (a trusted app starts a session)', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('starts a session for an existing user by user_id: 201 {session, session_token} in snake_case', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic, 'user-agent': 'curl/8' }, payload: { user_id: user.id, device: { ip: '203.0.113.7', user_agent: 'Forum app' } } });
    expect(res.statusCode).toBe(201);
    const body = res.json<{ session: SessionJson; session_token: string; user: UserJson }>();
    expect(body.session_token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(body.session.user_id).toBe(user.id);
    expect(body.session.handle).toMatch(/^ses_/);
    expect(body.session.ip).toBe('203.0.113.7');
    expect(body.session.user_agent).toBe('Forum app');
    expect(body.session.active).toBe(true);
    expect(body.session.apps).toEqual([{ client_id: app.clientId, joined_at: body.session.created_at, left_at: null }]);
    expect(Object.keys(body.session).sort()).toEqual(
      ['active', 'apps', 'created_at', 'end_reason', 'ended_at', 'ended_by', 'expires_at', 'handle', 'idle_expires_at', 'ip', 'last_seen_at', 'user_agent', 'user_id'].sort(),
    );
    expect(body.user.id).toBe(user.id);
    // The handle is not the token, and no part of the token is in the session view.
    const [tokenId, secret] = body.session_token.split('.');
    expect(JSON.stringify(body.session)).not.toContain(tokenId!);
    expect(JSON.stringify(body.session)).not.toContain(secret!);
    expect(await whoamiStatus(t, body.session_token)).toBe(200);
  });

  it('by claims creates the user when none matches, then finds the same user again', async () => {
    const app = await createApp(t);
    const claims = { username: 'carol', email: 'carol@example.com', first_name: 'Carol', last_name: 'Danvers', picture: 'https://img.example/c.png' };
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user: claims } });
    expect(res.statusCode).toBe(201);
    const body = res.json<{ session: SessionJson; session_token: string; user: UserJson }>();
    expect(body.user).toMatchObject({ username: 'carol', email: 'carol@example.com', first_name: 'Carol', last_name: 'Danvers', picture: 'https://img.example/c.png', disabled: false });
    const stored = await t.store.findUserByLogin('carol');
    expect(stored?.id).toBe(body.user.id);
    // Created from claims: no password, so the hosted form cannot be used to sign in as carol.
    expect(stored?.passwordHash).toBeNull();

    const again = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user: { username: 'carol' } } });
    expect(again.statusCode).toBe(201);
    expect(again.json().user.id).toBe(body.user.id);
    expect(again.json().session.handle).not.toBe(body.session.handle);
  });

  it('an untrusted app gets 403 APP_NOT_TRUSTED and no session is started', async () => {
    const app = await createApp(t, { trusted: false });
    const { user } = await createUser(t);
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user_id: user.id } });
    expectError(res, 403, 'APP_NOT_TRUSTED');
    expect(await t.store.listSessionsByUser(user.id)).toHaveLength(0);
  });

  it('an untrusted app cannot create users from claims', async () => {
    const app = await createApp(t, { trusted: false });
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user: { username: 'mallory' } } });
    expectError(res, 403, 'APP_NOT_TRUSTED');
    expect(await t.store.findUserByLogin('mallory')).toBeNull();
  });

  it('both user_id and user → 400 INVALID_REQUEST', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user_id: user.id, user: { username: 'dave' } } });
    expectError(res, 400, 'INVALID_REQUEST');
    expect(await t.store.listSessionsByUser(user.id)).toHaveLength(0);
    expect(await t.store.findUserByLogin('dave')).toBeNull();
  });

  it('neither user_id nor user → 400 INVALID_REQUEST', async () => {
    const app = await createApp(t);
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { device: { user_agent: 'x' } } });
    expectError(res, 400, 'INVALID_REQUEST');
  });

  it('an unknown user_id → 404 USER_NOT_FOUND', async () => {
    const app = await createApp(t);
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user_id: 'usr_nobody' } });
    expectError(res, 404, 'USER_NOT_FOUND');
  });

  it('a disabled user gets no session (403 USER_DISABLED)', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    await t.authority.users.updateUser(user.id, { disabled: true }, 'admin');
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: app.basic }, payload: { user_id: user.id } });
    expectError(res, 403, 'USER_DISABLED');
  });

  it('a wrong client secret → 401 INVALID_CLIENT with WWW-Authenticate: Basic', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: basicAuth(app.clientId, `${app.clientSecret}x`) }, payload: { user_id: user.id } });
    expectError(res, 401, 'INVALID_CLIENT');
    expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    expect(await t.store.listSessionsByUser(user.id)).toHaveLength(0);
  });

  it('an unknown client id, no credentials, or a Bearer instead of Basic → 401 INVALID_CLIENT', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    for (const authorization of [basicAuth('app_unknown', app.clientSecret), undefined, `Bearer ${app.clientSecret}`, 'Basic !!!not-base64', `Basic ${Buffer.from(app.clientId).toString('base64')}`]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: authorization === undefined ? {} : { authorization }, payload: { user_id: user.id } });
      expectError(res, 401, 'INVALID_CLIENT');
      expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    }
  });
});

describe('GET /v1/whoami', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('answers {session, user} for the token in a cookie, a Bearer header and X-Session-Token', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t, { email: 'erin@example.com', first_name: 'Erin' });
    const started = await startAppSession(t, app, user.id);
    const variants = [{ headers: bearer(started.token) }, { headers: { 'x-session-token': started.token } }, { cookies: { tessera_session: started.token } }];
    for (const variant of variants) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/whoami', ...variant });
      expect(res.statusCode).toBe(200);
      const body = res.json<{ session: SessionJson; user: UserJson }>();
      expect(body.session.handle).toBe(started.handle);
      expect(body.session.current).toBe(true);
      expect(body.user).toMatchObject({ id: user.id, username: user.username, email: 'erin@example.com', first_name: 'Erin', disabled: false });
      expect(JSON.stringify(body)).not.toMatch(/password|secret_hash|token_id/);
    }
  });

  it('answers 401 UNAUTHENTICATED without a token, and for garbage, unknown and ended tokens', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    const started = await startAppSession(t, app, user.id);
    const [id] = started.token.split('.');
    const ended = await startAppSession(t, app, user.id);
    await t.authority.sessions.revokeSessions([ended.handle], { actor: 'admin', reason: 'admin_revoked' });

    expectError(await t.app.inject({ method: 'GET', url: '/v1/whoami' }), 401, 'UNAUTHENTICATED');
    const bad = ['garbage', 'a.b.c', `${id}.wrongsecretwrongsecretwrongsecret`, 'unknownid1234567.unknownsecret12345678', ended.token, '', `${started.token}x`];
    for (const token of bad) {
      for (const via of ['bearer', 'header', 'cookie'] as const) {
        if (token === '' && via !== 'bearer') continue; // an empty header or cookie is simply absent
        const res = await t.app.inject({
          method: 'GET',
          url: '/v1/whoami',
          ...(via === 'bearer' ? { headers: bearer(token) } : via === 'header' ? { headers: { 'x-session-token': token } } : { cookies: { tessera_session: token } }),
        });
        expectError(res, 401, 'UNAUTHENTICATED');
      }
    }
    expect(await whoamiStatus(t, started.token)).toBe(200);
  });

  it('an app asking with its client credentials joins the session; a wrong secret → 401 INVALID_CLIENT', async () => {
    const site = await createApp(t);
    const forum = await createApp(t, { trusted: false });
    const { user } = await createUser(t);
    const started = await startAppSession(t, site, user.id);
    const wrong = await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: basicAuth(forum.clientId, 'wrong'), 'x-session-token': started.token } });
    expectError(wrong, 401, 'INVALID_CLIENT');
    const res = await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: forum.basic, 'x-session-token': started.token } });
    expect(res.statusCode).toBe(200);
    const apps = res.json<{ session: SessionJson }>().session.apps.map((a) => a.client_id);
    expect(apps.sort()).toEqual([site.clientId, forum.clientId].sort());
    const stored = await t.store.findSessionByHandle(started.handle);
    expect(stored!.apps.map((a) => a.clientId).sort()).toEqual([site.clientId, forum.clientId].sort());
  });

  it('an app that already joined costs no write on its next whoami; after leaving (scope app) it joins again', async () => {
    const site = await createApp(t);
    const forum = await createApp(t, { trusted: false });
    const { user } = await createUser(t);
    const started = await startAppSession(t, site, user.id);
    // Count the store's join writes (a recording wrapper around the real store method).
    const realJoin = t.store.joinSession.bind(t.store);
    let joins = 0;
    t.store.joinSession = (...args) => {
      joins += 1;
      return realJoin(...args);
    };
    const whoami = () => t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: forum.basic, 'x-session-token': started.token } });
    for (let i = 0; i < 5; i++) expect((await whoami()).statusCode).toBe(200);
    expect(joins).toBe(1);
    const joinedAt = (await t.store.findSessionByHandle(started.handle))!.apps.find((a) => a.clientId === forum.clientId)!.joinedAt;

    expect((await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: forum.basic }, payload: { token: started.token, scope: 'app' } })).statusCode).toBe(200);
    const left = (await t.store.findSessionByHandle(started.handle))!.apps.find((a) => a.clientId === forum.clientId)!;
    expect(left.leftAt).not.toBeNull();
    t.clock.advance(1000);
    const again = await whoami();
    expect(again.statusCode).toBe(200);
    expect(joins).toBe(2);
    const rejoined = (await t.store.findSessionByHandle(started.handle))!.apps.find((a) => a.clientId === forum.clientId)!;
    expect(rejoined.leftAt).toBeNull();
    expect(rejoined.joinedAt).toBeGreaterThan(joinedAt);
  });

  it('answers 401 once the user is disabled, although the session was not presented since', async () => {
    const app = await createApp(t);
    const { user } = await createUser(t);
    const started = await startAppSession(t, app, user.id);
    await t.store.updateUser(user.id, { disabled: true, updatedAt: t.clock.now() });
    expect(await whoamiStatus(t, started.token)).toBe(401);
  });
});
