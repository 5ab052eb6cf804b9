// Security hardening, item 6 (issue 16): names shown to operators — usernames, first and
// last names, emails, app names — are stored in Unicode NFC and refused (400 INVALID_NAME)
// when they hold control, bidirectional or invisible characters, by one rule in core that
// every path uses: the admin API, the CLI, and a trusted app's POST /v1/sessions claims.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshSchemaUrl, postgresTestUrl } from '../../store/test/pg-support.js';
import { runCliCaptured } from './cli-support.js';
import { adminRequest, createApp, createTestServer, createUser, expectError, loginWithForm, unique, type TestApp, type TestServer } from './support.js';
import { STORE_KINDS, storeOptions } from './store-kinds.js';

// Each of these, anywhere in a name, is refused.
const BAD: Array<[string, string]> = [
  ['NUL', '\u0000'],
  ['a newline', '\n'],
  ['escape', '\u001B'],
  ['DEL', '\u007F'],
  ['a C1 control', '\u0085'],
  ['LRE', '\u202A'],
  ['RLO (right-to-left override)', '\u202E'],
  ['LRI', '\u2066'],
  ['PDI', '\u2069'],
  ['RLM', '\u200F'],
  ['zero-width space', '\u200B'],
  ['zero-width joiner', '\u200D'],
  ['word joiner', '\u2060'],
  ['BOM / zero-width no-break space', '\uFEFF'],
];

describe.each(STORE_KINDS)('names (%s)', (kind) => {
  let t: TestServer;
  let site: TestApp;
  beforeEach(async () => {
    t = await createTestServer(await storeOptions(kind));
    site = await createApp(t, { name: 'site' });
  });
  afterEach(async () => t.close());

  const startWithClaims = (user: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: site.basic }, payload: { user } });

  for (const [what, char] of BAD) {
    it(`refuses a username with ${what}: admin API create and rename, trusted app claims (400 INVALID_NAME)`, async () => {
      const name = `ad${char}min${unique('')}`;
      expectError(await adminRequest(t, 'POST', '/users', { username: name, password: 'long enough password' }), 400, 'INVALID_NAME');
      const { user } = await createUser(t);
      expectError(await adminRequest(t, 'PATCH', `/users/${user.id}`, { username: name }), 400, 'INVALID_NAME');
      expectError(await startWithClaims({ username: name }), 400, 'INVALID_NAME');
      // Nothing was created or renamed.
      expect((await adminRequest(t, 'GET', `/users/${user.id}`)).json<{ user: { username: string } }>().user.username).toBe(user.username);
      expect((await adminRequest(t, 'GET', `/users/${user.id}/sessions`)).statusCode).toBe(200);
    });
  }

  it('a login or a client id with a NUL matches nobody: 401, never a 500 (PostgreSQL refuses NUL parameters)', async () => {
    const login = await loginWithForm(t, { username: 'ad\u0000min', password: 'long enough password' });
    expect(login.res.statusCode).toBe(401);
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(`${site.clientId}\u0000`)}:${encodeURIComponent(site.clientSecret)}`).toString('base64')}`;
    expectError(await t.app.inject({ method: 'GET', url: '/v1/revocations', headers: { authorization: basic } }), 401, 'INVALID_CLIENT');
  });

  it('refuses the same characters in first and last names, emails and app names', async () => {
    const { user } = await createUser(t);
    for (const field of ['first_name', 'last_name', 'email']) {
      expectError(await adminRequest(t, 'POST', '/users', { username: unique('u'), [field]: `x\u202Ey${field === 'email' ? '@example.test' : ''}` }), 400, 'INVALID_NAME');
      expectError(await adminRequest(t, 'PATCH', `/users/${user.id}`, { [field]: `x\u200By${field === 'email' ? '@example.test' : ''}` }), 400, 'INVALID_NAME');
      expectError(await startWithClaims({ username: unique('claims'), [field]: `x\u0000y${field === 'email' ? '@example.test' : ''}` }), 400, 'INVALID_NAME');
    }
    expectError(await adminRequest(t, 'POST', '/apps', { name: 'For\u202Eum' }), 400, 'INVALID_NAME');
    expectError(await adminRequest(t, 'PATCH', `/apps/${site.clientId}`, { name: 'Si\u2066te' }), 400, 'INVALID_NAME');
  });

  it('stores names in NFC: a decomposed username is the same user as the composed one, and signs in either way', async () => {
    const composed = `Jos\u00E9${unique('')}`;
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    const created = await adminRequest(t, 'POST', '/users', { username: decomposed, first_name: 'Rene\u0301e', password: 'long enough password' });
    expect(created.statusCode, created.body).toBe(201);
    const user = created.json<{ user: { id: string; username: string; first_name: string } }>().user;
    expect(user.username).toBe(composed);
    expect(user.first_name).toBe('Ren\u00E9e');
    // The same name in the other form is taken, not a second look-alike account.
    expectError(await adminRequest(t, 'POST', '/users', { username: composed }), 409, 'USER_CONFLICT');
    // A trusted app's claims in either form find the same user.
    const res = await startWithClaims({ username: decomposed });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<{ user: { id: string } }>().user.id).toBe(user.id);
    // Login with either form.
    for (const typed of [composed, decomposed]) expect((await loginWithForm(t, { username: typed, password: 'long enough password' })).token).not.toBeNull();
  });

  it('a user stored before names were normalised (decomposed) is still found as typed: login works, claims do not make a twin', async () => {
    const legacy = `Mu\u0308ller${unique('')}`; // "Müller" with a combining diaeresis
    const { user } = await createUser(t, { username: unique('tmp'), password: 'long enough password' });
    // As an older version stored it: straight to the store, not NFC.
    await t.store.updateUser(user.id, { username: legacy, updatedAt: t.clock.now() });
    expect((await loginWithForm(t, { username: legacy, password: 'long enough password' })).token).not.toBeNull();
    const res = await startWithClaims({ username: legacy });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<{ user: { id: string } }>().user.id).toBe(user.id);
  });

  it('accepts ordinary non-ASCII names (scripts, emoji, right-to-left letters without overrides)', async () => {
    for (const username of ['Zoë', '李小龙', 'משה', 'محمد', 'Ødegaard', 'cat🐈']) {
      const res = await adminRequest(t, 'POST', '/users', { username: `${username}${unique('')}` });
      expect(res.statusCode, res.body).toBe(201);
    }
  });
});

describe.each(STORE_KINDS)('names and email_verified through the CLI (%s)', (kind) => {
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    if (kind === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'tessera-names-'));
      env = { TESSERA_DATA_DIR: dir, TESSERA_LOG_LEVEL: 'silent' };
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
    } else {
      const schema = await freshSchemaUrl((await postgresTestUrl())!);
      env = { TESSERA_DATABASE_URL: schema.url, TESSERA_LOG_LEVEL: 'silent' };
      cleanup = () => schema.drop();
    }
  });
  afterEach(async () => cleanup());

  it('users create and apps create refuse the same characters with the same code; NFC is stored', async () => {
    for (const [, char] of BAD.filter(([what]) => what !== 'NUL')) {
      // (A NUL cannot be passed in a process argument at all.)
      const run = await runCliCaptured(['users', 'create', '--username', `ad${char}min`], env);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/INVALID_NAME|control, bidirectional or invisible/);
      const app = await runCliCaptured(['apps', 'create', '--name', `For${char}um`], env);
      expect(app.code).not.toBe(0);
      expect(app.stderr).toMatch(/INVALID_NAME|control, bidirectional or invisible/);
    }
    const ok = await runCliCaptured(['users', 'create', '--username', 'Jose\u0301', '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).user.username).toBe('Jos\u00E9');
  });

  it('users create --email-verified and users verify-email [--unverified] set the flag; never verified by default (item 11)', async () => {
    const plain = await runCliCaptured(['users', 'create', '--username', 'plain', '--email', 'plain@example.test', '--json'], env);
    expect(plain.code, plain.stderr).toBe(0);
    const plainUser = JSON.parse(plain.stdout).user as { id: string; email_verified: boolean };
    expect(plainUser.email_verified).toBe(false);
    const checked = await runCliCaptured(['users', 'create', '--username', 'checked', '--email', 'checked@example.test', '--email-verified', '--json'], env);
    expect(checked.code, checked.stderr).toBe(0);
    expect(JSON.parse(checked.stdout).user.email_verified).toBe(true);
    const verify = await runCliCaptured(['users', 'verify-email', '--id', plainUser.id, '--json'], env);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout).user.email_verified).toBe(true);
    const unverify = await runCliCaptured(['users', 'verify-email', '--id', plainUser.id, '--unverified'], env);
    expect(unverify.code, unverify.stderr).toBe(0);
    expect(unverify.stdout).toMatch(/is now not verified/);
    const noEmail = await runCliCaptured(['users', 'create', '--username', 'noemail', '--email-verified'], env);
    expect(noEmail.code).not.toBe(0);
    expect(noEmail.stderr).toMatch(/--email-verified needs --email/);
  });
});
