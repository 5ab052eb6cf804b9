// Benchmark: `GET /v1/whoami` on Tessera (SQLite) against a bare node:http server that
// answers the same JSON bytes, both on this machine, measured side by side in one run.
//
//   node bench/whoami.mjs [--rounds 5] [--seconds 5] [--connections 10] [--profile] [--json out.json]
//
// Needs the build (`npx tsc -b`); `npm run bench` does it. Each target is its own process;
// autocannon runs in this process. Rounds alternate (bare, tessera, bare, tessera, …) so
// that drift in the machine's load hits both targets alike; the result is the median
// req/s of each target and their ratio. --profile runs both server processes under
// `node --cpu-prof` and writes the profiles to bench/.results/profiles/ (named by pid; the
// pids are in the result).
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { cpuSeconds, expectStatus, request, startChild, stopChild } from './lib/children.mjs';
import { median, round } from './lib/stats.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const medianOrNull = (values) => (values.includes(null) ? null : round(median(values), 1));

/** One autocannon run; throws if any response was not a 2xx or any request failed. */
async function load(label, url, headers, { seconds, connections, pipelining, pid }) {
  const cpuBefore = cpuSeconds(pid);
  const ownBefore = process.cpuUsage();
  const result = await autocannon({ url, headers, connections, pipelining, duration: seconds });
  const own = process.cpuUsage(ownBefore);
  const cpuAfter = cpuSeconds(pid);
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`${label}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  return {
    target: label,
    reqPerSec: round(result.requests.average, 1),
    requests: result.requests.total,
    // Little's law for a closed loop: autocannon records latencies in whole milliseconds,
    // too coarse here, so the mean latency is derived from the throughput instead.
    impliedLatencyMs: round((connections * pipelining * 1000) / result.requests.average, 3),
    serverCpuMicrosPerRequest: cpuBefore === null || cpuAfter === null ? null : round(((cpuAfter - cpuBefore) * 1e6) / result.requests.total, 1),
    loadGeneratorCpuMicrosPerRequest: round((own.user + own.system) / result.requests.total, 1),
  };
}

/**
 * Runs the whoami benchmark and returns its figures.
 *
 * @example
 * ```js
 * const result = await runWhoamiBench({ rounds: 5, seconds: 5 });
 * console.log(result.ratio); // tessera req/s ÷ bare req/s
 * ```
 */
export async function runWhoamiBench(options = {}) {
  const settings = { rounds: 5, seconds: 5, warmupSeconds: 3, connections: 10, pipelining: 1, profile: false, ...options };
  const log = options.log ?? ((line) => console.error(line));
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-whoami-'));
  const adminToken = randomBytes(30).toString('base64url');
  // Only the settings below reach the node: a TESSERA_DATABASE_URL in the caller's
  // environment must not turn this SQLite benchmark into a PostgreSQL one.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TESSERA_')));
  Object.assign(env, {
    TESSERA_PORT: '0',
    TESSERA_HOST: '127.0.0.1',
    TESSERA_DATA_DIR: dataDir,
    TESSERA_LOG_LEVEL: 'warn',
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_RATE_LIMIT: 'false',
    TESSERA_ADMIN_TOKEN: adminToken,
  });
  const profileDir = join(here, '.results', 'profiles');
  const execArgv = settings.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  if (settings.profile) mkdirSync(profileDir, { recursive: true });

  const children = [];
  try {
    const tessera = await startChild(join(here, 'servers', 'tessera.mjs'), { env, execArgv });
    children.push(tessera.child);
    const admin = { authorization: `Bearer ${adminToken}` };

    // A user, a trusted app, and a session the app starts for the user: the real flow.
    const user = (await expectStatus('create user', request(`${tessera.url}/admin/api/users`, { method: 'POST', headers: admin, body: { username: 'bench-user', email: 'bench@example.test', first_name: 'Bench', last_name: 'User' } }), 201)).json().user;
    const app = (await expectStatus('create app', request(`${tessera.url}/admin/api/apps`, { method: 'POST', headers: admin, body: { name: 'bench-app', trusted: true } }), 201)).json();
    const basic = `Basic ${Buffer.from(`${app.app.client_id}:${app.client_secret}`).toString('base64')}`;
    const started = (await expectStatus('start session', request(`${tessera.url}/v1/sessions`, { method: 'POST', headers: { authorization: basic }, body: { user_id: user.id, device: { ip: '127.0.0.1', user_agent: 'autocannon' } } }), 201)).json();
    const sessionHeaders = { 'x-session-token': started.session_token };

    // One real whoami response: its bytes are what the bare server serves.
    const sample = await expectStatus('whoami', request(`${tessera.url}/v1/whoami`, { headers: sessionHeaders }), 200);
    const bare = await startChild(join(here, 'servers', 'bare.mjs'), { execArgv, message: { body: sample.bytes.toString('base64'), contentType: sample.headers.get('content-type') } });
    children.push(bare.child);
    const check = await expectStatus('bare', request(bare.url), 200);
    if (!check.bytes.equals(sample.bytes)) throw new Error('the bare server does not answer the same bytes as whoami');

    const targets = {
      bare: { url: bare.url, headers: sessionHeaders, pid: bare.child.pid },
      tessera: { url: `${tessera.url}/v1/whoami`, headers: sessionHeaders, pid: tessera.child.pid },
    };
    const shape = { connections: settings.connections, pipelining: settings.pipelining };
    log(`whoami: warm-up ${settings.warmupSeconds} s per target`);
    for (const [name, t] of Object.entries(targets)) await load(name, t.url, t.headers, { ...shape, pid: t.pid, seconds: settings.warmupSeconds });

    const rounds = [];
    for (let i = 1; i <= settings.rounds; i++) {
      for (const [name, t] of Object.entries(targets)) {
        const r = await load(name, t.url, t.headers, { ...shape, pid: t.pid, seconds: settings.seconds });
        rounds.push({ round: i, ...r });
        log(`whoami: round ${i}/${settings.rounds} ${name.padEnd(7)} ${r.reqPerSec} req/s (CPU per request: server ${r.serverCpuMicrosPerRequest} µs, autocannon ${r.loadGeneratorCpuMicrosPerRequest} µs)`);
      }
    }

    const of = (name) => rounds.filter((r) => r.target === name);
    const bareMedian = median(of('bare').map((r) => r.reqPerSec));
    const tesseraMedian = median(of('tessera').map((r) => r.reqPerSec));
    const pairRatios = of('tessera').map((r, i) => round(r.reqPerSec / of('bare')[i].reqPerSec, 3));
    return {
      settings: { rounds: settings.rounds, seconds: settings.seconds, warmupSeconds: settings.warmupSeconds, connections: settings.connections, pipelining: settings.pipelining, profile: settings.profile },
      responseBytes: sample.bytes.length,
      pids: { tessera: tessera.child.pid, bare: bare.child.pid },
      rounds,
      median: {
        bare: { reqPerSec: bareMedian, loadGeneratorCpuMicrosPerRequest: round(median(of('bare').map((r) => r.loadGeneratorCpuMicrosPerRequest)), 1), impliedLatencyMs: round(median(of('bare').map((r) => r.impliedLatencyMs)), 3), serverCpuMicrosPerRequest: medianOrNull(of('bare').map((r) => r.serverCpuMicrosPerRequest)) },
        tessera: { reqPerSec: tesseraMedian, loadGeneratorCpuMicrosPerRequest: round(median(of('tessera').map((r) => r.loadGeneratorCpuMicrosPerRequest)), 1), impliedLatencyMs: round(median(of('tessera').map((r) => r.impliedLatencyMs)), 3), serverCpuMicrosPerRequest: medianOrNull(of('tessera').map((r) => r.serverCpuMicrosPerRequest)) },
      },
      ratio: round(tesseraMedian / bareMedian, 3),
      pairRatios,
      goal: 0.5,
    };
  } finally {
    for (const child of children.reverse()) await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseBenchArgs(import.meta.url, {
    options: {
      rounds: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '10' },
      profile: { type: 'boolean', default: false },
      json: { type: 'string' },
    },
  });
  const result = await runWhoamiBench({ rounds: Number(values.rounds), seconds: Number(values.seconds), connections: Number(values.connections), profile: values.profile });
  const text = JSON.stringify(result, null, 2);
  if (values.json) writeFileSync(values.json, `${text}\n`);
  else console.log(text);
}
