// Security hardening, item 11 (issue 16): only a verified email reaches the shared
// session-sharing cookie, checked against the lookup nodebb-plugin-session-sharing really
// makes (support/session-sharing-standin.ts): a cookie email found in the forum's
// `email:uid` index signs the bearer in as that forum user. On SQLite and PostgreSQL.
import { jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { START, adminRequest, createApp, createTestServer, loginWithForm, setCookie, unique, type TestServer } from '../../packages/server/test/support.js';
import { STORE_KINDS, storeOptions } from '../../packages/server/test/store-kinds.js';
import { createForum, findUser } from './support/session-sharing-standin.js';

const SECRET = 'shared-cookie-secret-0123456789-abcdefghij';
const FORUM_ADMIN_EMAIL = 'Admin@Forum.example';
const PASSWORD = 'correct horse battery staple';

describe.each(STORE_KINDS)('shared cookie email and session-sharing account matching (%s)', (kind) => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer({ ...(await storeOptions(kind)), file: { cookie: { domain: '.example.test' }, sharedCookie: { enabled: true, secret: SECRET } } });
  });
  afterEach(async () => t.close());

  /** Signs in through the hosted login page and returns the shared cookie's payload, verified as the plugin does (HS256). */
  async function sharedPayload(username: string): Promise<Record<string, unknown>> {
    const { res } = await loginWithForm(t, { username, password: PASSWORD });
    expect(res.statusCode, res.body).toBe(303);
    const cookie = setCookie(res, 'token');
    expect(cookie?.value).toBeTruthy();
    const { payload } = await jwtVerify(cookie!.value, new TextEncoder().encode(SECRET), { algorithms: ['HS256'], currentDate: new Date(START) });
    return payload as Record<string, unknown>;
  }

  it('a user a trusted app created from claims with the forum admin’s email (unverified) is NOT signed in as the forum admin', async () => {
    const site = await createApp(t, { name: 'site' });
    const username = unique('mallory');
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: site.basic }, payload: { user: { username, email: FORUM_ADMIN_EMAIL.toLowerCase() } } });
    expect(res.statusCode, res.body).toBe(201);
    const created = res.json<{ user: { id: string; email_verified: boolean } }>().user;
    expect(created.email_verified).toBe(false);
    // The user gets a password (e.g. by the admin) and signs in on the login page.
    expect((await adminRequest(t, 'PATCH', `/users/${created.id}`, { password: PASSWORD })).statusCode).toBe(200);
    const payload = await sharedPayload(username);
    expect(payload.email).toBeUndefined();
    const forum = createForum(FORUM_ADMIN_EMAIL);
    const uid = findUser(forum, payload);
    expect(uid).not.toBe(1);
    expect(forum.users.get(uid)?.username).toBe(username);
    expect(forum.log).toEqual([]);
  });

  it('the stand-in is the dangerous lookup: the same cookie WITH that email is signed in as the forum admin (why only verified emails go out)', () => {
    const forum = createForum(FORUM_ADMIN_EMAIL);
    expect(findUser(forum, { id: 'usr_x', username: 'mallory', email: 'admin@forum.example' })).toBe(1);
  });

  it('a verified email (admin API) is in the cookie and merges with the forum account of that email', async () => {
    const username = unique('alice');
    const created = await adminRequest(t, 'POST', '/users', { username, email: FORUM_ADMIN_EMAIL, email_verified: true, password: PASSWORD });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json<{ user: { email_verified: boolean } }>().user.email_verified).toBe(true);
    const payload = await sharedPayload(username);
    expect(payload.email).toBe(FORUM_ADMIN_EMAIL);
    expect(findUser(createForum(FORUM_ADMIN_EMAIL), payload)).toBe(1);
  });

  it('a trusted app that says email_verified: true is taken at its word', async () => {
    const site = await createApp(t, { name: 'site' });
    const username = unique('bob');
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: site.basic }, payload: { user: { username, email: `${username}@example.test`, email_verified: true } } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<{ user: { email_verified: boolean } }>().user.email_verified).toBe(true);
  });

  it('an untrusted app cannot assert anything (403 APP_NOT_TRUSTED, no user created)', async () => {
    const widget = await createApp(t, { name: 'widget', trusted: false });
    const username = unique('eve');
    const res = await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: widget.basic }, payload: { user: { username, email: `${username}@example.test`, email_verified: true } } });
    expect(res.statusCode).toBe(403);
    expect(await t.store.findUserByLogin(username)).toBeNull();
  });

  it('changing the email makes it unverified again unless the same change says otherwise; verifying needs an email', async () => {
    const username = unique('carol');
    const created = await adminRequest(t, 'POST', '/users', { username, email: `${username}@example.test`, email_verified: true, password: PASSWORD });
    const id = created.json<{ user: { id: string } }>().user.id;
    const patch = async (body: object) => (await adminRequest(t, 'PATCH', `/users/${id}`, body)).json<{ user: { email_verified: boolean } }>().user.email_verified;
    expect(await patch({ first_name: 'Carol' })).toBe(true);
    expect(await patch({ email: `${username}+new@example.test` })).toBe(false);
    expect((await sharedPayload(username)).email).toBeUndefined();
    expect(await patch({ email_verified: true })).toBe(true);
    expect((await sharedPayload(username)).email).toBe(`${username}+new@example.test`);
    expect(await patch({ email: `${username}+third@example.test`, email_verified: true })).toBe(true);
    expect(await patch({ email: null })).toBe(false);
    const res = await adminRequest(t, 'PATCH', `/users/${id}`, { email_verified: true });
    expect(res.json()).toMatchObject({ error: 'INVALID_REQUEST' });
    expect(res.statusCode).toBe(400);
    // Never true by default; a claim of verified without an email stays false.
    const bare = await adminRequest(t, 'POST', '/users', { username: unique('dave'), email_verified: true });
    expect(bare.json<{ user: { email_verified: boolean } }>().user.email_verified).toBe(false);
    const plain = await adminRequest(t, 'POST', '/users', { username: unique('erin'), email: `${unique('erin')}@example.test` });
    expect(plain.json<{ user: { email_verified: boolean } }>().user.email_verified).toBe(false);
  });
});
