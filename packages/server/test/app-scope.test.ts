// Security hardening, items 1 and 2 (issue 16): a dead session token has no power on any
// scope of the server-to-server logout, the scope an app may act on is decided in one place
// (core's requireAppMay) for every route, and an app that left a session is no longer a
// member of it on any app-authenticated route.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
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
import { STORE_KINDS, storeOptions } from './store-kinds.js';

describe.each(STORE_KINDS)('app scope and membership (%s)', (kind) => {
  let t: TestServer;
  let trusted: TestApp;
  let untrusted: TestApp;
  beforeEach(async () => {
    t = await createTestServer(await storeOptions(kind));
    trusted = await createApp(t, { name: 'site' });
    untrusted = await createApp(t, { name: 'widget', trusted: false });
  });
  afterEach(async () => t.close());

  const logout = (app: TestApp, token: string, scope?: string) =>
    t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic }, payload: scope === undefined ? { token } : { token, scope } });

  describe('item 1: a dead token is a no-op for every scope', () => {
    for (const scope of ['app', 'session', 'user'] as const) {
      for (const caller of ['trusted', 'untrusted'] as const) {
        it(`scope ${scope}, ${caller} app: an ended token ends nothing else (200, no log entry)`, async () => {
          const app = caller === 'trusted' ? trusted : untrusted;
          const { user } = await createUser(t);
          const dead = await startAppSession(t, trusted, user.id);
          const alive = await startAppSession(t, trusted, user.id);
          expect((await logout(trusted, dead.token, 'session')).statusCode).toBe(200);
          const before = (await revocationLog(t)).length;
          const res = await logout(app, dead.token, scope);
          expect(res.statusCode, res.body).toBe(200);
          expect(await whoamiStatus(t, alive.token)).toBe(200);
          expect(await revocationLog(t)).toHaveLength(before);
        });
      }
    }

    it('a token past its idle deadline is dead too: scope user ends only that session (lazily, as expired)', async () => {
      const { user } = await createUser(t);
      const stale = await startAppSession(t, trusted, user.id);
      t.clock.advance(t.config.session.idleTimeoutSeconds * 1000 - 1000);
      const alive = await startAppSession(t, trusted, user.id);
      t.clock.advance(2000);
      const res = await logout(trusted, stale.token, 'user');
      expect(res.statusCode).toBe(200);
      expect(await whoamiStatus(t, alive.token)).toBe(200);
      expect((await revocationLog(t)).map((e) => [e.sid, e.reason])).toEqual([[stale.handle, 'expired']]);
    });

    it('an unknown token is still 403 TOKEN_INVALID', async () => {
      expectError(await logout(trusted, 'abc.def', 'user'), 403, 'TOKEN_INVALID');
    });

    it('a live token with scope user from a trusted app ends every session of the user', async () => {
      const { user } = await createUser(t);
      const a = await startAppSession(t, trusted, user.id);
      const b = await startAppSession(t, trusted, user.id);
      expect((await logout(trusted, a.token, 'user')).statusCode).toBe(200);
      expect(await whoamiStatus(t, a.token)).toBe(401);
      expect(await whoamiStatus(t, b.token)).toBe(401);
    });

    it('an untrusted app gets no user-wide end (403 APP_NOT_TRUSTED, as on DELETE /api/v1/users/:id/sessions); the token’s own session still ends', async () => {
      const { user } = await createUser(t);
      const held = await startAppSession(t, trusted, user.id);
      const other = await startAppSession(t, trusted, user.id);
      expectError(await t.app.inject({ method: 'DELETE', url: `/api/v1/users/${user.id}/sessions`, headers: { authorization: untrusted.basic } }), 403, 'APP_NOT_TRUSTED');
      expectError(await logout(untrusted, held.token, 'user'), 403, 'APP_NOT_TRUSTED');
      // A logout is never refused: the session whose token the app holds has ended…
      expect(await whoamiStatus(t, held.token)).toBe(401);
      // …but no other session of the user.
      expect(await whoamiStatus(t, other.token)).toBe(200);
      expect((await revocationLog(t)).map((e) => e.sid)).toEqual([held.handle]);
    });
  });

  describe('item 2: an app that left a session is not a member of it', () => {
    async function joinedThenLeft() {
      const { user } = await createUser(t);
      const s = await startAppSession(t, trusted, user.id);
      await t.authority.sessions.joinSession(await storedSession(t, s.handle), untrusted.clientId);
      expect((await logout(untrusted, s.token, 'app')).statusCode).toBe(200);
      return s;
    }

    it('DELETE /api/v1/sessions/:handle by the departed app → 404, and the session goes on for the others', async () => {
      const s = await joinedThenLeft();
      const res = await t.app.inject({ method: 'DELETE', url: `/api/v1/sessions/${s.handle}`, headers: { authorization: untrusted.basic } });
      expectError(res, 404, 'SESSION_NOT_FOUND');
      expect(await whoamiStatus(t, s.token)).toBe(200);
      expect((await storedSession(t, s.handle)).endedAt).toBeNull();
    });

    it('the same app, while still a member, may end it (204)', async () => {
      const { user } = await createUser(t);
      const s = await startAppSession(t, trusted, user.id);
      await t.authority.sessions.joinSession(await storedSession(t, s.handle), untrusted.clientId);
      const res = await t.app.inject({ method: 'DELETE', url: `/api/v1/sessions/${s.handle}`, headers: { authorization: untrusted.basic } });
      expect(res.statusCode).toBe(204);
      expect(await whoamiStatus(t, s.token)).toBe(401);
    });

    it('an app that never joined → 404; a trusted app may end any session', async () => {
      const { user } = await createUser(t);
      const s = await startAppSession(t, trusted, user.id);
      expectError(await t.app.inject({ method: 'DELETE', url: `/api/v1/sessions/${s.handle}`, headers: { authorization: untrusted.basic } }), 404, 'SESSION_NOT_FOUND');
      const other = await createApp(t, { name: 'other-trusted' });
      expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/sessions/${s.handle}`, headers: { authorization: other.basic } })).statusCode).toBe(204);
    });

    it('a departed app presenting a spent refresh token cannot end the session for everyone (no theft verdict: INVALID_GRANT)', async () => {
      const { user } = await createUser(t);
      const s = await startAppSession(t, trusted, user.id);
      const first = await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: untrusted.basic }, payload: { grant_type: 'session_token', session_token: s.token } });
      const spent = first.json<{ refresh_token: string }>().refresh_token;
      const second = await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: untrusted.basic }, payload: { grant_type: 'refresh_token', refresh_token: spent } });
      expect(second.statusCode, second.body).toBe(200);
      expect((await logout(untrusted, s.token, 'app')).statusCode).toBe(200);
      expectError(await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: untrusted.basic }, payload: { grant_type: 'refresh_token', refresh_token: spent } }), 400, 'INVALID_GRANT');
      expect(await whoamiStatus(t, s.token)).toBe(200);
      expect((await storedSession(t, s.handle)).endedAt).toBeNull();
    });

    it('while a member, reuse of a spent refresh token still ends the session (theft)', async () => {
      const { user } = await createUser(t);
      const s = await startAppSession(t, trusted, user.id);
      const first = await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: untrusted.basic }, payload: { grant_type: 'session_token', session_token: s.token } });
      const spent = first.json<{ refresh_token: string }>().refresh_token;
      expect((await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: untrusted.basic }, payload: { grant_type: 'refresh_token', refresh_token: spent } })).statusCode).toBe(200);
      expectError(await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: untrusted.basic }, payload: { grant_type: 'refresh_token', refresh_token: spent } }), 401, 'REFRESH_TOKEN_REUSED');
      expect(await whoamiStatus(t, s.token)).toBe(401);
    });

    it('refresh and introspection agree: the departed app’s refresh token is refused and inactive', async () => {
      const { user } = await createUser(t);
      const s = await startAppSession(t, trusted, user.id);
      const pair = await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: untrusted.basic }, payload: { grant_type: 'session_token', session_token: s.token } });
      expect(pair.statusCode, pair.body).toBe(200);
      const { refresh_token: refreshToken, access_token: accessToken } = pair.json<{ refresh_token: string; access_token: string }>();
      expect((await logout(untrusted, s.token, 'app')).statusCode).toBe(200);
      for (const token of [refreshToken, accessToken]) {
        const res = await t.app.inject({ method: 'POST', url: '/v1/introspect', headers: { authorization: untrusted.basic }, payload: { token } });
        expect(res.json()).toEqual({ active: false });
      }
      expectError(await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: untrusted.basic }, payload: { grant_type: 'refresh_token', refresh_token: refreshToken } }), 400, 'INVALID_GRANT');
    });
  });
});
