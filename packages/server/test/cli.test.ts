import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createAuthority, loadConfig, systemClock, type Authority, type Store } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildServer } from '../src/app.js';
import { runCli } from '../src/cli/run-cli.js';
import { expectFailure, runCliCaptured, type Run } from './cli-support.js';
import { readConfig, startServer } from '../src/start.js';

/**
 * The `tessera` CLI, run in process through runCli against a SQLite file in a temp dir
 * (TESSERA_DATA_DIR), the way an operator runs it next to a server. The test opens the same
 * file through the core to set up sessions and to check what the CLI changed.
 */

let dir: string;
let env: Record<string, string>;
let opened: Array<{ close(): Promise<void> }>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
  env = { TESSERA_DATA_DIR: dir, TESSERA_LOG_LEVEL: 'silent' };
  opened = [];
});
afterEach(async () => {
  for (const thing of opened.reverse()) await thing.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[], options: { env?: Record<string, string>; stdin?: string; signals?: EventEmitter } = {}): Promise<Run> {
  return runCliCaptured(argv, { ...env, ...options.env }, options);
}

/** The core over the CLI's database file, as a second process would see it. */
function openCore(): { authority: Authority; store: Store } {
  const store = createSqliteStore(join(dir, 'tessera.db'));
  opened.push(store);
  return { store, authority: createAuthority({ store, config: loadConfig({ env }), clock: systemClock }) };
}

async function createUser(username = 'alice', password = 'correct horse battery'): Promise<string> {
  const run = await cli(['users', 'create', '--username', username, '--password', password, '--json']);
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { user: { id: string } }).user.id;
}

async function createApp(name = 'forum', ...extra: string[]): Promise<{ clientId: string; secret: string }> {
  const run = await cli(['apps', 'create', '--name', name, '--json', ...extra]);
  expect(run.code, run.stderr).toBe(0);
  const body = JSON.parse(run.stdout) as { app: { client_id: string }; client_secret: string };
  return { clientId: body.app.client_id, secret: body.client_secret };
}

/** Starts sessions for a user through the core (as logins would). */
async function startSessions(authority: Authority, userId: string, devices: Array<{ userAgent: string; ip?: string; clientId?: string }>) {
  const user = await authority.users.getUser(userId);
  const started = [];
  for (const d of devices) started.push(await authority.sessions.startSession(user, { ip: d.ip ?? '192.0.2.1', userAgent: d.userAgent }, d.clientId));
  return started;
}

describe('tessera help and usage errors', () => {
  it('--help lists every command and exits 0 without touching the database', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['start', 'migrate', 'apps create', 'apps list', 'apps rotate-secret', 'users create', 'users disable', 'users delete', 'sessions list', 'sessions revoke', 'admin-token create']) {
      expect(run.stdout).toContain(`  ${command} `);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a command\'s --help shows its options, required ones marked', async () => {
    const run = await cli(['users', 'create', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: tessera users create --username NAME \[options\]/);
    expect(run.stdout).toMatch(/--username NAME\s+Login name \(no spaces\) \(required\)/);
    expect(run.stdout).toContain('--password-stdin');
    expect(run.stdout).toContain('--json');
    expect((await cli(['sessions', '--help'])).stdout).toContain('sessions revoke');
  });

  it('an unknown command, subcommand or option, a missing value or flag is a usage error (exit 2)', async () => {
    expectFailure(await cli(['frobnicate']), 2, 'tessera: unknown command "frobnicate" (see: tessera --help)');
    expectFailure(await cli(['users', 'frob']), 2, 'tessera: users: unknown command "frob" (see: tessera users --help)');
    expectFailure(await cli(['users', 'create', '--usernam', 'x']), 2, 'tessera: users create: unknown option --usernam (see: tessera users create --help)');
    expectFailure(await cli(['users', 'create', '--username']), 2, 'tessera: users create: option --username needs a value (see: tessera users create --help)');
    expectFailure(await cli(['users', 'create']), 2, 'tessera: users create: missing --username (see: tessera users create --help)');
    expectFailure(await cli(['users', 'disable', 'alice']), 2, 'tessera: users disable: unexpected argument "alice" (see: tessera users disable --help)');
    expectFailure(await cli(['apps', 'create', '--name', 'x', '--trusted=no']), 2, 'tessera: apps create: option --trusted takes no value (see: tessera apps create --help)');
    expectFailure(await cli(['sessions', 'revoke']), 2, /give either --handle or --user/);
    expectFailure(await cli(['sessions', 'revoke', '--handle', 'ses_x', '--user', 'u']), 2, /give either --handle or --user/);
    expectFailure(await cli(['sessions', 'revoke', '--handle', 'ses_x', '--except', 'ses_y']), 2, /--app and --except go with --user/);
    expect((await cli(['users'])).code).toBe(2);
  });

  it('a bad configuration value names the key and the variable (exit 1)', async () => {
    expectFailure(await cli(['apps', 'list'], { env: { TESSERA_PORT: 'abc' } }), 1, /^tessera: apps list: Invalid configuration port \(TESSERA_PORT\): /);
    expectFailure(await cli(['migrate'], { env: { TESSERA_COOKIE_SECURE: 'false', TESSERA_ISSUER: 'http://auth.example.com' } }), 1, /^tessera: migrate: Invalid configuration cookie\.secure \(TESSERA_COOKIE_SECURE\): /);
    expectFailure(await cli(['apps', 'list', '--config', join(dir, 'missing.json')]), 1, /^tessera: apps list: Invalid configuration \(file\): cannot read .*missing\.json/);
  });

  it('--config FILE is read, and the environment wins over it', async () => {
    const other = join(dir, 'other');
    writeFileSync(join(dir, 'tessera.json'), JSON.stringify({ dataDir: other }));
    const run = await cli(['migrate', '--config', join(dir, 'tessera.json'), '--json'], { env: { TESSERA_DATA_DIR: '' } });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ database: `sqlite, ${join(other, 'tessera.db')}`, applied: [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13] });
    expect(readdirSync(other)).toContain('tessera.db');
    const envWins = await cli(['migrate', '--config', join(dir, 'tessera.json'), '--json']);
    expect(JSON.parse(envWins.stdout).database).toBe(`sqlite, ${join(dir, 'tessera.db')}`);
  });
});

describe('tessera migrate', () => {
  it('applies the schema once and then says it is up to date', async () => {
    const first = await cli(['migrate']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^Applied migrations 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13 \(sqlite, .*tessera\.db\); schema is up to date\.\n$/);
    const again = await cli(['migrate']);
    expect(again.stdout).toBe(`Schema is up to date (sqlite, ${join(dir, 'tessera.db')}).\n`);
  });
});

describe('tessera apps', () => {
  it('create prints the client id and the secret once; the secret authenticates the app', async () => {
    const run = await cli(['apps', 'create', '--name', 'forum', '--trusted', '--origin', 'https://forum.example', '--origin', 'https://www.forum.example', '--return-url', 'https://forum.example/', '--backchannel-uri', 'https://forum.example/bcl']);
    expect(run.code, run.stderr).toBe(0);
    const clientId = /client_id:\s+(\S+)/.exec(run.stdout)?.[1];
    const secret = /client_secret:\s+(\S+)/.exec(run.stdout)?.[1];
    expect(clientId).toMatch(/^app_/);
    expect(secret).toBeDefined();
    expect(run.stdout).toContain('shown only this once');
    expect(run.stdout.split(secret!)).toHaveLength(2);

    const { authority } = openCore();
    const app = await authority.apps.authenticateApp(clientId!, secret!);
    expect(app).toMatchObject({ name: 'forum', trusted: true, allowedOrigins: ['https://forum.example', 'https://www.forum.example'], returnUrls: ['https://forum.example/'], backchannelLogoutUri: 'https://forum.example/bcl' });

    const list = await cli(['apps', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^CLIENT_ID\\s+NAME\\s+TRUSTED.*\\n${clientId}\\s+forum\\s+yes\\s+https://forum.example,https://www.forum.example\\s`));
    expect(list.stdout).not.toContain(secret);
    const json = await cli(['apps', 'list', '--json']);
    expect(JSON.parse(json.stdout).apps.map((a: { client_id: string }) => a.client_id)).toEqual([clientId]);
    expect(json.stdout).not.toContain(secret);
    // No secret-like field; the OIDC auth method's value (client_secret_basic) names a method, not a secret.
    expect(json.stdout.replace(/"client_secret_(basic|post)"/g, '')).not.toMatch(/secret/i);
  });

  it('create takes the OIDC client metadata; bad values are named by their flag', async () => {
    const made = await cli(['apps', 'create', '--name', 'wiki', '--redirect-uri', 'https://wiki.example/cb', '--redirect-uri', 'https://wiki.example/cb2', '--post-logout-redirect-uri', 'https://wiki.example/bye', '--token-endpoint-auth-method', 'none', '--backchannel-session-required', '--id-token-alg', 'ES256', '--grant-type', 'authorization_code', '--json']);
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout).app).toMatchObject({ redirect_uris: ['https://wiki.example/cb', 'https://wiki.example/cb2'], post_logout_redirect_uris: ['https://wiki.example/bye'], token_endpoint_auth_method: 'none', backchannel_logout_session_required: true, id_token_signed_response_alg: 'ES256', grant_types: ['authorization_code'] });
    const bad = await cli(['apps', 'create', '--name', 'x', '--token-endpoint-auth-method', 'private_key_jwt']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--token-endpoint-auth-method');
  });

  it('register takes the standard OIDC client metadata names (the kebab-case flags stay as aliases)', async () => {
    const made = await cli(['apps', 'register', '--client_name', 'Wiki', '--client-id', 'wiki', '--redirect_uris', 'https://wiki.example/cb', '--redirect_uris', 'https://wiki.example/cb2', '--post_logout_redirect_uris', 'https://wiki.example/bye', '--grant_types', 'authorization_code', '--token_endpoint_auth_method', 'none', '--backchannel_logout_uri', 'https://wiki.example/bcl', '--backchannel_logout_session_required', '--id_token_signed_response_alg', 'ES256', '--json']);
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout).app).toMatchObject({ client_id: 'wiki', name: 'Wiki', redirect_uris: ['https://wiki.example/cb', 'https://wiki.example/cb2'], post_logout_redirect_uris: ['https://wiki.example/bye'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', backchannel_logout_uri: 'https://wiki.example/bcl', backchannel_logout_session_required: true, id_token_signed_response_alg: 'ES256', trusted: false });
    // What the CLI wrote is what a second process reads.
    const { authority } = openCore();
    expect((await authority.apps.getApp('wiki')).oidc).toMatchObject({ redirectUris: ['https://wiki.example/cb', 'https://wiki.example/cb2'], tokenEndpointAuthMethod: 'none', backchannelLogoutSessionRequired: true });
    // Both spellings of one list add up; two different values of one setting are refused.
    const mixed = await cli(['apps', 'register', '--name', 'Mixed', '--redirect-uri', 'https://m.example/a', '--redirect_uris', 'https://m.example/b', '--json']);
    expect(mixed.code, mixed.stderr).toBe(0);
    expect(JSON.parse(mixed.stdout).app.redirect_uris).toEqual(['https://m.example/b', 'https://m.example/a']);
    expectFailure(await cli(['apps', 'register', '--name', 'A', '--client_name', 'B']), 2, 'tessera: apps register: --client_name and --name differ; give one of them (see: tessera apps register --help)');
  });

  it('register refuses bad input with one clear line and exit 2: an unknown flag, an invalid URI, a bad method, a missing name', async () => {
    expectFailure(await cli(['apps', 'register', '--name', 'x', '--redirect_uri', 'https://x.example/cb']), 2, 'tessera: apps register: unknown option --redirect_uri (see: tessera apps register --help)');
    expectFailure(await cli(['apps', 'register', '--name', 'x', '--redirect_uris', 'not a url']), 2, 'tessera: apps register: --redirect_uris "not a url": must be an http(s) URL, e.g. https://forum.example.com/ (see: tessera apps register --help)');
    expectFailure(await cli(['apps', 'register', '--name', 'x', '--post_logout_redirect_uris', 'javascript:alert(1)']), 2, /^tessera: apps register: --post_logout_redirect_uris "javascript:alert\(1\)": must be an http\(s\) URL/);
    expectFailure(await cli(['apps', 'register', '--name', 'x', '--backchannel_logout_uri', 'ftp://x.example/bcl']), 2, /^tessera: apps register: --backchannel_logout_uri "ftp:\/\/x\.example\/bcl": must be an http\(s\) URL/);
    expectFailure(await cli(['apps', 'register', '--name', 'x', '--token_endpoint_auth_method', 'private_key_jwt']), 2, /^tessera: apps register: --token_endpoint_auth_method "private_key_jwt": /);
    expectFailure(await cli(['apps', 'register', '--name', 'x', '--grant_types', 'implicit']), 2, /^tessera: apps register: --grant_types "implicit": /);
    expectFailure(await cli(['apps', 'register', '--redirect_uris', 'https://x.example/cb']), 2, 'tessera: apps register: missing --name (or --client_name) (see: tessera apps register --help)');
    // A public client without redirect URIs or a refresh-only client: core's rules, exit 1 with the code.
    const refused = await cli(['apps', 'register', '--name', 'x', '--grant_types', 'refresh_token', '--redirect_uris', 'https://x.example/cb']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^tessera: apps register: .*\(INVALID_REQUEST\)\n$/);
    const { authority } = openCore();
    expect(await authority.apps.listApps()).toEqual([]);
  });

  it('update changes OIDC metadata and app fields through the admin API\'s rules; only what is given changes', async () => {
    await createApp('wiki', '--client-id', 'wiki', '--redirect_uris', 'https://wiki.example/cb', '--origin', 'https://wiki.example', '--backchannel_logout_uri', 'https://wiki.example/bcl');
    const run = await cli(['apps', 'update', 'wiki', '--post_logout_redirect_uris', 'https://wiki.example/bye', '--redirect_uris', 'https://wiki.example/cb2', '--backchannel_logout_session_required', '--token_endpoint_auth_method', 'client_secret_post', '--trusted', '--client_name', 'Wiki 2', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).app).toMatchObject({ client_id: 'wiki', name: 'Wiki 2', trusted: true, redirect_uris: ['https://wiki.example/cb2'], post_logout_redirect_uris: ['https://wiki.example/bye'], backchannel_logout_session_required: true, token_endpoint_auth_method: 'client_secret_post', allowed_origins: ['https://wiki.example'], backchannel_logout_uri: 'https://wiki.example/bcl', grant_types: ['authorization_code', 'refresh_token'] });
    const { authority } = openCore();
    expect((await authority.apps.getApp('wiki')).oidc).toMatchObject({ redirectUris: ['https://wiki.example/cb2'], postLogoutRedirectUris: ['https://wiki.example/bye'], backchannelLogoutSessionRequired: true, tokenEndpointAuthMethod: 'client_secret_post' });

    // --no-… turns a flag off; '' empties a list and removes the back-channel URI; --client-id works too.
    const off = await cli(['apps', 'update', '--client-id', 'wiki', '--no-trusted', '--no-backchannel_logout_session_required', '--post_logout_redirect_uris', '', '--backchannel_logout_uri', '', '--json']);
    expect(off.code, off.stderr).toBe(0);
    expect(JSON.parse(off.stdout).app).toMatchObject({ trusted: false, backchannel_logout_session_required: false, post_logout_redirect_uris: [], backchannel_logout_uri: null, redirect_uris: ['https://wiki.example/cb2'] });
    // Connector settings (a webhook): its generated signing secret is shown once.
    const hooked = await cli(['apps', 'update', 'wiki', '--connectors', '{"webhook":{"url":"https://wiki.example/hook"}}', '--json']);
    expect(hooked.code, hooked.stderr).toBe(0);
    const hookedJson = JSON.parse(hooked.stdout) as { app: { connectors: { webhook: { url: string; has_secret: boolean } } }; webhook_secret: string };
    expect(hookedJson.app.connectors.webhook).toEqual({ url: 'https://wiki.example/hook', has_secret: true });
    expect(hookedJson.webhook_secret).toMatch(/^whsec_/);
    expect((await cli(['apps', 'update', 'wiki', '--connectors', '{}', '--json'])).stdout).not.toContain('whsec_');
    const plain = await cli(['apps', 'update', 'wiki', '--id_token_signed_response_alg', 'EdDSA']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe('Updated app wiki ("Wiki 2"): id_token_signed_response_alg.\n');
  });

  it('update refuses bad input (exit 2 for usage, 1 for an unknown app or a rule of core) and changes nothing', async () => {
    await createApp('wiki', '--client-id', 'wiki', '--redirect_uris', 'https://wiki.example/cb');
    expectFailure(await cli(['apps', 'update', 'wiki', '--redirect_uris', 'https://wiki.example/#frag', '--bogus']), 2, 'tessera: apps update: unknown option --bogus (see: tessera apps update --help)');
    expectFailure(await cli(['apps', 'update', 'wiki', '--redirect_uris', 'wiki.example/cb']), 2, /^tessera: apps update: --redirect_uris "wiki\.example\/cb": must be an http\(s\) URL/);
    expectFailure(await cli(['apps', 'update', 'wiki', '--id-token-alg', 'HS256']), 2, /^tessera: apps update: --id-token-alg "HS256": /);
    expectFailure(await cli(['apps', 'update', 'wiki']), 2, 'tessera: apps update: nothing to change: give at least one setting (see: tessera apps update --help)');
    expectFailure(await cli(['apps', 'update', '--trusted']), 2, 'tessera: apps update: missing CLIENT_ID (the app to change) (see: tessera apps update --help)');
    expectFailure(await cli(['apps', 'update', 'wiki', 'other', '--trusted']), 2, 'tessera: apps update: unexpected argument "other" (see: tessera apps update --help)');
    expectFailure(await cli(['apps', 'update', 'wiki', '--trusted', '--no-trusted']), 2, 'tessera: apps update: --trusted and --no-trusted contradict each other (see: tessera apps update --help)');
    expectFailure(await cli(['apps', 'update', 'wiki', '--connectors', '{"webhook":']), 2, 'tessera: apps update: --connectors: not valid JSON (see: tessera apps update --help)');
    expectFailure(await cli(['apps', 'update', 'wiki', '--connectors', '[1,2]']), 2, /^tessera: apps update: --connectors: /);
    expectFailure(await cli(['apps', 'update', 'nope', '--trusted']), 1, 'tessera: apps update: no such app "nope" (APP_NOT_FOUND)');
    const rule = await cli(['apps', 'update', 'wiki', '--grant_types', 'refresh_token']);
    expect(rule.code).toBe(1);
    expect(rule.stderr).toMatch(/\(INVALID_REQUEST\)\n$/);
    const { authority } = openCore();
    expect(await authority.apps.getApp('wiki')).toMatchObject({ trusted: false, oidc: { redirectUris: ['https://wiki.example/cb'], grantTypes: ['authorization_code', 'refresh_token'], idTokenSignedResponseAlg: 'RS256' } });
  });

  it('create --json prints {app, client_secret} on stdout and the once-only note on stderr', async () => {
    const run = await cli(['apps', 'create', '--name', 'shop', '--client-id', 'shop', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const body = JSON.parse(run.stdout) as { app: { client_id: string; trusted: boolean }; client_secret: string };
    expect(body.app).toMatchObject({ client_id: 'shop', trusted: false });
    expect(body.client_secret.length).toBeGreaterThanOrEqual(40);
    expect(run.stderr).toContain('shown only this once');
    expect(run.stderr).not.toContain(body.client_secret);
  });

  it('list says how to start when there are no apps', async () => {
    const run = await cli(['apps', 'list']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('No apps registered yet');
  });

  it('create rejects what the admin API rejects, naming the flag (exit 2), and a taken client id (exit 1)', async () => {
    expectFailure(await cli(['apps', 'create', '--name', 'x', '--origin', 'https://ok.example', '--origin', 'https://bad.example/path']), 2, /^tessera: apps create: --origin "https:\/\/bad\.example\/path": must be an origin/);
    expectFailure(await cli(['apps', 'create', '--name', 'x', '--return-url', 'javascript:alert(1)']), 2, /^tessera: apps create: --return-url "javascript:alert\(1\)": must be an http\(s\) URL/);
    expectFailure(await cli(['apps', 'create', '--name', 'x', '--client-id', 'has space']), 2, /^tessera: apps create: --client-id "has space": must be letters/);
    await createApp('one', '--client-id', 'taken');
    expectFailure(await cli(['apps', 'create', '--name', 'two', '--client-id', 'taken']), 1, 'tessera: apps create: an app with client id "taken" exists (APP_CONFLICT)');
    const { authority } = openCore();
    expect((await authority.apps.listApps()).map((a) => a.clientId)).toEqual(['taken']);
  });

  it('rotate-secret prints a new secret once; the old one stops working', async () => {
    const { clientId, secret: old } = await createApp();
    const run = await cli(['apps', 'rotate-secret', '--client-id', clientId]);
    expect(run.code, run.stderr).toBe(0);
    const fresh = /client_secret:\s+(\S+)/.exec(run.stdout)?.[1];
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(old);
    expect(run.stdout).toContain('shown only this once');
    const { authority } = openCore();
    expect(await authority.apps.authenticateApp(clientId, fresh!)).not.toBeNull();
    expect(await authority.apps.authenticateApp(clientId, old)).toBeNull();
    expectFailure(await cli(['apps', 'rotate-secret', '--client-id', 'nope']), 1, 'tessera: apps rotate-secret: no such app "nope" (APP_NOT_FOUND)');
  });
});

describe('tessera users', () => {
  it('create makes a user who can sign in; the password is never printed', async () => {
    const run = await cli(['users', 'create', '--username', 'alice', '--email', 'alice@example.com', '--password', 'correct horse battery', '--first-name', 'Alice', '--last-name', 'Liddell', '--id', 'site-42']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('Created user alice (id site-42).\n');
    const { authority } = openCore();
    const signed = await authority.signIn('alice@example.com', 'correct horse battery', { ip: null, userAgent: null });
    expect(signed.user).toMatchObject({ id: 'site-42', username: 'alice', firstName: 'Alice', lastName: 'Liddell' });
  });

  it('create --password-stdin reads the password from stdin without its trailing newline', async () => {
    const run = await cli(['users', 'create', '--username', 'bob', '--password-stdin', '--json'], { stdin: 'piped password 1\n' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).not.toContain('piped password');
    const { user } = JSON.parse(run.stdout) as { user: { id: string; username: string; disabled: boolean } };
    expect(user).toMatchObject({ username: 'bob', disabled: false });
    expect(Object.keys(user)).not.toContain('password_hash');
    const { authority } = openCore();
    await expect(authority.signIn('bob', 'piped password 1', { ip: null, userAgent: null })).resolves.toMatchObject({ user: { id: user.id } });
  });

  it('create without a password says the user cannot use the login page', async () => {
    const run = await cli(['users', 'create', '--username', 'carol']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('No password set');
  });

  it('create rejects a short password without echoing it, both password flags, and a taken username', async () => {
    const short = await cli(['users', 'create', '--username', 'dave', '--password', 'tiny7']);
    expectFailure(short, 2, 'tessera: users create: --password: must not have fewer than 8 characters (see: tessera users create --help)');
    expect(short.stderr).not.toContain('tiny7');
    expectFailure(await cli(['users', 'create', '--username', 'dave', '--password', 'long enough', '--password-stdin'], { stdin: 'x' }), 2, /give --password or --password-stdin, not both/);
    expectFailure(await cli(['users', 'create', '--username', 'has space']), 2, /--username "has space": must be a name without spaces/);
    await createUser('erin');
    expectFailure(await cli(['users', 'create', '--username', 'erin']), 1, 'tessera: users create: a user with this username exists (USER_CONFLICT)');
  });

  it('disable ends every session of the user and says how many', async () => {
    const id = await createUser();
    const { authority } = openCore();
    const sessions = await startSessions(authority, id, [{ userAgent: 'phone' }, { userAgent: 'laptop' }]);
    const other = await startSessions(authority, await createUser('zoe'), [{ userAgent: 'zoe-phone' }]);

    const run = await cli(['users', 'disable', '--id', id]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`Disabled user alice (id ${id}); ended 2 sessions.\n`);
    for (const s of sessions) expect(await authority.sessions.authenticate(s.token)).toBeNull();
    expect(await authority.sessions.authenticate(other[0]!.token)).not.toBeNull();
    expect((await authority.users.getUser(id)).disabled).toBe(true);
    await expect(authority.signIn('alice', 'correct horse battery', { ip: null, userAgent: null })).rejects.toMatchObject({ code: 'USER_DISABLED' });
    const log = await openCore().store.listRevocations(0, 100);
    expect(log.filter((e) => e.sub === id).map((e) => [e.sid, e.reason, e.actor]).sort()).toEqual(sessions.map((s) => [s.session.handle, 'user_disabled', 'admin']).sort());

    const again = await cli(['users', 'disable', '--id', id, '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ user: { id, disabled: true }, revoked: [] });
  });

  it('disable and delete of an unknown user fail with the code', async () => {
    expectFailure(await cli(['users', 'disable', '--id', 'x']), 1, 'tessera: users disable: no such user "x" (USER_NOT_FOUND)');
    expectFailure(await cli(['users', 'delete', '--id', 'x']), 1, 'tessera: users delete: no such user "x" (USER_NOT_FOUND)');
    expectFailure(await cli(['users', 'disable', '--user', 'x']), 1, 'tessera: users disable: no such user "x" (give an id like usr_…, a username or an email) (USER_NOT_FOUND)');
    expectFailure(await cli(['users', 'delete', '--user', 'x@example.com']), 1, /no such user "x@example.com" .*\(USER_NOT_FOUND\)$/);
  });

  it('disable and delete name the user by --user (id, username or email) or by --id (id only), one of the two', async () => {
    const alice = await createUser('alice');
    const bob = await createUser('bob');
    expect((await cli(['users', 'create', '--username', 'carol', '--email', 'Carol@Example.com', '--password', 'correct horse battery'])).code).toBe(0);
    const disabled = await cli(['users', 'disable', '--user', 'alice', '--json']);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(JSON.parse(disabled.stdout)).toMatchObject({ user: { id: alice, username: 'alice', disabled: true } });
    // Not bob: only the named user changed.
    expect((JSON.parse((await cli(['users', 'disable', '--user', bob, '--json'])).stdout) as { user: { username: string } }).user.username).toBe('bob');
    const deleted = await cli(['users', 'delete', '--user', 'carol@example.com', '--json']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect((JSON.parse(deleted.stdout) as { deleted: string }).deleted).toMatch(/^usr_/);
    // --id stays an id: a username there is not looked up.
    expectFailure(await cli(['users', 'delete', '--id', 'bob']), 1, 'tessera: users delete: no such user "bob" (USER_NOT_FOUND)');
    expectFailure(await cli(['users', 'delete']), 2, /give either --user or --id/);
    expectFailure(await cli(['users', 'delete', '--user', 'bob', '--id', bob]), 2, /give either --user or --id/);
  });

  it('delete ends the sessions and removes the user', async () => {
    const id = await createUser();
    const { authority } = openCore();
    const [s] = await startSessions(authority, id, [{ userAgent: 'phone' }]);
    const run = await cli(['users', 'delete', '--id', id, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ deleted: id, revoked: [s!.session.handle] });
    expect(await authority.sessions.authenticate(s!.token)).toBeNull();
    await expect(authority.users.getUser(id)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
  });
});

describe('tessera sessions', () => {
  it('list shows handle, times, device and joined apps — never tokens', async () => {
    const id = await createUser();
    const { clientId } = await createApp('forum', '--trusted');
    const { authority } = openCore();
    const [phone, laptop] = await startSessions(authority, id, [
      { userAgent: 'Mozilla/5.0 (iPhone)', ip: '198.51.100.7', clientId },
      { userAgent: 'evil\u001b[2Jagent', ip: '203.0.113.9' },
    ]);
    const run = await cli(['sessions', 'list', '--user', id]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^HANDLE\s+CREATED\s+LAST SEEN\s+IP\s+USER AGENT\s+APPS$/);
    expect(lines).toHaveLength(3);
    const phoneLine = lines.find((l) => l.startsWith(phone!.session.handle));
    expect(phoneLine).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+\d{4}-.*Z\s+198\.51\.100\.7\s+Mozilla\/5\.0 \(iPhone\)\s+/);
    expect(phoneLine!.endsWith(clientId)).toBe(true);
    const laptopLine = lines.find((l) => l.startsWith(laptop!.session.handle));
    // A control sequence from a client's User-Agent never reaches the terminal.
    expect(laptopLine).toContain('evil?[2Jagent');
    expect(run.stdout).not.toContain('\u001b');

    const json = await cli(['sessions', 'list', '--user', id, '--json']);
    const { sessions } = JSON.parse(json.stdout) as { sessions: Array<Record<string, unknown>> };
    expect(sessions.map((s) => s.handle).sort()).toEqual([phone!.session.handle, laptop!.session.handle].sort());
    expect(sessions.find((s) => s.handle === phone!.session.handle)).toMatchObject({ ip: '198.51.100.7', user_agent: 'Mozilla/5.0 (iPhone)', active: true, apps: [{ client_id: clientId, left_at: null }] });
    for (const s of [phone!, laptop!]) {
      for (const part of s.token.split('.')) {
        expect(run.stdout).not.toContain(part);
        expect(json.stdout).not.toContain(part);
      }
    }
  });

  it('list and revoke take the user by id, username or email; an id wins over another user\'s name', async () => {
    const alice = (JSON.parse((await cli(['users', 'create', '--username', 'alice', '--email', 'alice@example.com', '--password', 'correct horse battery', '--json'])).stdout) as { user: { id: string } }).user.id;
    // A user whose *id* is "bob-id" and another whose *username* is "bob-id".
    expect((await cli(['users', 'create', '--username', 'robert', '--id', 'bob-id', '--password', 'correct horse battery'])).code).toBe(0);
    const bobByName = await createUser('bob-id');
    const { authority } = openCore();
    const [s] = await startSessions(authority, alice, [{ userAgent: 'phone' }]);
    await startSessions(authority, 'bob-id', [{ userAgent: 'robert-phone' }]);
    for (const ref of [alice, 'alice', 'ALICE', 'alice@example.com', 'Alice@Example.COM']) {
      const run = await cli(['sessions', 'list', '--user', ref, '--json']);
      expect(run.code, `${ref}: ${run.stderr}`).toBe(0);
      expect((JSON.parse(run.stdout) as { sessions: Array<{ handle: string }> }).sessions.map((x) => x.handle)).toEqual([s!.session.handle]);
    }
    const byId = await cli(['sessions', 'list', '--user', 'bob-id']);
    expect(byId.stdout).toContain('robert-phone');
    expect((await cli(['sessions', 'list', '--user', bobByName])).stdout).toBe(`User bob-id (id ${bobByName}) has no active sessions.\n`);
    const revoked = await cli(['sessions', 'revoke', '--user', 'alice@example.com', '--json']);
    expect(JSON.parse(revoked.stdout)).toEqual({ revoked: [s!.session.handle] });
    expect(await authority.sessions.authenticate(s!.token)).toBeNull();
    expect((await cli(['sessions', 'list', '--help'])).stdout).toContain('id (usr_…), username or email');
  });

  it('list for a user without sessions says so; for an unknown user fails', async () => {
    const id = await createUser();
    const run = await cli(['sessions', 'list', '--user', id]);
    expect(run.stdout).toBe(`User alice (id ${id}) has no active sessions.\n`);
    expectFailure(await cli(['sessions', 'list', '--user', 'ghost']), 1, 'tessera: sessions list: no such user "ghost" (give an id like usr_…, a username or an email) (USER_NOT_FOUND)');
  });

  it('revoke --handle ends one session; a second time nothing changes; an unknown handle fails', async () => {
    const id = await createUser();
    const { authority } = openCore();
    const [a, b] = await startSessions(authority, id, [{ userAgent: 'a' }, { userAgent: 'b' }]);
    const run = await cli(['sessions', 'revoke', '--handle', a!.session.handle]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`Ended session ${a!.session.handle}.\n`);
    expect(await authority.sessions.authenticate(a!.token)).toBeNull();
    expect(await authority.sessions.authenticate(b!.token)).not.toBeNull();
    const again = await cli(['sessions', 'revoke', '--handle', a!.session.handle, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ revoked: [] });
    expectFailure(await cli(['sessions', 'revoke', '--handle', 'ses_unknown']), 1, 'tessera: sessions revoke: no such session "ses_unknown" (SESSION_NOT_FOUND)');
  });

  it('revoke --user ends every session of that user and no one else\'s', async () => {
    const id = await createUser();
    const { authority, store } = openCore();
    const mine = await startSessions(authority, id, [{ userAgent: 'a' }, { userAgent: 'b' }, { userAgent: 'c' }]);
    const [theirs] = await startSessions(authority, await createUser('zoe'), [{ userAgent: 'z' }]);
    const run = await cli(['sessions', 'revoke', '--user', id]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^Ended 3 sessions of user alice \\(id ${id}\\)\\.\\n`));
    for (const s of mine) {
      expect(run.stdout).toContain(`  ${s.session.handle}\n`);
      expect(await authority.sessions.authenticate(s.token)).toBeNull();
    }
    expect(await authority.sessions.authenticate(theirs!.token)).not.toBeNull();
    const log = await store.listRevocations(0, 100);
    expect(log.map((e) => e.reason)).toEqual(['admin_revoked', 'admin_revoked', 'admin_revoked']);
  });

  it('revoke --user --except keeps that session; a wrong --except ends nothing', async () => {
    const id = await createUser();
    const { authority } = openCore();
    const [keep, drop] = await startSessions(authority, id, [{ userAgent: 'keep' }, { userAgent: 'drop' }]);
    expectFailure(await cli(['sessions', 'revoke', '--user', id, '--except', 'ses_typo']), 1, `tessera: sessions revoke: no active session "ses_typo" of user "${id}" to keep (SESSION_NOT_FOUND)`);
    expect(await authority.sessions.authenticate(drop!.token)).not.toBeNull();
    const run = await cli(['sessions', 'revoke', '--user', id, '--except', keep!.session.handle, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ revoked: [drop!.session.handle] });
    expect(await authority.sessions.authenticate(keep!.token)).not.toBeNull();
    expect(await authority.sessions.authenticate(drop!.token)).toBeNull();
  });

  it('revoke --user --app ends only that app\'s part; the sessions go on', async () => {
    const id = await createUser();
    const forum = await createApp('forum');
    const shop = await createApp('shop');
    const { authority } = openCore();
    const [s] = await startSessions(authority, id, [{ userAgent: 'a', clientId: forum.clientId }]);
    await authority.sessions.joinSession(s!.session, shop.clientId);
    expectFailure(await cli(['sessions', 'revoke', '--user', id, '--app', 'nope']), 1, 'tessera: sessions revoke: no such app "nope" (APP_NOT_FOUND)');
    const run = await cli(['sessions', 'revoke', '--user', id, '--app', forum.clientId]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`App ${forum.clientId} left 1 session of user alice`);
    const still = await authority.sessions.authenticate(s!.token);
    expect(still).not.toBeNull();
    expect(still!.session.apps.find((a) => a.clientId === forum.clientId)?.leftAt).not.toBeNull();
    expect(still!.session.apps.find((a) => a.clientId === shop.clientId)?.leftAt).toBeNull();
    expectFailure(await cli(['sessions', 'revoke', '--user', 'ghost']), 1, 'tessera: sessions revoke: no such user "ghost" (give an id like usr_…, a username or an email) (USER_NOT_FOUND)');
  });
});

describe('tessera admin-token create', () => {
  it('prints a token once that authenticates against the admin API', async () => {
    const run = await cli(['admin-token', 'create', '--label', 'ops laptop']);
    expect(run.code, run.stderr).toBe(0);
    const token = /token:\s+(\S+)/.exec(run.stdout)?.[1];
    expect(token).toBeDefined();
    expect(run.stdout.split(token!)).toHaveLength(2);
    expect(run.stdout).toContain('shown only this once');

    const config = loadConfig({ env });
    const store = createSqliteStore(join(dir, 'tessera.db'));
    const { app } = await buildServer({ config, store });
    opened.push(store, { close: async () => void (await app.close()) });
    expect((await app.inject({ method: 'GET', url: '/admin/api/apps', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    const wrong = await app.inject({ method: 'GET', url: '/admin/api/apps', headers: { authorization: `Bearer ${token!.slice(0, -2)}xx` } });
    expect(wrong.json().error).toBe('INVALID_ADMIN_TOKEN');
    const audit = await store.listAudit({ limit: 10 });
    expect(audit.find((e) => e.action === 'admin_token.created')?.details).toMatchObject({ label: 'ops laptop' });
    expect(JSON.stringify(audit)).not.toContain(token!.split('.')[1]);
  });
});

describe('startServer and tessera start', () => {
  it('answers /health over HTTP, prints the login URL and a one-time admin token on first start only', async () => {
    const config = readConfig({ ...env, TESSERA_PORT: '0' });
    const printed: string[] = [];
    const first = await startServer(config, { print: (line) => printed.push(line) });
    try {
      const health = await fetch(`${first.url}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      expect(printed).toContain(`  Login page:  ${first.url}/login`);
      const token = printed.join('\n').match(/Admin token \(shown once, store it now\): (\S+)/)?.[1];
      expect(token).toBeDefined();
      const admin = await fetch(`${first.url}/admin/api/apps`, { headers: { authorization: `Bearer ${token}` } });
      expect(admin.status).toBe(200);
    } finally {
      await first.close();
    }
    await expect(fetch(`${first.url}/health`)).rejects.toThrow();

    const again: string[] = [];
    const second = await startServer(config, { print: (line) => again.push(line), cli: 'npm run tessera --' });
    try {
      expect((await fetch(`${second.url}/health`)).status).toBe(200);
      expect(again.join('\n')).not.toMatch(/Admin token \(shown once/);
      expect(again.join('\n')).toContain('npm run tessera -- admin-token create');
    } finally {
      await second.close();
    }
  });

  it('tessera start serves until SIGTERM while other CLI calls revoke its sessions in the same database', async () => {
    const signals = new EventEmitter();
    let stdout = '';
    let stderr = '';
    const running = runCli(['start'], {
      env: { ...env, TESSERA_PORT: '0' },
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      stdin: Readable.from([]),
      signals,
    });
    const url = await vi.waitFor(() => {
      const found = /Tessera is running at (http:\/\/\S+)/.exec(stdout)?.[1];
      if (!found) throw new Error(`not started yet: ${stderr}`);
      return found;
    }, { timeout: 20_000, interval: 50 });

    const userId = await createUser();
    const app = await createApp('forum', '--trusted');
    const basic = `Basic ${Buffer.from(`${app.clientId}:${app.secret}`).toString('base64')}`;
    const started = await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: userId }) });
    expect(started.status).toBe(201);
    const { session_token: token } = (await started.json()) as { session_token: string };
    const whoami = () => fetch(`${url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await whoami()).toBe(200);

    const listed = await cli(['sessions', 'list', '--user', userId]);
    expect(listed.stdout).toContain(app.clientId);
    const revoked = await cli(['sessions', 'revoke', '--user', userId]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/^Ended 1 session of user alice/);
    expect(await whoami()).toBe(401);

    // Run as the installed bin (no npm script): the hints name `npx tessera`.
    expect(stdout).toContain("npx tessera users create --username alice");
    expect(stdout).not.toContain('npm run tessera');

    signals.emit('SIGTERM', 'SIGTERM');
    expect(await running).toBe(0);
    expect(stderr).toContain('SIGTERM received');
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    expect(signals.listenerCount('SIGINT')).toBe(0);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('tessera start with a bad configuration fails with one line and does not listen', async () => {
    const signals = new EventEmitter();
    const run = await cli(['start'], { env: { TESSERA_SESSION_LIFETIME: 'forever' }, signals });
    expectFailure(run, 1, /^tessera: start: Invalid configuration session\.absoluteLifetimeSeconds \(TESSERA_SESSION_LIFETIME\): /);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });
});
