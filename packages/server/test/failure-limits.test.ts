// Only failures are counted, and a right credential is never refused because of someone
// else's failures: sign-ins per address and per account, admin tokens per address, client
// secrets per address and per client id. Rate limits ON at their defaults.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  basicAuth,
  bearer,
  createApp,
  createTestServer,
  createUser,
  createUserWithSessions,
  expectError,
  loginWithForm,
  openLoginForm,
  postLogin,
  type TestServer,
} from './support.js';

let t: TestServer;
beforeEach(async () => {
  t = await createTestServer({ file: { rateLimit: { enabled: true } } });
});
afterEach(async () => t.close());

/** The hosted form's answer to a sign-in past a limit: its page with status 429 and Retry-After. */
function expectLimitedPage(res: Awaited<ReturnType<typeof postLogin>>): void {
  expect(res.statusCode, res.body).toBe(429);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.body).toContain('Too many failed sign-ins');
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
}

/** One sign-in attempt through the form from `ip`. */
async function attempt(username: string, password: string, ip: string) {
  const form = await openLoginForm(t);
  return postLogin(t, { fields: { username, password, csrf: form.csrf }, cookies: { tessera_csrf: form.csrfCookie }, remoteAddress: ip });
}

describe('sign-in limits', () => {
  it('one address with many users is not locked out: 100 sign-ins from one address all succeed (the old limit refused the 11th)', async () => {
    const ip = '198.51.100.20';
    for (let i = 0; i < 100; i += 1) {
      const { user, password } = await createUser(t);
      // A typo now and then, under the address limit.
      if (i % 10 === 0) expect((await attempt(user.username, 'not the password', ip)).statusCode).toBe(401);
      const { res, token } = await loginWithForm(t, { username: user.username, password, remoteAddress: ip });
      expect(res.statusCode, `sign-in #${i}`).toBe(303);
      expect(token).not.toBeNull();
    }
  }, 120_000);

  it('one account cannot be brute-forced from many addresses: past loginAccountMax it is refused before the password is checked', async () => {
    const { user, password } = await createUser(t);
    const bystander = await createUser(t);
    expect(t.config.rateLimit.loginAccountMax).toBe(10);
    for (let i = 0; i < 10; i += 1) expect((await attempt(user.username, `guess ${i}`, `203.0.113.${i + 1}`)).statusCode).toBe(401);
    // The right password from a fresh address: refused, no session (the guesser cannot tell it was right).
    const refused = await attempt(user.username, password, '203.0.113.200');
    expectLimitedPage(refused);
    expect(refused.cookies.find((c) => c.name === t.config.cookie.name)).toBeUndefined();
    // Case does not make a new account key.
    expectLimitedPage(await attempt(user.username.toUpperCase(), password, '203.0.113.201'));
    // Other accounts from the same addresses are not affected.
    expect((await loginWithForm(t, { username: bystander.user.username, password: bystander.password, remoteAddress: '203.0.113.1' })).res.statusCode).toBe(303);
    // After the window the account signs in again, and a success forgets its earlier typos.
    t.clock.advance(61_000);
    for (let i = 0; i < 9; i += 1) await attempt(user.username, `typo ${i}`, '203.0.113.50');
    expect((await loginWithForm(t, { username: user.username, password, remoteAddress: '203.0.113.50' })).res.statusCode).toBe(303);
    for (let i = 0; i < 9; i += 1) expect((await attempt(user.username, `typo again ${i}`, '203.0.113.51')).statusCode).toBe(401);
  });

  it('one address cannot spray many accounts: past loginMax failures its sign-ins are refused; other addresses are not', async () => {
    expect(t.config.rateLimit.loginMax).toBe(30);
    const ip = '198.51.100.30';
    for (let i = 0; i < 30; i += 1) expect((await attempt(`nobody${i}`, 'password1', ip)).statusCode).toBe(401);
    const { user, password } = await createUser(t);
    expectLimitedPage(await attempt(user.username, password, ip));
    expect((await loginWithForm(t, { username: user.username, password, remoteAddress: '198.51.100.31' })).res.statusCode).toBe(303);
  });

  it('POST /v1/password: wrong current passwords count per account; the right one is refused once over the limit', async () => {
    const { sessions, password } = await createUserWithSessions(t, 1);
    const change = (current: string, ip: string) => t.app.inject({ method: 'POST', url: '/v1/password', headers: bearer(sessions[0]!.token), payload: { current_password: current, new_password: 'a brand new passphrase' }, remoteAddress: ip });
    for (let i = 0; i < 10; i += 1) expectError(await change(`guess ${i}`, `192.0.2.${i + 1}`), 401, 'INVALID_CREDENTIALS');
    expectError(await change(password, '192.0.2.100'), 429, 'RATE_LIMITED');
  });
});

describe('admin token and client secret limits', () => {
  it('wrong admin tokens: past credentialMax per address → 429; the right token from the same address always passes', async () => {
    expect(t.config.rateLimit.credentialMax).toBe(30);
    const ip = '198.51.100.40';
    const codes: string[] = [];
    for (let i = 0; i < 200; i += 1) {
      const res = await t.app.inject({ method: 'GET', url: '/admin/api/apps', headers: bearer(`wrong-admin-token-${i}-0123456789abcdefghij`), remoteAddress: ip });
      codes.push(res.json().error);
      // The right token in between is never refused.
      if (i % 50 === 49) expect((await t.app.inject({ method: 'GET', url: '/admin/api/apps', headers: bearer(ADMIN_TOKEN), remoteAddress: ip })).statusCode).toBe(200);
    }
    expect(codes.slice(0, 30).every((c) => c === 'INVALID_ADMIN_TOKEN')).toBe(true);
    expect(codes.slice(30).every((c) => c === 'RATE_LIMITED')).toBe(true);
    const limited = await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer('still-wrong-admin-token-0123456789abcdef'), remoteAddress: ip });
    expectError(limited, 429, 'RATE_LIMITED');
    expect(limited.headers['retry-after']).toBeDefined();
    // No token at all is not a guess: 401, not counted, not refused.
    expectError(await t.app.inject({ method: 'GET', url: '/admin/api/apps', remoteAddress: '198.51.100.41' }), 401, 'INVALID_ADMIN_TOKEN');
    // Another address is not limited.
    expectError(await t.app.inject({ method: 'GET', url: '/admin/api/apps', headers: bearer('wrong-admin-token-elsewhere-0123456789'), remoteAddress: '198.51.100.42' }), 401, 'INVALID_ADMIN_TOKEN');
  });

  it('wrong client secrets: past clientMax per client id (from any address) → 429; the right secret always passes', async () => {
    const app = await createApp(t);
    const { sessions } = await createUserWithSessions(t, 1, app);
    const codes: string[] = [];
    for (let i = 0; i < 100; i += 1) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/revocations', headers: { authorization: basicAuth(app.clientId, `wrong-secret-${i}`) }, remoteAddress: `10.0.${i}.1` });
      codes.push(res.json().error);
    }
    expect(codes.slice(0, 30).every((c) => c === 'INVALID_CLIENT')).toBe(true);
    expect(codes.slice(30).every((c) => c === 'RATE_LIMITED')).toBe(true);
    // The app itself is never locked out, on any route, from any address.
    expect((await t.app.inject({ method: 'GET', url: '/v1/revocations', headers: { authorization: app.basic }, remoteAddress: '10.0.0.1' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: app.basic, 'x-session-token': sessions[0]!.token } })).statusCode).toBe(200);
    // A wrong secret on whoami counts too.
    expectError(await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: basicAuth(app.clientId, 'nope'), 'x-session-token': sessions[0]!.token } }), 429, 'RATE_LIMITED');
  });

  it('wrong client secrets for many client ids from one address: past credentialMax → 429', async () => {
    const ip = '198.51.100.50';
    const codes: string[] = [];
    for (let i = 0; i < 40; i += 1) codes.push((await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: basicAuth(`client-${i}`, 'secret'), 'content-type': 'text/plain' }, payload: 'x.y', remoteAddress: ip })).json().error);
    expect(codes.slice(0, 30).every((c) => c === 'INVALID_CLIENT')).toBe(true);
    expect(codes.slice(30).every((c) => c === 'RATE_LIMITED')).toBe(true);
    const app = await createApp(t);
    expect((await t.app.inject({ method: 'GET', url: '/v1/revocations', headers: { authorization: app.basic }, remoteAddress: ip })).statusCode).toBe(200);
  });
});
