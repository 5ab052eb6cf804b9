// Benchmark: throughput of one tiny protected route, `GET /me` on plain node:http, unguarded
// and guarded four ways, all measured side by side in one run on this machine:
//
//   unguarded        the baseline: no check at all
//   tessera          @tessera/sdk (node:http adapter), local verification + revocation set,
//                    following the revocation feed of a real Tessera node
//   jose             jose jwtVerify of the same access tokens on every request (no cache)
//   express-session  express-session with its MemoryStore (middleware called on node:http)
//   better-auth      better-auth getSession on SQLite (better-sqlite3)
//
//   node bench/protected-route.mjs [--rounds 10] [--seconds 3] [--connections 10] [--users 1000]
//                                  [--rotation list|setup-request] [--targets unguarded,tessera,…]
//                                  [--profile] [--json out.json]
//
// Needs the build (`npx tsc -b`); `npm run bench` does it. Each target is its own process
// (bench/servers/me.mjs); autocannon runs in this process and sends every request with the
// next of `users` distinct credentials (see `load` for how): 1,000 users' Tessera access
// tokens for unguarded, tessera and jose, 1,000 session cookies for express-session and
// better-auth. A check run before the
// timed rounds has each server count the distinct credentials and identities it served,
// so the rotation is verified, not assumed. Rounds alternate over the targets so that drift
// in the machine's load hits them all alike; each target's figure is its median req/s, and
// each ratio is that over the unguarded median.
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { ask, cpuSeconds, expectStatus, mapLimit, request, startChild, stopChild } from './lib/children.mjs';
import { median, round } from './lib/stats.mjs';
import { startTessera } from './lib/tessera.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const TARGETS = ['unguarded', 'tessera', 'jose', 'express-session', 'better-auth'];
export const GOAL = 0.8;
// Long enough that no token expires during the run (the default is 300 s); verification
// costs the same whatever the lifetime.
const ACCESS_TOKEN_TTL_SECONDS = 3600;

/** autocannon's `requests` list for one connection: every credential once, from `offset` on. */
function requestList(target, offset) {
  const n = target.credentials.length;
  return Array.from({ length: n }, (_, i) => ({ method: 'GET', path: '/me', headers: { [target.header]: target.credentials[(offset + i) % n] } }));
}

/**
 * One load run against `target`, each request carrying the next credential in rotation.
 *
 * rotation 'list' (the default): one autocannon instance per connection, all in this
 * process, each with autocannon's `requests` list of every credential built once and
 * started at its own offset (connection k at k·n/connections), so that even a slow target
 * sees all n credentials within a round, and concurrent requests carry different ones.
 * autocannon then spends no more per request than for a fixed request: the load generator
 * shares the machine's two cores with the server under test, so its cost per request caps
 * every target.
 *
 * rotation 'setup-request': one instance whose `setupRequest` sets the header from a
 * shared counter; autocannon then rebuilds every request, which costs it about twice the
 * CPU per request. Same rotation, heavier load generator.
 *
 * Throws if any response was not a 2xx or any request failed.
 */
async function load(target, { seconds, amount, connections, rotation = 'list' }) {
  const values = target.credentials;
  let runs;
  let sent = () => null;
  const base = { url: target.url, pipelining: 1 };
  if (rotation === 'setup-request') {
    let next = 0;
    const setupRequest = (req) => {
      req.headers[target.header] = values[next++ % values.length];
      return req;
    };
    sent = () => next;
    runs = [{ ...base, connections, ...(amount ? { amount } : { duration: seconds }), requests: [{ method: 'GET', path: '/me', setupRequest }] }];
  } else {
    target.lists ??= Array.from({ length: connections }, (_, k) => requestList(target, Math.floor((k * values.length) / connections)));
    runs = target.lists.map((requests, k) => ({
      ...base,
      connections: 1,
      ...(amount ? { amount: Math.floor(amount / connections) + (k < amount % connections ? 1 : 0) } : { duration: seconds }),
      requests,
    }));
  }
  const cpuBefore = cpuSeconds(target.pid);
  const ownBefore = process.cpuUsage();
  const started = performance.now();
  const results = await Promise.all(runs.map((options) => autocannon(options)));
  const elapsedSeconds = (performance.now() - started) / 1000;
  const own = process.cpuUsage(ownBefore);
  const cpuAfter = cpuSeconds(target.pid);
  const sum = (pick) => results.reduce((total, r) => total + pick(r), 0);
  const [non2xx, errors, timeouts] = [sum((r) => r.non2xx), sum((r) => r.errors), sum((r) => r.timeouts)];
  if (non2xx > 0 || errors > 0 || timeouts > 0) throw new Error(`${target.name}: ${non2xx} non-2xx, ${errors} errors, ${timeouts} timeouts`);
  const requests = sum((r) => r.requests.total);
  // For a timed run, the instances' per-second averages add up (they run side by side);
  // for a fixed amount, requests over the wall time.
  const reqPerSec = amount ? requests / elapsedSeconds : sum((r) => r.requests.average);
  return {
    target: target.name,
    reqPerSec: round(reqPerSec, 1),
    requests,
    credentialsSent: sent(),
    impliedLatencyMs: round((connections * 1000) / reqPerSec, 3),
    serverCpuMicrosPerRequest: cpuBefore === null || cpuAfter === null ? null : round(((cpuAfter - cpuBefore) * 1e6) / requests, 1),
    loadGeneratorCpuMicrosPerRequest: round((own.user + own.system) / requests, 1),
  };
}

/**
 * Runs the protected-route benchmark and returns its figures.
 *
 * @example
 * ```js
 * const result = await runProtectedRouteBench({ rounds: 10, seconds: 3 });
 * console.log(result.ratios.tessera); // tessera req/s ÷ unguarded req/s
 * ```
 */
export async function runProtectedRouteBench(options = {}) {
  const settings = { rounds: 10, seconds: 3, warmupSeconds: 3, connections: 10, users: 1000, rotation: 'list', targets: TARGETS, costIterations: 100_000, profile: false, ...options };
  if (!settings.targets.includes('unguarded') || settings.targets.some((t) => !TARGETS.includes(t))) throw new TypeError(`targets must include unguarded and be among ${TARGETS.join(', ')}`);
  const log = options.log ?? ((line) => console.error(line));
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-me-'));
  const profileDir = join(here, '.results', 'profiles');
  const execArgv = settings.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  if (settings.profile) mkdirSync(profileDir, { recursive: true });
  const children = [];
  let tessera;
  try {
    tessera = await startTessera({ env: { TESSERA_ACCESS_TOKEN_TTL: String(ACCESS_TOKEN_TTL_SECONDS) } });
    const app = await tessera.createApp({ trusted: true });
    let started = performance.now();
    const users = await tessera.createUsersWithTokens(app, settings.users);
    log(`protected-route: ${settings.users} Tessera users, sessions and access tokens in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const bearer = users.map((u) => `Bearer ${u.accessToken}`);
    const secret = randomBytes(32).toString('base64url');

    const configs = {
      unguarded: { variant: 'unguarded' },
      tessera: { variant: 'tessera', issuer: tessera.url, clientId: app.clientId, clientSecret: app.clientSecret },
      jose: { variant: 'jose', issuer: tessera.url, clientId: app.clientId },
      'express-session': { variant: 'express-session', secret },
      'better-auth': { variant: 'better-auth', secret, dataDir, users: settings.users },
    };
    const targets = {};
    for (const name of TARGETS.filter((n) => settings.targets.includes(n))) {
      started = performance.now();
      const { child, url, ready } = await startChild(join(here, 'servers', 'me.mjs'), { execArgv, message: configs[name] });
      children.push(child);
      // better-auth made its users itself and sent their cookies; express-session's are made below.
      const cookies = name === 'better-auth' || name === 'express-session';
      targets[name] = { name, url, pid: child.pid, child, header: cookies ? 'cookie' : 'authorization', credentials: name === 'better-auth' ? ready.cookies : bearer };
      log(`protected-route: ${name} ready in ${((performance.now() - started) / 1000).toFixed(1)} s (pid ${child.pid})`);
    }
    // express-session: 1,000 sign-ins through its own middleware, each leaving a session in
    // the MemoryStore and a signed cookie.
    if (targets['express-session']) targets['express-session'].credentials = await mapLimit(Array.from({ length: settings.users }, (_, i) => i), 8, async (i) => {
      const response = await expectStatus('express-session login', request(`${targets['express-session'].url}/login?user=${i}`), 200);
      const cookie = response.headers.get('set-cookie')?.split(';')[0];
      if (!cookie?.startsWith('sid=')) throw new Error('express-session set no cookie');
      return cookie;
    });

    // Every guard accepts a real credential and refuses none or a forged one.
    for (const t of Object.values(targets)) {
      const ok = await expectStatus(`${t.name} /me`, request(`${t.url}/me`, { headers: { [t.header]: t.credentials[0] } }), 200);
      if (t.name === 'unguarded') continue;
      await expectStatus(`${t.name} /me without credentials`, request(`${t.url}/me`), 401);
      // The last characters are part of the signature (JWT) or of the cookie's HMAC.
      const forged = `${t.credentials[0].slice(0, -4)}AAAA`;
      await expectStatus(`${t.name} /me with a forged credential`, request(`${t.url}/me`, { headers: { [t.header]: forged } }), 401);
      if (!ok.json().sub) throw new Error(`${t.name}: /me has no sub`);
    }

    // The rotation check: 3 requests per credential, counted by the server.
    const rotationCheck = {};
    const shape = { connections: settings.connections, rotation: settings.rotation };
    for (const t of Object.values(targets)) {
      await ask(t.child, { type: 'record' }, 'recording');
      const amount = 3 * settings.users;
      const r = await load(t, { ...shape, amount });
      const report = await ask(t.child, { type: 'report' }, 'report');
      rotationCheck[t.name] = { sent: r.credentialsSent, served: report.requests, distinctCredentials: report.distinctCredentials, distinctIdentities: report.distinctIdentities };
      const identitiesExpected = t.name === 'unguarded' ? 1 : settings.users;
      if (report.requests !== amount || report.distinctCredentials !== settings.users || report.distinctIdentities !== identitiesExpected) {
        throw new Error(`${t.name}: rotation check failed: ${JSON.stringify(rotationCheck[t.name])}`);
      }
      log(`protected-route: ${t.name} rotation check: ${report.requests} requests, ${report.distinctCredentials} distinct credentials, ${report.distinctIdentities} distinct identities`);
    }

    log(`protected-route: warm-up ${settings.warmupSeconds} s per target`);
    for (const t of Object.values(targets)) await load(t, { ...shape, seconds: settings.warmupSeconds });
    const rounds = [];
    for (let i = 1; i <= settings.rounds; i++) {
      for (const t of Object.values(targets)) {
        const r = await load(t, { ...shape, seconds: settings.seconds });
        rounds.push({ round: i, ...r });
        log(`protected-route: round ${i}/${settings.rounds} ${t.name.padEnd(15)} ${r.reqPerSec} req/s (CPU per request: server ${r.serverCpuMicrosPerRequest} µs, autocannon ${r.loadGeneratorCpuMicrosPerRequest} µs)`);
      }
    }
    // The guards' own cost per request, in process (no HTTP, no load generator): what each
    // adds to the handler, free of the machine's noise. Only the token guards, whose
    // middleware needs nothing of a real request but its headers; jose, 50× slower per call,
    // with a twentieth of the calls.
    const inProcess = {};
    for (const name of ['unguarded', 'tessera', 'jose'].filter((n) => targets[n])) {
      const t = targets[name];
      const answer = await ask(t.child, { type: 'cost', header: t.header, values: t.credentials, iterations: name === 'jose' ? Math.ceil(settings.costIterations / 20) : settings.costIterations }, 'cost', 300_000);
      inProcess[name] = { microsPerCall: round(answer.microsPerCall, 2), runs: answer.runs.map((v) => round(v, 2)) };
      log(`protected-route: ${name} in process: ${inProcess[name].microsPerCall} µs per call`);
    }
    const sdkStatus = targets.tessera ? (await ask(targets.tessera.child, { type: 'report' }, 'report')).sdk : null;

    const of = (name) => rounds.filter((r) => r.target === name);
    const medians = {};
    const measured = TARGETS.filter((n) => targets[n]);
    for (const name of measured) {
      const rs = of(name);
      medians[name] = {
        reqPerSec: median(rs.map((r) => r.reqPerSec)),
        impliedLatencyMs: round(median(rs.map((r) => r.impliedLatencyMs)), 3),
        serverCpuMicrosPerRequest: rs.some((r) => r.serverCpuMicrosPerRequest === null) ? null : round(median(rs.map((r) => r.serverCpuMicrosPerRequest)), 1),
        loadGeneratorCpuMicrosPerRequest: round(median(rs.map((r) => r.loadGeneratorCpuMicrosPerRequest)), 1),
      };
    }
    const ratios = Object.fromEntries(measured.map((name) => [name, round(medians[name].reqPerSec / medians.unguarded.reqPerSec, 3)]));
    const pairRatios = Object.fromEntries(measured.map((name) => [name, of(name).map((r, i) => round(r.reqPerSec / of('unguarded')[i].reqPerSec, 3))]));
    const peers = measured.filter((n) => n !== 'unguarded' && n !== 'tessera');
    return {
      settings: { rounds: settings.rounds, seconds: settings.seconds, warmupSeconds: settings.warmupSeconds, connections: settings.connections, pipelining: 1, users: settings.users, rotation: settings.rotation, costIterations: settings.costIterations, accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS, profile: settings.profile },
      versions: versions(),
      pids: Object.fromEntries(Object.values(targets).map((t) => [t.name, t.pid])),
      rotationCheck,
      inProcess,
      sdkStatus,
      rounds,
      median: medians,
      ratios,
      pairRatios,
      goal: GOAL,
      goalMet: ratios.tessera >= GOAL && peers.every((p) => ratios.tessera > ratios[p]),
    };
  } finally {
    for (const child of children.reverse()) await stopChild(child);
    await tessera?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The versions of the peers and the load generator, from their installed package.json. */
function versions() {
  const root = join(here, '..');
  const version = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  return Object.fromEntries(['jose', 'express-session', 'better-auth', 'better-sqlite3', 'autocannon'].map((n) => [n, version(n)]));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseBenchArgs(import.meta.url, {
    options: {
      rounds: { type: 'string', default: '10' },
      seconds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '10' },
      users: { type: 'string', default: '1000' },
      rotation: { type: 'string', default: 'list' },
      targets: { type: 'string', default: TARGETS.join(',') },
      profile: { type: 'boolean', default: false },
      json: { type: 'string' },
    },
  });
  const result = await runProtectedRouteBench({ rounds: Number(values.rounds), seconds: Number(values.seconds), connections: Number(values.connections), users: Number(values.users), rotation: values.rotation, targets: values.targets.split(','), profile: values.profile });
  const text = JSON.stringify(result, null, 2);
  if (values.json) writeFileSync(values.json, `${text}\n`);
  else console.log(text);
}
