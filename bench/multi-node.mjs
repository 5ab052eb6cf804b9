// Benchmark: Tessera as several nodes over one PostgreSQL.
//
// 1. Cross-node propagation: three `tessera start` processes on one schema; a session is
//    ended on node 1 (DELETE /admin/api/sessions/:handle) and plain SSE followers of the
//    revocation stream on nodes 2 and 3 (two on each) note when the end arrives. The figure
//    per revocation is the time from the revoke response until the last of those four
//    followers has it. Measured with Redis (NOTIFY and Redis pub/sub both wake the nodes;
//    the first to arrive counts) and without Redis (PostgreSQL NOTIFY only), in alternating
//    passes, each on a cluster of its own. A follower on node 1 itself is the reference.
// 2. whoami throughput with 1, 2 and 3 nodes: the same three-node cluster; autocannon
//    spreads its connections over the first k nodes' ports; every whoami reads PostgreSQL
//    (no session cache on PostgreSQL), sessions rotate. Rounds alternate k = 1, 2, 3.
//
//   node bench/multi-node.mjs [--postgres URL] [--revocations 200] [--passes 2]
//                             [--rounds 3] [--seconds 5] [--connections 24] [--sessions 300]
//                             [--json out.json]
//
// Needs the build (`npx tsc -b`; `npm run bench` does it), PostgreSQL (default
// postgres://127.0.0.1:5432/test or TESSERA_BENCH_DATABASE_URL; the benchmark works in
// schemas of its own and drops them) and `redis-server` on the PATH (started here on a free
// port, never the system Redis).
import autocannon from 'autocannon';
import { randomBytes, randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { call, cpuSeconds, cpuSecondsByName, createSchema, follow, hasRedisServer, machineTicks, mapLimit, nowMs, registerApp, startCluster, startRedis } from './lib/cluster.mjs';
import { sleep } from './lib/children.mjs';
import { median, quantile, round, summarizeMs } from './lib/stats.mjs';

export const GOAL_P99_MS = 50;

const summarize = (values) => summarizeMs(values, 2);

/** Sessions started by a trusted app on `node`: [{ handle, token }]. */
async function startSessions(node, app, userId, count) {
  return mapLimit(Array.from({ length: count }), 8, async () => {
    const created = await call(`${node.url}/v1/sessions`, { method: 'POST', headers: { authorization: app.basic }, json: { user_id: userId, device: { user_agent: 'bench' } }, expect: 201 });
    return { handle: created.session.handle, token: created.session_token };
  });
}

async function setUp(node, adminToken) {
  const app = await registerApp(node, adminToken, { name: `bench-${randomBytes(3).toString('hex')}`, trusted: true });
  const user = await call(`${node.url}/admin/api/users`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` }, json: { username: `bench-${randomBytes(4).toString('hex')}` }, expect: 201 });
  return { app, userId: user.user.id };
}

/** One pass of the propagation measurement on a fresh three-node cluster. */
async function propagationPass({ base, redisUrl, revocations, warmup, log }) {
  const schema = await createSchema(base, 'bench_mn');
  const adminToken = randomBytes(30).toString('base64url');
  const cluster = await startCluster({ count: 3, databaseUrl: schema.url, redisUrl, adminToken });
  const [n1, n2, n3] = cluster.nodes;
  const followers = [];
  try {
    const { app, userId } = await setUp(n1, adminToken);
    const sessions = await startSessions(n1, app, userId, warmup + revocations);
    const remote = await Promise.all([n2, n2, n3, n3].map((n) => follow(n.url, app.basic, 0)));
    const local = await follow(n1.url, app.basic, 0);
    followers.push(...remote, local);
    const samples = { allRemote: [], firstRemote: [], eachRemote: [], local: [], fromRequest: [], revokeCall: [] };
    let missed = 0;
    for (const [i, s] of sessions.entries()) {
      const sent = nowMs();
      await call(`${n1.url}/admin/api/sessions/${s.handle}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` }, expect: 204 });
      const answered = nowMs();
      const times = await Promise.all(remote.map((f) => f.waitFor(s.handle)));
      const own = await local.waitFor(s.handle);
      if (times.includes(null) || own === null) {
        missed += 1;
        continue;
      }
      if (i < warmup) continue;
      samples.allRemote.push(Math.max(...times) - answered);
      samples.firstRemote.push(Math.min(...times) - answered);
      samples.eachRemote.push(...times.map((t) => t - answered));
      samples.local.push(own - answered);
      samples.fromRequest.push(Math.max(...times) - sent);
      samples.revokeCall.push(answered - sent);
      await sleep(randomInt(5, 26));
    }
    const gaps = followers.reduce((n, f) => n + f.gaps, 0);
    log(`  ${redisUrl ? 'with Redis' : 'NOTIFY only'}: p50 ${round(quantile(samples.allRemote, 0.5), 2)} ms, p99 ${round(quantile(samples.allRemote, 0.99), 2)} ms over ${samples.allRemote.length}`);
    return { samples, missed, gaps };
  } finally {
    for (const f of followers) f.close();
    await cluster.stop();
    await schema.drop();
  }
}

/** whoami throughput with the first k nodes of a three-node cluster, rounds alternating k. */
async function whoamiThroughput({ base, redisUrl, rounds, seconds, warmupSeconds, connections, sessionCount, log }) {
  const schema = await createSchema(base, 'bench_mn');
  const adminToken = randomBytes(30).toString('base64url');
  const cluster = await startCluster({ count: 3, databaseUrl: schema.url, redisUrl, adminToken });
  const nodes = cluster.nodes;
  try {
    const { app, userId } = await setUp(nodes[0], adminToken);
    const sessions = await startSessions(nodes[0], app, userId, sessionCount);
    const requests = sessions.map((s) => ({ method: 'GET', path: '/v1/whoami', headers: { 'x-session-token': s.token } }));
    const runLoad = async (k, duration) => {
      // Connections spread evenly over the first k nodes: one autocannon instance per node,
      // each cycling through every session's token from its own offset.
      const share = Array.from({ length: k }, (_, i) => Math.floor(connections / k) + (i < connections % k ? 1 : 0));
      const cpuBefore = nodes.map((n) => cpuSeconds(n.pid));
      const pgBefore = cpuSecondsByName('postgres');
      const ownBefore = process.cpuUsage();
      const ticksBefore = machineTicks();
      const results = await Promise.all(share.map((c, i) => {
        const offset = Math.floor((i * requests.length) / k);
        return autocannon({ url: nodes[i].url, connections: c, duration, requests: [...requests.slice(offset), ...requests.slice(0, offset)] });
      }));
      const ticksAfter = machineTicks();
      const own = process.cpuUsage(ownBefore);
      const pgAfter = cpuSecondsByName('postgres');
      const cpuAfter = nodes.map((n) => cpuSeconds(n.pid));
      const total = results.reduce((n, r) => n + r.requests.total, 0);
      const bad = results.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
      if (bad > 0) throw new Error(`whoami with ${k} node(s): ${bad} failed requests`);
      const perSecond = total / duration;
      return {
        nodes: k,
        reqPerSec: round(perSecond, 0),
        perNodeReqPerSec: results.map((r) => round(r.requests.total / duration, 0)),
        latencyP50Ms: round(median(results.map((r) => r.latency.p50)), 1),
        latencyP99Ms: Math.max(...results.map((r) => r.latency.p99)),
        tesseraCpuMicrosPerRequest: round(((cpuAfter.reduce((a, b) => a + b, 0) - cpuBefore.reduce((a, b) => a + b, 0)) * 1e6) / total, 1),
        postgresCpuMicrosPerRequest: round(((pgAfter - pgBefore) * 1e6) / total, 1),
        autocannonCpuMicrosPerRequest: round((own.user + own.system) / total, 1),
        machineBusyPercent: round((100 * (ticksAfter.busy - ticksBefore.busy)) / (ticksAfter.total - ticksBefore.total), 1),
      };
    };
    for (const k of [1, 2, 3]) await runLoad(k, warmupSeconds);
    const all = [];
    for (let round_ = 1; round_ <= rounds; round_++) {
      for (const k of [1, 2, 3]) {
        const r = { round: round_, ...(await runLoad(k, seconds)) };
        log(`  whoami, ${k} node(s), round ${round_}: ${r.reqPerSec} req/s (machine ${r.machineBusyPercent}% busy)`);
        all.push(r);
      }
    }
    const byNodes = [1, 2, 3].map((k) => {
      const mine = all.filter((r) => r.nodes === k);
      const pick = (key) => round(median(mine.map((r) => r[key])), 1);
      return { nodes: k, reqPerSec: pick('reqPerSec'), latencyP50Ms: pick('latencyP50Ms'), latencyP99Ms: pick('latencyP99Ms'), tesseraCpuMicrosPerRequest: pick('tesseraCpuMicrosPerRequest'), postgresCpuMicrosPerRequest: pick('postgresCpuMicrosPerRequest'), autocannonCpuMicrosPerRequest: pick('autocannonCpuMicrosPerRequest'), machineBusyPercent: pick('machineBusyPercent') };
    });
    return { rounds: all, byNodes };
  } finally {
    await cluster.stop();
    await schema.drop();
  }
}

/**
 * Runs both measurements and returns their figures.
 *
 * @example
 * ```js
 * const result = await runMultiNodeBench({ postgres: 'postgres://127.0.0.1:5432/test' });
 * console.log(result.propagation.redis.allRemote.p99Ms);
 * ```
 */
export async function runMultiNodeBench(options = {}) {
  const settings = { postgres: 'postgres://127.0.0.1:5432/test', revocations: 200, warmup: 10, passes: 2, rounds: 3, seconds: 5, warmupSeconds: 2, connections: 24, sessions: 300, ...options };
  const log = options.log ?? ((line) => console.error(line));
  if (!hasRedisServer()) return { skipped: 'redis-server is not installed' };
  const loadBefore = loadavg();
  const redis = await startRedis();
  try {
    const perPass = Math.ceil(settings.revocations / settings.passes);
    const collected = { redis: [], notify: [] };
    const checks = { redis: { missed: 0, gaps: 0 }, notify: { missed: 0, gaps: 0 } };
    for (let pass = 1; pass <= settings.passes; pass++) {
      for (const mode of ['redis', 'notify']) {
        log(`propagation pass ${pass}/${settings.passes}, ${mode === 'redis' ? 'with Redis' : 'NOTIFY only'}: ${perPass} revocations`);
        const r = await propagationPass({ base: settings.postgres, redisUrl: mode === 'redis' ? redis.url : null, revocations: perPass, warmup: settings.warmup, log });
        collected[mode].push(r.samples);
        checks[mode].missed += r.missed;
        checks[mode].gaps += r.gaps;
      }
    }
    const propagation = {};
    for (const mode of ['redis', 'notify']) {
      const merged = (key) => collected[mode].flatMap((s) => s[key]);
      propagation[mode] = {
        allRemote: summarize(merged('allRemote')),
        firstRemote: summarize(merged('firstRemote')),
        eachRemote: summarize(merged('eachRemote')),
        local: summarize(merged('local')),
        fromRequest: summarize(merged('fromRequest')),
        revokeCall: summarize(merged('revokeCall')),
        ...checks[mode],
      };
    }
    if (settings.rounds === 0) return { settings: { ...settings, log: undefined, cores: availableParallelism() }, redisVersion: redis.version, goalP99Ms: GOAL_P99_MS, propagation, whoami: null, loadAverage: { before: loadBefore.map((l) => round(l, 2)), after: loadavg().map((l) => round(l, 2)) } };
    log(`whoami throughput: ${settings.rounds} rounds of ${settings.seconds} s per node count, ${settings.connections} connections`);
    const whoami = await whoamiThroughput({ base: settings.postgres, redisUrl: redis.url, rounds: settings.rounds, seconds: settings.seconds, warmupSeconds: settings.warmupSeconds, connections: settings.connections, sessionCount: settings.sessions, log });
    return { settings: { ...settings, log: undefined, cores: availableParallelism() }, redisVersion: redis.version, goalP99Ms: GOAL_P99_MS, propagation, whoami, loadAverage: { before: loadBefore.map((l) => round(l, 2)), after: loadavg().map((l) => round(l, 2)) } };
  } finally {
    await redis.stop();
  }
}

const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (v) => `${fmt(v, 1)} ms`;

/** The goal rows of this benchmark for the summary table of docs/benchmarks.md. */
export function multiNodeSummaryRows(result) {
  if (result.skipped) return [`| cross-node propagation p99 (PostgreSQL, 3 nodes) | ≤ ${GOAL_P99_MS} ms | skipped: ${result.skipped} | |`];
  return ['redis', 'notify'].map((mode) => {
    const p = result.propagation[mode].allRemote.p99Ms;
    return `| cross-node propagation p99, 3 nodes, ${mode === 'redis' ? 'Redis + NOTIFY' : 'NOTIFY only'} | ≤ ${GOAL_P99_MS} ms | ${ms(p)} | ${p <= GOAL_P99_MS ? 'met' : '**not met**'} |`;
  });
}

/** What the whoami table says, in words that follow from the figures measured. */
function whoamiReading(result) {
  const [one, two, three] = result.whoami.byNodes;
  const cores = result.settings.cores;
  const change = (b) => `${b.reqPerSec >= one.reqPerSec ? '+' : '−'}${fmt(Math.abs((100 * (b.reqPerSec - one.reqPerSec)) / one.reqPerSec))} %`;
  return [
    `With 2 nodes ${change(two)} and with 3 nodes ${change(three)} against 1 node; the ${cores} cores were ${fmt(one.machineBusyPercent)} %, ${fmt(two.machineBusyPercent)} % and ${fmt(three.machineBusyPercent)} % busy.`,
    `Tessera, PostgreSQL and the load generator share those cores, so more nodes cannot add capacity here: a second and third process (and their connections to PostgreSQL) add scheduling and memory traffic instead. These figures say what one small machine allows, not what nodes on machines of their own would add.`,
    `What carries over to a real deployment is the CPU per request: a whoami costs about ${fmt(one.tesseraCpuMicrosPerRequest)} µs of Tessera CPU and ${fmt(one.postgresCpuMicrosPerRequest)} µs of PostgreSQL CPU here (one node), so with cores of their own a node serves roughly ${fmt(1e6 / one.tesseraCpuMicrosPerRequest)} whoami/s per core and PostgreSQL roughly ${fmt(1e6 / one.postgresCpuMicrosPerRequest)} per core; nodes scale out, PostgreSQL is what every node shares (see docs/capacity.md).`,
  ].join(' ');
}

/** The section of docs/benchmarks.md for this benchmark. */
export function multiNodeSection(result, number = 6) {
  if (result.skipped) return `## ${number}. Several nodes on PostgreSQL\n\nSkipped: ${result.skipped}.`;
  const s = result.settings;
  const row = (label, x) => `| ${label} | ${x.n} | ${ms(x.p50Ms)} | ${ms(x.p90Ms)} | ${ms(x.p99Ms)} | ${ms(x.maxMs)} |`;
  const lines = [
    `## ${number}. Several nodes on PostgreSQL: cross-node propagation and whoami throughput`,
    '',
    `Three \`tessera start\` processes (the built CLI) on one PostgreSQL schema, all with the same issuer, default settings (feed poll 1 s as the last resort), log level \`warn\`, rate limits off; Redis ${result.redisVersion.replace(/^Redis server /, '').split(' ')[0]} started by the benchmark on a free port with persistence off.`,
    '',
    `**Propagation.** A trusted app starts ${fmt(s.warmup + Math.ceil(s.revocations / s.passes))} sessions per pass on node 1; four plain SSE followers of \`GET /v1/revocations/stream\` (two on node 2, two on node 3) and one on node 1 run in the benchmark process. Each session is ended on node 1 with \`DELETE /admin/api/sessions/:handle\`, one after the other with a random gap of 5–25 ms; **the figure is the time from the 204 until the last of the four followers on nodes 2 and 3 has the event.** ${s.passes} passes of ${fmt(Math.ceil(s.revocations / s.passes))} revocations (after ${s.warmup} warm-up ones) per mode, modes alternating, each pass on a fresh cluster and schema: *with Redis* (every node LISTENs on PostgreSQL and SUBSCRIBEs on Redis; whichever wake-up arrives first counts) and *NOTIFY only* (no \`TESSERA_REDIS_URL\`).`,
    '',
  ];
  for (const mode of ['redis', 'notify']) {
    const p = result.propagation[mode];
    lines.push(
      `| ${mode === 'redis' ? 'with Redis' : 'NOTIFY only'} | n | p50 | p90 | p99 | max |`,
      '|---|---:|---:|---:|---:|---:|',
      row('**revoke response on node 1 → last follower on nodes 2 and 3**', p.allRemote),
      row('revoke response → first follower on nodes 2 and 3', p.firstRemote),
      row('revoke response → each follower on nodes 2 and 3', p.eachRemote),
      row('revoke response → follower on node 1 (same node, reference)', p.local),
      row('revoke request sent → last follower on nodes 2 and 3', p.fromRequest),
      row('the revoke request itself (sent → 204)', p.revokeCall),
      '',
      `p99 **${ms(p.allRemote.p99Ms)}** (goal ≤ ${GOAL_P99_MS} ms on loopback: ${p.allRemote.p99Ms <= GOAL_P99_MS ? 'met' : '**not met**'}); ${p.missed === 0 ? 'every follower received every event' : `**${p.missed} events did not reach every follower within 5 s**`}; ${p.gaps === 0 ? 'no follower saw a gap in the cursors' : `**${p.gaps} cursor gaps**`}.`,
      '',
    );
  }
  lines.push(
    'A negative time means the followers had the event before the 204 reached the benchmark: NOTIFY is sent at commit, while the response is still on its way.',
    '',
    `Load average of the machine (1/5/15 min): ${result.loadAverage.before.join(' / ')} before, ${result.loadAverage.after.join(' / ')} after (other work shares it).`,
  );
  if (!result.whoami) return lines.join('\n');
  lines.push(
    '',
    `**whoami throughput.** The same three-node cluster shape (with Redis); ${fmt(s.sessions)} sessions of one user rotate (each autocannon connection cycles through all tokens from its own offset); every whoami reads the session and the user from PostgreSQL (the in-process session cache is used only on SQLite). autocannon in the benchmark process spreads ${s.connections} connections evenly over the first 1, 2 or 3 nodes' ports (one instance per node); ${s.rounds} rounds of ${s.seconds} s per node count, alternating 1, 2, 3, after a ${s.warmupSeconds} s warm-up of each. The PostgreSQL server runs on the same ${s.cores} cores; its CPU is the sum over every \`postgres\` process on the machine (other clients of that server included).`,
    '',
    '| nodes | median req/s | latency p50 / p99 (autocannon, whole ms) | Tessera CPU per request | PostgreSQL CPU per request | autocannon CPU per request | machine busy |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...result.whoami.byNodes.map((b) => `| ${b.nodes} | ${fmt(b.reqPerSec)} | ${fmt(b.latencyP50Ms)} / ${fmt(b.latencyP99Ms)} ms | ${fmt(b.tesseraCpuMicrosPerRequest, 1)} µs | ${fmt(b.postgresCpuMicrosPerRequest, 1)} µs | ${fmt(b.autocannonCpuMicrosPerRequest, 1)} µs | ${fmt(b.machineBusyPercent)} % |`),
    '',
    whoamiReading(result),
    '',
    '<details><summary>Every whoami round</summary>',
    '',
    '| round | nodes | req/s | per node | Tessera CPU per request | PostgreSQL CPU per request | machine busy |',
    '|---:|---:|---:|---|---:|---:|---:|',
    ...result.whoami.rounds.map((r) => `| ${r.round} | ${r.nodes} | ${fmt(r.reqPerSec)} | ${r.perNodeReqPerSec.map((v) => fmt(v)).join(' / ')} | ${fmt(r.tesseraCpuMicrosPerRequest, 1)} µs | ${fmt(r.postgresCpuMicrosPerRequest, 1)} µs | ${fmt(r.machineBusyPercent)} % |`),
    '',
    '</details>',
  );
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseBenchArgs(import.meta.url, {
    options: {
      postgres: { type: 'string', default: process.env.TESSERA_BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test' },
      revocations: { type: 'string', default: '200' },
      passes: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '24' },
      sessions: { type: 'string', default: '300' },
      json: { type: 'string' },
    },
  });
  const result = await runMultiNodeBench({
    postgres: values.postgres,
    revocations: Number(values.revocations),
    passes: Number(values.passes),
    rounds: Number(values.rounds),
    seconds: Number(values.seconds),
    connections: Number(values.connections),
    sessions: Number(values.sessions),
  });
  if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
  else console.log(multiNodeSection(result));
}
