// The packages as a newcomer gets them: `npm pack` tarballs (scripts/pack.mjs, `npm run
// pack`), installed with npm into a new project outside the workspace, then used the way
// their READMEs say — `tessera start` from the server's tarball with the embedded SQLite
// default, and an Express app and a node:http app built on @tessera/sdk against it: sign in
// at Tessera's login page, each app verifies the session, a logout at one app reaches the
// other (back-channel logout, and its /me refuses the revoked token).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain ESM script without declarations
import { packAll } from '../../scripts/pack.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const consumerFiles = join(dirname(fileURLToPath(import.meta.url)), 'consumer');
const ADMIN_TOKEN = `packaging-admin-${'p'.repeat(40)}`;

let work: string;
let project: string;
let tarballs: Record<string, string>;
const children: ChildProcess[] = [];

/** Runs a command to completion; throws with its output when it fails. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** Starts a long-running process and resolves with the first stdout line matching `ready`. */
function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ match: RegExpMatchArray; child: ChildProcess; output: () => string }> {
  const child = spawn(command, args, { cwd: project, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      output += `${line}\n`;
      const match = ready.exec(line);
      if (match) resolve({ match, child, output: () => output });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before it was ready:\n${output}`)));
  });
}

/** Polls `check` until it returns a value other than undefined (the condition, not a fixed wait). */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Tessera {
  url: string;
  admin<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}
let tessera: Tessera;
let tesseraOutput: () => string;

interface App {
  url: string;
  clientId: string;
}
let expressApp: App;
let httpApp: App;
let alice: { id: string };

/** Registers an app, starts `script` as it, then points the app's back-channel URI at it. */
async function startApp(name: string, script: string): Promise<App> {
  const created = await tessera.admin<{ app: { client_id: string }; client_secret: string }>('POST', '/apps', { name });
  expect(created.status).toBe(201);
  const clientId = created.body.app.client_id;
  const { match } = await startProcess(process.execPath, [script], { TESSERA_URL: tessera.url, CLIENT_ID: clientId, CLIENT_SECRET: created.body.client_secret }, /^listening (http:\/\/\S+)$/);
  const url = match[1]!;
  const patched = await tessera.admin('PATCH', `/apps/${clientId}`, { backchannel_logout_uri: `${url}/backchannel-logout` });
  expect(patched.status).toBe(200);
  return { url, clientId };
}

/** Signs in at Tessera's hosted login page, as a browser does; returns the session token. */
async function signInAtTessera(username: string, password: string): Promise<string> {
  const page = await fetch(`${tessera.url}/login`);
  const csrfCookie = /tessera_csrf=([^;]+)/.exec(page.headers.get('set-cookie') ?? '')?.[1];
  const csrfField = /name="csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  expect(csrfCookie && csrfField).toBeTruthy();
  const posted = await fetch(`${tessera.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tessera_csrf=${csrfCookie}` },
    body: new URLSearchParams({ username, password, csrf: csrfField! }),
  });
  const token = /tessera_session=([^;]+)/.exec(posted.headers.get('set-cookie') ?? '')?.[1];
  expect(posted.status, await posted.text()).toBeLessThan(400);
  expect(token).toBeTruthy();
  return decodeURIComponent(token!);
}

const post = (url: string, body: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
const me = (app: App, accessToken: string) => fetch(`${app.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tessera-packaging-'));
  // Outside the workspace: nothing may resolve through the workspace's node_modules.
  expect(relative(root, work).startsWith('..')).toBe(true);
  tarballs = packAll(join(work, 'tarballs'), { build: false, log: () => {} }) as Record<string, string>;
  project = join(work, 'consumer');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'tessera-consumer', private: true, type: 'module' }));
  for (const file of ['express-app.mjs', 'http-app.mjs', 'types-check.ts']) copyFileSync(join(consumerFiles, file), join(project, file));

  // One `npm install` of every tarball (the server's @tessera/core and @tessera/store are
  // satisfied by their tarballs, not looked up on a registry) and Express from the registry.
  // --prefer-offline reuses the npm cache; --ignore-scripts skips better-sqlite3's native
  // build (a minute of compiling, or a download from GitHub): the binary the workspace built
  // for this Node.js is copied in when the versions match, else npm rebuilds it here.
  const npmEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', ...Object.values(tarballs), 'express@^5'], project, npmEnv);
  const version = (dir: string) => (JSON.parse(readFileSync(join(dir, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as { version: string }).version;
  const built = join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  if (existsSync(built) && version(root) === version(project)) {
    mkdirSync(join(project, 'node_modules', 'better-sqlite3', 'build', 'Release'), { recursive: true });
    copyFileSync(built, join(project, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
  } else {
    run('npm', ['rebuild', 'better-sqlite3'], project, npmEnv);
  }

  // `tessera start` from the server tarball's bin, with no configuration but a data dir and
  // a port: the embedded SQLite default.
  const dataDir = join(work, 'data');
  const { match, output } = await startProcess(join(project, 'node_modules', '.bin', 'tessera'), ['start'], {
    TESSERA_PORT: '0',
    TESSERA_DATA_DIR: dataDir,
    TESSERA_ADMIN_TOKEN: ADMIN_TOKEN,
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_LOG_LEVEL: 'warn',
    // Whatever the test run has set must not leak in: this is the no-configuration default.
    TESSERA_CONFIG: undefined,
    TESSERA_DATABASE_URL: undefined,
    TESSERA_REDIS_URL: undefined,
  }, /Tessera is running at (http:\/\/\S+) \(store: (\w+)/);
  expect(match[2]).toBe('sqlite');
  tesseraOutput = output;
  expect(existsSync(join(dataDir, 'tessera.db'))).toBe(true);
  const url = match[1]!;
  tessera = {
    url,
    async admin<T>(method: string, path: string, body?: unknown) {
      const response = await fetch(`${url}/admin/api${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
    },
  };
  const created = await tessera.admin<{ user: { id: string } }>('POST', '/users', { username: 'alice', password: 'a-long-password-for-alice' });
  expect(created.status).toBe(201);
  alice = created.body.user;
  [expressApp, httpApp] = await Promise.all([startApp('express-app', 'express-app.mjs'), startApp('http-app', 'http-app.mjs')]);
}, 240_000);

afterAll(async () => {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    ),
  );
  if (work) rmSync(work, { recursive: true, force: true });
}, 30_000);

describe('the packed tarballs, installed outside the workspace', () => {
  it('hold built JavaScript, declarations, README and LICENSE, and no workspace-only paths', () => {
    expect(Object.keys(tarballs).sort()).toEqual(['@tessera/browser', '@tessera/core', '@tessera/sdk', '@tessera/server', '@tessera/store']);
    for (const name of Object.keys(tarballs)) {
      const dir = join(project, 'node_modules', ...name.split('/'));
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(manifest.private, name).toBeUndefined();
      expect(manifest.devDependencies, name).toBeUndefined();
      expect(JSON.stringify(manifest.exports), name).not.toContain('tessera-source');
      expect(JSON.stringify(manifest.exports), name).not.toContain('src/');
      expect((manifest.engines as { node: string }).node).toBe('^20.19.0 || ^22.12.0 || >=24.0.0');
      for (const file of ['README.md', 'LICENSE']) expect(existsSync(join(dir, file)), `${name} ${file}`).toBe(true);
      for (const conditions of Object.values(manifest.exports as Record<string, { types: string; default: string }>)) {
        expect(existsSync(join(dir, conditions.types)), `${name} ${conditions.types}`).toBe(true);
        expect(existsSync(join(dir, conditions.default)), `${name} ${conditions.default}`).toBe(true);
      }
      expect(existsSync(join(dir, 'src')), `${name} ships no sources`).toBe(false);
    }
  });

  it('give TypeScript the SDK and browser declarations through `exports`', { timeout: 120_000 }, () => {
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true,
          lib: ['ES2023', 'DOM'], types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
        },
        files: ['types-check.ts'],
      }),
    );
    const result = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('print hints with the installed CLI (`npx tessera …`), not the checkout\'s npm script', async () => {
    await waitFor('the start hints', async () => (tesseraOutput().includes('apps create') ? true : undefined));
    expect(tesseraOutput()).toContain("npx tessera users create --username alice");
    expect(tesseraOutput()).not.toContain('npm run tessera');
  });

  it('run `tessera --help` from the server tarball', { timeout: 120_000 }, () => {
    const help = run(join(project, 'node_modules', '.bin', 'tessera'), ['--help'], project);
    expect(help).toContain('Usage: tessera <command>');
    expect(help).toMatch(/sessions list/);
  });

  it('serve an Express app and a node:http app: sign in, verify, a logout at one reaches the other', { timeout: 120_000 }, async () => {
    const sessionToken = await signInAtTessera('alice', 'a-long-password-for-alice');
    const joined = await Promise.all(
      [expressApp, httpApp].map(async (app) => {
        const response = await post(`${app.url}/signin`, sessionToken);
        expect(response.status).toBe(200);
        return (await response.json()) as { accessToken: string; sid: string };
      }),
    );
    const [atExpress, atHttp] = joined as [{ accessToken: string; sid: string }, { accessToken: string; sid: string }];
    expect(atExpress.sid).toBe(atHttp.sid);
    for (const [app, tokens] of [[expressApp, atExpress], [httpApp, atHttp]] as const) {
      const response = await me(app, tokens.accessToken);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ sub: alice.id, sid: tokens.sid });
      // Each app verifies its own audience: the other app's token is refused.
      const other = tokens === atExpress ? atHttp : atExpress;
      const refused = await me(app, other.accessToken);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: string }).error).toBe('TOKEN_WRONG_AUDIENCE');
    }

    // Sign out at the Express app (server to server): the node:http app hears of it.
    expect((await post(`${expressApp.url}/signout`, sessionToken)).status).toBe(204);
    const logouts = await waitFor('the back-channel logout at the node:http app', async () => {
      const list = (await (await fetch(`${httpApp.url}/logouts`)).json()) as Array<{ sid?: string }>;
      return list.length > 0 ? list : undefined;
    });
    expect(logouts).toEqual([{ sid: atExpress.sid, sub: alice.id }]);
    // And its token check refuses the ended session (the SDK follows the revocation feed).
    // Each app's SDK hears of it on its own, in its own process: wait at each.
    const refusedAt = (app: App, accessToken: string, name: string) => waitFor(`the revoked token to be refused at the ${name} app`, async () => {
      const response = await me(app, accessToken);
      return response.status === 200 ? undefined : response;
    });
    const revoked = await refusedAt(httpApp, atHttp.accessToken, 'node:http');
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { error: string }).error).toBe('TOKEN_REVOKED');
    expect((await refusedAt(expressApp, atExpress.accessToken, 'Express')).status).toBe(401);

    // Tessera recorded the notice to the node:http app as delivered (the Express app ended
    // the session itself, so its own notice is also sent and delivered).
    const deliveries = await waitFor('both deliveries to settle', async () => {
      const answer = await tessera.admin<{ deliveries: Array<{ client_id: string; status: string }> }>('GET', `/sessions/${atExpress.sid}/deliveries`);
      const all = answer.body.deliveries;
      return all.length === 2 && all.every((d) => d.status === 'delivered') ? all : undefined;
    });
    expect(deliveries.map((d) => d.client_id).sort()).toEqual([expressApp.clientId, httpApp.clientId].sort());
  });

  it('and the other way round: a logout at the node:http app reaches the Express app', { timeout: 120_000 }, async () => {
    const sessionToken = await signInAtTessera('alice', 'a-long-password-for-alice');
    const atExpress = (await (await post(`${expressApp.url}/signin`, sessionToken)).json()) as { accessToken: string; sid: string };
    const atHttp = (await (await post(`${httpApp.url}/signin`, sessionToken)).json()) as { accessToken: string; sid: string };
    expect((await me(expressApp, atExpress.accessToken)).status).toBe(200);
    expect((await post(`${httpApp.url}/signout`, sessionToken)).status).toBe(204);
    await waitFor('the back-channel logout at the Express app', async () => {
      const list = (await (await fetch(`${expressApp.url}/logouts`)).json()) as Array<{ sid?: string }>;
      return list.some((l) => l.sid === atHttp.sid) ? true : undefined;
    });
    const revoked = await waitFor('the revoked token to be refused at the Express app', async () => {
      const response = await me(expressApp, atExpress.accessToken);
      return response.status === 200 ? undefined : response;
    });
    expect(((await revoked.json()) as { error: string }).error).toBe('TOKEN_REVOKED');
  });
});
