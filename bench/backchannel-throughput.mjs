// Back-channel logout throughput: 1,000 sessions each joined by 5 apps, all ended by one
// admin call (POST /admin/api/sessions/revoke with the 1,000 handles), timed from the
// revoke response until the 5,000th logout token has arrived. Every app is its own
// node:http receiver in this process that verifies each token's signature and claims with
// jose against Tessera's JWKS and answers 204, as a relying party would. Tessera is the
// built server (packages/server/dist) in a process of its own, on SQLite and, unless
// --no-postgres, on PostgreSQL in a schema of its own (created and dropped here).
//
//   node bench/backchannel-throughput.mjs [--sessions 1000 --apps 5 --rounds 3
//     --postgres URL --no-postgres --profile --json FILE --config '{"outbox":{…}}']
//
// Goal: at least 1,000 deliveries a second.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { createLocalJWKSet, jwtVerify } from 'jose';
import pg from 'pg';
import { withDefaultUser } from '../packages/store/dist/index.js';
import { postgresSchema } from './lib/postgres-schema.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const GOAL = 1_000;
const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

const { values: args } = parseBenchArgs(import.meta.url, {
  options: {
    sessions: { type: 'string', default: '1000' },
    apps: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    postgres: { type: 'string', default: process.env.TESSERA_BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test' },
    'no-postgres': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    config: { type: 'string', default: '{}' },
    json: { type: 'string' },
  },
});
const SESSIONS = Number(args.sessions);
const APPS = Number(args.apps);
const ROUNDS = Number(args.rounds);
const extraConfig = JSON.parse(args.config);

const log = (line) => process.stderr.write(`${line}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

// USER_HZ: the unit of the CPU times in /proc/<pid>/stat (100 on every common Linux).
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }));
  return results;
}

/** Starts bench/servers/tessera.mjs (the built server) with `env`; resolves with { child, url }. */
function startTessera(env, execArgv) {
  return new Promise((resolve, reject) => {
    const child = fork(join(here, 'servers', 'tessera.mjs'), [], { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('exit', (code) => reject(new Error(`tessera exited with code ${code} before it was ready`)));
    child.once('message', (m) => resolve({ child, url: m.url }));
  });
}

function stopTessera(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** A relying party's back-channel endpoint: verifies every token, answers 204. */
function startReceiver(state, index) {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        try {
          const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token');
          const { payload } = await jwtVerify(token, state.jwks, { issuer: state.issuer, audience: state.clientIds[index], typ: 'logout+jwt', requiredClaims: ['iat', 'exp', 'jti', 'sid'] });
          if (typeof payload.events?.[EVENT] !== 'object' || 'nonce' in payload) throw new Error('not a logout token');
          state.onArrival(index, payload.sid);
          res.writeHead(204).end();
        } catch (error) {
          state.rejected += 1;
          state.lastRejection = error.message;
          res.writeHead(400).end();
        }
      });
    });
    server.keepAliveTimeout = 30_000;
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}/backchannel-logout` }));
  });
}

async function call(url, path, { method = 'GET', headers = {}, body, status } = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (status !== undefined && response.status !== status) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

/**
 * One round: a fresh Tessera node and its apps; then each burst: 1,000 new sessions joined
 * by every app, all ended by one call, timed until every delivery has arrived. `between`
 * runs after each burst (PostgreSQL: ANALYZE, as autovacuum does after such a load).
 */
async function runRound({ label, databaseUrl, round, bursts, between }) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-bcl-'));
  const adminToken = randomBytes(30).toString('base64url');
  const configFile = join(dataDir, 'tessera.json');
  writeFileSync(configFile, JSON.stringify(extraConfig));
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TESSERA_')));
  Object.assign(env, {
    TESSERA_PORT: '0', TESSERA_HOST: '127.0.0.1', TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: 'warn', TESSERA_COOKIE_SECURE: 'false', TESSERA_RATE_LIMIT: 'false', TESSERA_ADMIN_TOKEN: adminToken, TESSERA_CONFIG: configFile,
    ...(databaseUrl ? { TESSERA_DATABASE_URL: databaseUrl } : {}),
  });
  const profileDir = join(here, '.results', 'profiles');
  if (args.profile) mkdirSync(profileDir, { recursive: true });
  const execArgv = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=backchannel-${label}-${round}.cpuprofile`] : [];
  const { child, url } = await startTessera(env, execArgv);
  const admin = { authorization: `Bearer ${adminToken}` };

  const state = { jwks: null, issuer: url, clientIds: [], rejected: 0, lastRejection: null, arrivals: 0, unique: 0, lastAt: 0, done: () => {}, seen: [], onArrival: () => {} };
  const receivers = [];
  const results = [];
  try {
    for (let i = 0; i < APPS; i += 1) receivers.push(await startReceiver(state, i));
    const apps = [];
    for (let i = 0; i < APPS; i += 1) {
      const created = await call(url, '/admin/api/apps', { method: 'POST', headers: admin, body: { name: `bench-rp-${i}`, trusted: i === 0, backchannel_logout_uri: receivers[i].url }, status: 201 });
      const basic = `Basic ${Buffer.from(`${encodeURIComponent(created.app.client_id)}:${encodeURIComponent(created.client_secret)}`).toString('base64')}`;
      apps.push({ clientId: created.app.client_id, basic });
      state.clientIds.push(created.app.client_id);
    }
    state.jwks = createLocalJWKSet(await call(url, '/.well-known/jwks.json', { status: 200 }));
    const expected = SESSIONS * APPS;

    for (const [b, burst] of bursts.entries()) {
      const seedStarted = performance.now();
      const users = await mapLimit(Array.from({ length: Math.ceil(SESSIONS / 10) }, (_, i) => i), 8, async (i) =>
        (await call(url, '/admin/api/users', { method: 'POST', headers: admin, body: { username: `bench${b}x${i}`, email: `bench${b}x${i}@example.test` }, status: 201 })).user.id);
      const handles = await mapLimit(Array.from({ length: SESSIONS }, (_, i) => users[i % users.length]), 16, async (userId) => {
        const started = await call(url, '/v1/sessions', { method: 'POST', headers: { authorization: apps[0].basic }, body: { user_id: userId }, status: 201 });
        for (const app of apps.slice(1)) {
          const response = await fetch(`${url}/v1/whoami`, { headers: { authorization: app.basic, 'x-session-token': started.session_token } });
          await response.arrayBuffer();
          if (response.status !== 200) throw new Error(`whoami answered ${response.status}`);
        }
        return started.session.handle;
      });
      const seedSeconds = (performance.now() - seedStarted) / 1000;
      const before = (await call(url, '/admin/api/deliveries?limit=1', { headers: admin, status: 200 })).counts.delivered;

      Object.assign(state, { arrivals: 0, unique: 0, lastAt: 0, seen: apps.map(() => new Set()) });
      const allArrived = new Promise((resolve) => (state.done = resolve));
      state.onArrival = (index, sid) => {
        state.arrivals += 1;
        if (!state.seen[index].has(sid)) {
          state.seen[index].add(sid);
          state.unique += 1;
          if (state.unique === expected) {
            state.lastAt = performance.now();
            state.done();
          }
        }
      };
      const cpuBefore = cpuSeconds(child.pid);
      const revokeStarted = performance.now();
      // Chunks of at most 1,000 handles (the route's limit); one call at the default size.
      for (let i = 0; i < handles.length; i += 1000) {
        const revoked = await call(url, '/admin/api/sessions/revoke', { method: 'POST', headers: admin, body: { handles: handles.slice(i, i + 1000) }, status: 200 });
        if (revoked.revoked.length !== Math.min(1000, handles.length - i)) throw new Error('not every session was revoked');
      }
      const revokeAnswered = performance.now();
      const timeout = setTimeout(() => state.done(), 120_000);
      await allArrived;
      clearTimeout(timeout);
      if (state.unique !== expected) throw new Error(`only ${state.unique} of ${expected} deliveries arrived within 120 s (rejected: ${state.rejected}, ${state.lastRejection})`);
      const cpuAfterArrivals = cpuSeconds(child.pid);
      // Arrived is not yet recorded: wait for the outbox to say delivered for all.
      let counts;
      for (;;) {
        counts = (await call(url, '/admin/api/deliveries?limit=1', { headers: admin, status: 200 })).counts;
        if (counts.delivered - before === expected || performance.now() - revokeAnswered > 120_000) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const recordedAt = performance.now();
      if (counts.delivered - before !== expected || counts.pending !== 0 || counts.dead !== 0) throw new Error(`admin API shows ${JSON.stringify(counts)}`);
      if (state.rejected > 0) throw new Error(`${state.rejected} tokens were rejected: ${state.lastRejection}`);

      const deliverSeconds = (state.lastAt - revokeAnswered) / 1000;
      const result = {
        store: label,
        round,
        burst,
        sessions: SESSIONS,
        apps: APPS,
        deliveries: expected,
        arrivals: state.arrivals,
        duplicates: state.arrivals - expected,
        revokeMs: revokeAnswered - revokeStarted,
        deliverSeconds,
        deliveriesPerSecond: expected / deliverSeconds,
        recordedSeconds: (recordedAt - revokeAnswered) / 1000,
        tesseraCpuMicrosPerDelivery: cpuBefore === null || cpuAfterArrivals === null ? null : ((cpuAfterArrivals - cpuBefore) * 1e6) / expected,
        seedSeconds,
      };
      log(`  ${label} round ${round} (${burst}): ${expected} deliveries in ${deliverSeconds.toFixed(2)} s after the revoke answered (${Math.round(result.deliveriesPerSecond)}/s; revoke call ${result.revokeMs.toFixed(0)} ms; Tessera CPU ${result.tesseraCpuMicrosPerDelivery?.toFixed(0) ?? 'n/a'} µs per delivery)`);
      results.push(result);
      if (between) await between();
    }
    return results;
  } finally {
    await stopTessera(child);
    await Promise.all(receivers.map((r) => new Promise((resolve) => { r.server.closeAllConnections(); r.server.close(resolve); })));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A schema of its own on `url` (bench/lib/postgres-schema.mjs), with analyze() of the outbox tables. */
async function outboxSchema(url) {
  const schema = await postgresSchema(url, 'bench_bcl');
  return { ...schema, analyze: () => schema.run(`ANALYZE ${schema.name}.deliveries, ${schema.name}.delivery_sessions`) };
}

const summarize = (rounds) => ({
  deliveriesPerSecond: median(rounds.map((r) => r.deliveriesPerSecond)),
  deliverSeconds: median(rounds.map((r) => r.deliverSeconds)),
  revokeMs: median(rounds.map((r) => r.revokeMs)),
  recordedSeconds: median(rounds.map((r) => r.recordedSeconds)),
  tesseraCpuMicrosPerDelivery: rounds.every((r) => r.tesseraCpuMicrosPerDelivery !== null) ? median(rounds.map((r) => r.tesseraCpuMicrosPerDelivery)) : null,
});

/**
 * SQLite: one burst per round on a fresh node. PostgreSQL: a first burst on a fresh schema
 * ("cold": the new tables have no planner statistics yet), ANALYZE (what autovacuum does
 * within a minute of such a load), then a second burst ("warm"), as on a node that has run.
 */
async function measure(label, databaseUrl) {
  const rounds = [];
  for (let round = 1; round <= ROUNDS; round += 1) {
    if (databaseUrl) {
      const schema = await outboxSchema(databaseUrl);
      try {
        rounds.push(...(await runRound({ label, databaseUrl: schema.url, round, bursts: ['cold', 'warm'], between: schema.analyze })));
      } finally {
        await schema.drop();
      }
    } else {
      rounds.push(...(await runRound({ label, round, bursts: ['cold'] })));
    }
  }
  const bursts = [...new Set(rounds.map((r) => r.burst))];
  return { rounds, median: Object.fromEntries(bursts.map((b) => [b, summarize(rounds.filter((r) => r.burst === b))])) };
}

async function main() {
  log(`back-channel throughput: ${SESSIONS} sessions × ${APPS} apps, ${ROUNDS} rounds per store`);
  const sqlite = await measure('sqlite');
  let postgres = null;
  if (!args['no-postgres']) {
    try {
      const probe = new pg.Client({ connectionString: withDefaultUser(args.postgres) });
      await probe.connect();
      await probe.end();
      postgres = await measure('postgres', args.postgres);
    } catch (error) {
      postgres = { skipped: `PostgreSQL at ${args.postgres.replace(/\/\/[^@/]*@/, '//')} could not be used: ${error.message}` };
      log(postgres.skipped);
    }
  }
  const result = {
    settings: { sessions: SESSIONS, apps: APPS, rounds: ROUNDS, config: extraConfig, goal: GOAL },
    // Other work on the machine moves these figures; the load at the end says how much.
    machine: { cores: availableParallelism(), loadavg: loadavg() },
    sqlite,
    postgres,
  };
  for (const [label, part] of [['SQLite', sqlite], ['PostgreSQL', postgres]]) {
    if (!part || part.skipped) continue;
    for (const [burst, m] of Object.entries(part.median)) log(`${label} (${burst}): median ${Math.round(m.deliveriesPerSecond)} deliveries/s, ${Math.round(m.tesseraCpuMicrosPerDelivery ?? 0)} µs Tessera CPU per delivery (goal ≥ ${GOAL}/s: ${m.deliveriesPerSecond >= GOAL ? 'met' : 'NOT met'})`);
  }
  if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
