// @ts-check
// Runs nodebb-plugin-tessera inside a real NodeBB, next to nodebb-plugin-session-sharing and a
// real Tessera, and walks what docs/nodebb.md promises: sign-in through the shared cookie, a
// Tessera logout ending the forum's sessions (timed: median and p99), a late user-wide logout
// that must not end the session the user started meanwhile, a logout at the forum ending the
// Tessera session, and forum activity reaching Tessera.
//
// For a developer who fetched NodeBB and session-sharing (nothing fetched is committed; CI
// does not run this). Prerequisites, see docs/nodebb.md "Verified with":
//   - NODEBB_DIR: a NodeBB 4.15 work tree, dependencies installed, both plugins installed
//     (`npm install <tgz>`), set up on Redis (`node app --setup '{…}'`), both plugins
//     activated (`./nodebb activate …`) and built (`./nodebb build`);
//   - NODE22: the Node.js ≥ 22 binary NodeBB runs on (default: `node` on the PATH);
//   - Redis at 127.0.0.1:6379; NODEBB_REDIS_DB: the database NodeBB was set up on (default 5);
//   - Tessera built in this repository (`npx tsc -b`).
//
//   NODEBB_DIR=/work/nodebb-run/nodebb NODE22=/path/to/node22 node scripts/nodebb-verify.mjs [--logouts 100]
//
// It starts Tessera on TESSERA_VERIFY_PORT (default 4600) and NodeBB on the port of NodeBB's
// config.json url (4567 in the docs), configures both plugins through NodeBB's own
// meta.settings (what ACP > Plugins saves), and stops both at the end.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const NODEBB_DIR = process.env.NODEBB_DIR;
if (!NODEBB_DIR) {
  console.error('Set NODEBB_DIR to a NodeBB work tree (see docs/nodebb.md "Verified with").');
  process.exit(2);
}
const NODE22 = process.env.NODE22 || 'node';
const REDIS_DB = Number(process.env.NODEBB_REDIS_DB || 5);
const TESSERA_PORT = Number(process.env.TESSERA_VERIFY_PORT || 4600);
const LOGOUTS = Number(process.argv[process.argv.indexOf('--logouts') + 1] || 100) || 100;
const nodebbConfig = JSON.parse(readFileSync(join(NODEBB_DIR, 'config.json'), 'utf8'));
const FORUM = String(nodebbConfig.url).replace(/\/+$/, '');
const TESSERA = `http://127.0.0.1:${TESSERA_PORT}`;
const ADMIN_TOKEN = `verify-${randomBytes(24).toString('hex')}`;
const SHARED_SECRET = randomBytes(32).toString('base64url');
const CLIENT_ID = 'forum';
const PASSWORD = 'correct horse battery staple';

// NodeBB's own Redis client, on NodeBB's database: the script looks at what NodeBB stores.
const nodebbRequire = createRequire(join(NODEBB_DIR, 'package.json'));
const { createClient } = nodebbRequire('redis');
const redis = createClient({ url: `redis://127.0.0.1:6379/${REDIS_DB}` });
await redis.connect();

const children = [];
function start(name, command, args, options) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output = (output + d).slice(-20_000)));
  child.stderr.on('data', (d) => (output = (output + d).slice(-20_000)));
  children.push({ name, child, output: () => output });
  return child;
}
async function stopAll() {
  for (const { child } of children.reverse()) {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
  await redis.quit().catch(() => {});
}

// Interrupted (Ctrl-C, a timeout): stop Tessera and NodeBB too, not leave them running.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const { child } of children) if (child.exitCode === null) child.kill('SIGTERM');
    process.exit(130);
  });
}

async function waitFor(what, probe, timeoutMs = 120_000, intervalMs = 50) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A browser's cookies for 127.0.0.1 (host-only cookies are shared across ports). */
function createJar() {
  const cookies = new Map();
  return {
    cookies,
    store(response) {
      for (const line of response.headers.getSetCookie()) {
        const [pair, ...attributes] = line.split(/;\s*/);
        const at = pair.indexOf('=');
        const name = pair.slice(0, at);
        const value = pair.slice(at + 1);
        const expired = attributes.some((a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now()));
        if (expired || value === '') cookies.delete(name);
        else cookies.set(name, value);
      }
    },
    header() {
      return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    },
  };
}

async function request(jar, url, init = {}) {
  const response = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers || {}), cookie: jar.header() } });
  jar.store(response);
  return response;
}

async function admin(method, path, body) {
  const response = await fetch(`${TESSERA}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Signs in at Tessera's login page: the jar then holds tessera_session and the shared cookie. */
async function signInAtTessera(jar, username) {
  const page = await request(jar, `${TESSERA}/login`);
  const html = await page.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) throw new Error('no csrf field on the login page');
  const done = await request(jar, `${TESSERA}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: TESSERA },
    body: new URLSearchParams({ csrf, username, password: PASSWORD }).toString(),
  });
  if (done.status !== 303 || !jar.cookies.has('token')) throw new Error(`login answered ${done.status}`);
}

/** Loads a forum page as a browser does (following redirects); returns the uid NodeBB sees. */
async function forumPage(jar, path = '/') {
  let url = `${FORUM}${path}`;
  for (let hops = 0; hops < 5; hops++) {
    const response = await request(jar, url);
    const page = await response.text();
    if (process.env.VERIFY_DEBUG) console.log('hop', url, response.status, response.headers.get('location'), [...jar.cookies.keys()].join(','), page.length);
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get('location'), url).href;
      continue;
    }
    break;
  }
  const config = await request(jar, `${FORUM}/api/config`);
  const body = await config.json();
  return { uid: Number(body.uid || 0), csrf: body.csrf_token };
}

const forumSessionId = (jar) => decodeURIComponent(jar.cookies.get('express.sid') || '').replace(/^s:/, '').split('.')[0];

const results = [];
function check(name, ok, detail = '') {
  results.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
}

try {
  // --- Tessera -------------------------------------------------------------------------
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-nodebb-verify-'));
  const configFile = join(dataDir, 'tessera.json');
  writeFileSync(configFile, JSON.stringify({ session: { touchIntervalSeconds: 1 } }));
  start('tessera', process.execPath, [join(root, 'packages/server/dist/cli.js'), 'start', '--config', configFile], {
    cwd: root,
    env: {
      ...process.env,
      TESSERA_PORT: String(TESSERA_PORT),
      TESSERA_ISSUER: TESSERA,
      TESSERA_DATA_DIR: dataDir,
      TESSERA_ADMIN_TOKEN: ADMIN_TOKEN,
      TESSERA_COOKIE_SECURE: 'false',
      TESSERA_RATE_LIMIT: 'false',
      TESSERA_SHARED_COOKIE: 'true',
      TESSERA_SHARED_COOKIE_SECRET: SHARED_SECRET,
      TESSERA_SHARED_COOKIE_CLIENT_ID: CLIENT_ID,
      TESSERA_LOG_LEVEL: 'warn',
    },
  });
  await waitFor('Tessera', async () => (await fetch(`${TESSERA}/health`)).ok, 30_000);
  const registered = await admin('POST', '/apps', {
    client_id: CLIENT_ID,
    name: 'NodeBB forum',
    trusted: false,
    allowed_origins: [FORUM],
    return_urls: [`${FORUM}/`],
    backchannel_logout_uri: `${FORUM}/tessera/backchannel-logout`,
  });
  if (registered.status !== 201) throw new Error(`registering the forum: ${registered.status} ${JSON.stringify(registered.body)}`);
  const clientSecret = registered.body.client_secret;

  // --- NodeBB: settings as ACP > Plugins saves them (meta.settings.set), then start ----------
  // Run as a file (require.main must exist for NodeBB's require-main.js), with NodeBB's
  // modules resolved from NODEBB_DIR.
  const writeSettings = (sharing, tessera) => {
    const settingsFile = join(dataDir, 'nodebb-settings.cjs');
    writeFileSync(settingsFile, `
      const r = require('node:module').createRequire(${JSON.stringify(join(NODEBB_DIR, 'app.js'))});
      r('./require-main');
      const nconf = r('nconf');
      nconf.file({ file: ${JSON.stringify(join(NODEBB_DIR, 'config.json'))} });
      nconf.defaults({ base_dir: ${JSON.stringify(NODEBB_DIR)}, views_dir: './build/public/templates' });
      (async () => {
        const db = r('./src/database');
        await db.init();
        const meta = r('./src/meta');
        await meta.settings.set('session-sharing', ${JSON.stringify(sharing)});
        await meta.settings.set('tessera', ${JSON.stringify(tessera)});
        // ACP > Settings > Advanced: NodeBB answers 503 when its event loop lags over 100 ms
        // (toobusy, production only) — on a busy shared test machine that is most pages.
        await meta.configs.set('eventLoopCheckEnabled', 0);
        await db.close();
        process.exit(0);
      })().catch((e) => { console.error(e); process.exit(1); });`);
    execFileSync(NODE22, [settingsFile], { cwd: NODEBB_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
  };
  for (const id of ['nodebb-plugin-session-sharing', 'nodebb-plugin-tessera']) {
    // Activation needs a build afterwards (templates, client scripts): a prerequisite.
    if ((await redis.zScore('plugins:active', id)) === null) throw new Error(`${id} is not active: node app --activate=${id} && node app --build`);
  }
  const sharing = { name: 'appId', cookieName: 'token', behaviour: 'revalidate', adminRevalidate: 'on' };
  const tesseraSettings = { issuer: TESSERA, clientId: CLIENT_ID, clientSecret, forumLogout: 'everywhere', activityMinutes: '5' };
  const startNodebb = async () => {
    const child = start('nodebb', NODE22, ['app.js'], { cwd: NODEBB_DIR, env: { ...process.env, NODE_ENV: 'production' } });
    await waitFor('NodeBB', async () => {
      if (child.exitCode !== null) throw new Error('NodeBB exited');
      return (await fetch(`${FORUM}/api/config`)).ok;
    }, 180_000, 250);
    return child;
  };
  // session-sharing 8.0.2's upgrade script (session_sharing_hash_to_zset, run at the first
  // start after activation) crashes NodeBB's start on a forum without an `appId:uid` hash
  // when the secret is already set; with no secret it records itself as done. So, as an
  // administrator does it: start once, then set the secret (ACP) and restart.
  if ((await redis.zScore('schemaLog', 'session_sharing_hash_to_zset')) === null) {
    writeSettings({ ...sharing, secret: '' }, tesseraSettings);
    const first = await startNodebb();
    first.kill('SIGTERM');
    await new Promise((resolve) => first.once('exit', resolve));
  }
  writeSettings({ ...sharing, secret: SHARED_SECRET }, tesseraSettings);
  await startNodebb();
  const nodebbLog = () => children.find((c) => c.name === 'nodebb').output();

  // --- 1. Sign-in through the shared cookie, and the link to the Tessera session ---------
  const username = `verify${randomBytes(3).toString('hex')}`;
  const created = await admin('POST', '/users', { username, email: `${username}@example.test`, password: PASSWORD });
  const userId = created.body.user.id;
  const browser = createJar();
  await signInAtTessera(browser, username);
  const first = await forumPage(browser);
  check('a Tessera sign-in logs the user into NodeBB through the shared cookie', first.uid > 0, `uid ${first.uid}`);
  const uid = first.uid;
  const sessionKey = (id) => `sess:${id}`;
  const stored = JSON.parse((await redis.get(sessionKey(forumSessionId(browser)))) || '{}');
  check('the NodeBB session records its Tessera session (action:user.loggedIn)', typeof stored.tessera?.sid === 'string', JSON.stringify(stored.tessera));

  // --- 2. Tessera logout → NodeBB sessions destroyed (timed) ------------------------------
  const timings = [];
  for (let i = 0; i < LOGOUTS; i++) {
    const jar = createJar();
    await signInAtTessera(jar, username);
    const page = await forumPage(jar);
    if (page.uid !== uid) throw new Error(`round ${i}: not signed in to the forum`);
    const sid = forumSessionId(jar);
    const started = performance.now();
    const out = await fetch(`${TESSERA}/v1/logout/api`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_token: jar.cookies.get('tessera_session') }) });
    if (out.status !== 204) throw new Error(`round ${i}: Tessera logout answered ${out.status}`);
    await waitFor('the NodeBB session destroyed', async () => !(await redis.exists(sessionKey(sid))) && !(await redis.zScore(`uid:${uid}:sessions`, sid)), 30_000, 1);
    timings.push(performance.now() - started);
  }
  timings.sort((a, b) => a - b);
  const pick = (q) => timings[Math.min(timings.length - 1, Math.ceil(q * timings.length) - 1)];
  check(`${LOGOUTS} Tessera logouts each destroyed the forum session`, timings.length === LOGOUTS, `median ${pick(0.5).toFixed(1)} ms, p99 ${pick(0.99).toFixed(1)} ms, max ${timings.at(-1).toFixed(1)} ms`);

  // --- 3. A late user-wide logout does not end the session started meanwhile --------------
  const early = createJar();
  await signInAtTessera(early, username);
  await forumPage(early);
  const earlySid = forumSessionId(early);
  // The forum "answers 400 for a while": its back-channel URL points at a wrong path.
  await admin('PATCH', `/apps/${CLIENT_ID}`, { backchannel_logout_uri: `${FORUM}/tessera/no-such-endpoint` });
  // Tessera's delivery worker reads an app's settings at most once a second.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const ended = await admin('DELETE', `/users/${userId}/sessions`);
  const endedHandle = ended.body.revoked[0];
  await waitFor('two failed attempts', async () => {
    const d = await admin('GET', `/sessions/${endedHandle}/deliveries`);
    return d.body.deliveries.find((x) => x.client_id === CLIENT_ID && x.attempts >= 2);
  });
  const late = createJar();
  await signInAtTessera(late, username);
  const again = await forumPage(late);
  const lateSid = forumSessionId(late);
  await new Promise((resolve) => setTimeout(resolve, 1100)); // the retry's iat is then after the new sign-in
  await admin('PATCH', `/apps/${CLIENT_ID}`, { backchannel_logout_uri: `${FORUM}/tessera/backchannel-logout` });
  await waitFor('the retried delivery delivered', async () => {
    const d = await admin('GET', `/sessions/${endedHandle}/deliveries`);
    return d.body.deliveries.find((x) => x.client_id === CLIENT_ID && x.status === 'delivered');
  }, 120_000, 200);
  const earlyGone = !(await redis.exists(sessionKey(earlySid)));
  const lateKept = Boolean(await redis.exists(sessionKey(lateSid)));
  const lateStill = await forumPage(late);
  check('a retried user-wide logout ends the session it ended …', earlyGone);
  check('… and not the one the user started meanwhile (still signed in after a page load)', again.uid === uid && lateKept && lateStill.uid === uid, `uid ${lateStill.uid}`);

  // --- 4. Activity reaches Tessera ---------------------------------------------------------
  // Tessera writes a use at most once per session.touchIntervalSeconds (1 s in this run's
  // config file); the plugin reports at most once per activityMinutes per session, so a fresh
  // session shows it: signed in at Tessera, the first forum page view a second later.
  const active = createJar();
  await signInAtTessera(active, username);
  const handle = JSON.parse(Buffer.from(active.cookies.get('token').split('.')[1], 'base64url').toString()).sid;
  const before = (await admin('GET', `/users/${userId}/sessions`)).body.sessions.find((s) => s.handle === handle);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await forumPage(active, '/recent');
  const after = await waitFor('activity reported', async () => {
    const s = (await admin('GET', `/users/${userId}/sessions`)).body.sessions.find((x) => x.handle === handle);
    return s && s.last_seen_at !== before.last_seen_at ? s : undefined;
  }, 15_000, 200).catch(() => null);
  check('a forum page view moves the Tessera session\'s last use and idle deadline (activity)', Boolean(after), after ? `last_seen ${before.last_seen_at} → ${after.last_seen_at}, idle deadline ${before.idle_expires_at} → ${after.idle_expires_at}` : 'unchanged');

  // --- 5. Logout at the forum ends the Tessera session everywhere --------------------------
  const tesseraToken = late.cookies.get('tessera_session');
  const { csrf } = await forumPage(late);
  const forumOut = await request(late, `${FORUM}/logout`, { method: 'POST', headers: { 'x-csrf-token': csrf } });
  check('NodeBB\'s own logout answers 200', forumOut.status === 200, `HTTP ${forumOut.status}`);
  const whoami = await waitFor('the Tessera session ended', async () => {
    const r = await fetch(`${TESSERA}/v1/whoami`, { headers: { 'x-session-token': tesseraToken } });
    return r.status === 401 ? r : undefined;
  }, 15_000, 50).catch(() => null);
  check('a logout at the forum ends the Tessera session (whoami 401 for the site)', Boolean(whoami));
  const plugin = /\[plugins\/tessera\][^\n]*/g;
  const lines = nodebbLog().match(plugin) || [];
  console.log(`\nlast plugin log lines:\n  ${lines.slice(-5).join('\n  ')}`);
  rmSync(dataDir, { recursive: true, force: true });
} catch (error) {
  check('walk', false, error instanceof Error ? error.stack : String(error));
  for (const { name, output } of children) console.error(`--- ${name} output (tail) ---\n${output().slice(-4000)}`);
} finally {
  await stopAll();
}
const failed = results.filter((r) => !r.ok).length;
console.log(`\n${results.length - failed} ok, ${failed} failed`);
process.exit(failed ? 1 : 0);
