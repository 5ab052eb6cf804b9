// Shared Signals benchmark: from a revocation to the SET at its receivers.
//
//   node bench/ssf.mjs [--streams 10,100 --rate 100 --seconds 60 --burst 1000
//                       --postgres URL --no-postgres --no-sqlite --json FILE.json
//                       --cpu-prof DIR --pool N]  (DIR: V8 CPU profiles of the Tessera processes;
//                       N: PostgreSQL connections of the Tessera node, TESSERA_DATABASE_POOL_SIZE)
//
// Tessera is the built server in a process of its own (bench/servers/tessera.mjs), on SQLite in
// a temp dir and on PostgreSQL in a schema of its own. The receivers live in this process:
// node:http servers that answer 202 and note when each SET arrived (they decode the SET, they
// do not verify it: the receiver's cost is not Tessera's). Three measurements per store and
// stream count:
// - push latency: sessions of distinct users are ended one by one by the admin API at
//   `--rate` per second for `--seconds`; for each (revocation, stream) the time from just
//   before the revoking request was sent (an upper bound of its commit) to the SET's arrival,
//   and from the request's answer (a lower bound: the answer follows the commit);
// - long poll: as many poll streams as push streams above (10, 100), each with a waiting long
//   poll; one revocation at a time; the time from just before the revoking request to each
//   poll's answer;
// - throughput: `--burst` sessions (10 streams; a tenth with 100) ended by one call, with the
//   push streams; SETs per second from the call to the last arrival.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBenchArgs } from './lib/args.mjs';
import { decodeJwt } from 'jose';
import { postgresSchema, postgresSettings } from './lib/postgres-schema.mjs';
import { cpuSeconds, expectStatus, mapLimit, request, sleep, wallClockMs } from './lib/children.mjs';
import { summarizeMs, round } from './lib/stats.mjs';
import { startTessera } from './lib/tessera.mjs';
import { reportEventLoop } from './lib/loop-report.mjs';

const { values: args } = parseBenchArgs(import.meta.url, {
  options: {
    streams: { type: 'string', default: '10,100' },
    rate: { type: 'string', default: '100' },
    // 60 s, not 10: a claim that grows slower as delivered rows pile up (bitmap scans over
    // index entries only VACUUM removes) showed after 30 s and never in a 10-second run.
    seconds: { type: 'string', default: '60' },
    burst: { type: 'string', default: '1000' },
    polls: { type: 'string', default: '100' },
    postgres: { type: 'string', default: process.env.TESSERA_BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test' },
    'no-postgres': { type: 'boolean', default: false },
    'no-sqlite': { type: 'boolean', default: false },
    json: { type: 'string' },
    'cpu-prof': { type: 'string' },
    // PostgreSQL connections per Tessera node (TESSERA_DATABASE_POOL_SIZE); Tessera's default when unset.
    pool: { type: 'string' },
  },
});
const STREAM_COUNTS = args.streams.split(',').map(Number);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const BURST = Number(args.burst);
const POLLS = Number(args.polls);
const EXEC_ARGV = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : [];
const log = (line) => process.stderr.write(`[ssf] ${line}\n`);
// BENCH_LOOP_REPORT=N: this process's event loop delay and GC pauses every N s, and the Tessera node's.
reportEventLoop('bench');
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

/** A push receiver: answers 202, notes each SET's arrival by the user it is about. */
async function startReceiver(arrivals) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = wallClockMs();
      try {
        const claims = decodeJwt(Buffer.concat(chunks).toString('utf8'));
        // Only what the figures use: 300,000 arrivals held in a five-minute run made this
        // process's heap (and its GC pauses, which delay the arrival times it notes) grow.
        arrivals.push({ at, sub: claims.sub_id?.sub ?? claims.sub_id?.user?.sub });
      } catch {
        // Not a SET: counted by its absence.
      }
      res.writeHead(202).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/events`, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

/** Users with one session each (started by a trusted app): [{ userId, handle }]. */
async function sessions(tessera, app, count) {
  const tag = randomBytes(3).toString('hex');
  return mapLimit(Array.from({ length: count }, (_, i) => i), 8, async (i) => {
    const { user } = await tessera.admin('POST', '/users', { username: `ssf-${tag}-${i}` }, 201);
    const started = (await expectStatus('POST /v1/sessions', request(`${tessera.url}/v1/sessions`, { method: 'POST', headers: { authorization: app.basic }, body: { user_id: user.id } }), 201)).json();
    return { userId: user.id, handle: started.session.handle };
  });
}

async function receiverToken(tessera) {
  const created = await tessera.admin('POST', '/apps', { name: `ssf-rx-${randomBytes(3).toString('hex')}`, grant_types: ['client_credentials'] }, 201);
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(created.app.client_id)}:${encodeURIComponent(created.client_secret)}`).toString('base64')}`;
  const issued = (await expectStatus('client_credentials', request(`${tessera.url}/oidc/token`, { method: 'POST', headers: { authorization: basic }, form: { grant_type: 'client_credentials' } }), 200)).json();
  return issued.access_token;
}

async function createStream(tessera, token, body) {
  return (await expectStatus('POST /ssf/streams', request(`${tessera.url}/ssf/streams`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: { events_requested: [SESSION_REVOKED], ...body } }), 201)).json();
}

const revoke = (tessera, handle) => expectStatus('DELETE session', request(`${tessera.url}/admin/api/sessions/${handle}`, { method: 'DELETE', headers: { authorization: tessera.adminAuthorization } }), 204);

/** Waits until `count()` (a number, or a promise of one) reaches `want`; a timeout says how far it got (a push fallen behind, not a crash). */
async function waitUntil(what, count, want, timeoutMs = 120_000) {
  const started = Date.now();
  for (let n = await count(); n < want; n = await count()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}: ${n} of ${want} after ${Math.round(timeoutMs / 1000)} s`);
    await sleep(5);
  }
}

/**
 * Runs `measure(tessera)` on a Tessera node and a store of its own (a new data dir, with SQLite
 * in it, or a new PostgreSQL schema on `databaseUrl`), allowed 1,000 streams per receiver
 * client; stops the node and removes both after.
 */
async function withNode(databaseUrl, measure) {
  const schema = databaseUrl ? await postgresSchema(databaseUrl, 'bench_ssf') : null;
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-ssf-'));
  try {
    const configFile = join(dataDir, 'tessera.json');
    writeFileSync(configFile, JSON.stringify({ ssf: { maxStreamsPerClient: 1000 } }));
    const tessera = await startTessera({ dataDir, execArgv: EXEC_ARGV, env: { TESSERA_CONFIG: configFile, ...(schema ? { TESSERA_DATABASE_URL: schema.url, ...(args.pool ? { TESSERA_DATABASE_POOL_SIZE: args.pool } : {}) } : {}) } });
    try {
      return await measure(tessera);
    } finally {
      await tessera.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    await schema?.drop();
  }
}

/** One node, one stream count: push latency at a steady rate, then the burst. */
async function measurePush(label, tessera, streamCount) {
  const arrivals = [];
  const receivers = [];
  try {
    const site = await tessera.createApp({ trusted: true });
    const token = await receiverToken(tessera);
    // One receiver server per 10 streams (as receivers are usually services of their own).
    for (let i = 0; i < Math.ceil(streamCount / 10); i += 1) receivers.push(await startReceiver(arrivals));
    for (let i = 0; i < streamCount; i += 1) await createStream(tessera, token, { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: receivers[i % receivers.length].url } });
    // The same SET rate for every stream count: --rate revocations a second with 10 streams,
    // a tenth of that with 100 (each revocation is one SET per stream).
    const rate = Math.max(1, (RATE * 10) / streamCount);
    const total = Math.round(rate * SECONDS);
    // The same number of SETs in the burst too: --burst sessions with 10 streams, a tenth with 100.
    const burstSessions = Math.max(10, Math.round((BURST * 10) / streamCount));
    const users = await sessions(tessera, site, 5 + total + burstSessions);
    // Warm-up: a few revocations whose SETs are not counted.
    for (const u of users.slice(0, 5)) await revoke(tessera, u.handle);
    await waitUntil('warm-up SETs', () => arrivals.length, 5 * streamCount);
    arrivals.length = 0;

    // Steady rate: one revocation every 1000/RATE ms, not waiting for the previous one.
    const sentAt = new Map();
    const steady = users.slice(5, 5 + total);
    // The Tessera process's CPU time (all its threads, the signing thread pool included) per
    // SET: what the machine's load does not change much, unlike the latencies.
    const steadyCpu = cpuSeconds(tessera.child.pid);
    const start = wallClockMs();
    // The wall-clock start, to line the windows below up with other logs (BENCH_LOOP_REPORT, PostgreSQL's).
    log(`${label} ${streamCount} push streams: steady phase from ${new Date(start).toISOString()}`);
    const inflight = [];
    // How long each revoking request took to answer (its commit is within that time): when
    // it grows, revocations queue in Tessera or the database, not their SETs.
    const answered = [];
    // When each revoking request's answer arrived (after its commit): the time from there to a
    // SET is a lower bound of commit → SET, as the time from the request's sending is an upper one.
    const answeredAt = new Map();
    let settled = 0;
    for (let i = 0; i < steady.length; i += 1) {
      const due = start + (i * 1000) / rate;
      const wait = due - wallClockMs();
      if (wait > 0) await sleep(wait);
      // At most 64 revocations outstanding: past that the target rate is not reached, and the
      // achieved rate says so (an unbounded backlog of connections would only time out).
      if (inflight.length - settled >= 64) await inflight[settled];
      const sent = wallClockMs();
      sentAt.set(steady[i].userId, sent);
      const userId = steady[i].userId;
      inflight.push(revoke(tessera, steady[i].handle).finally(() => {
        settled += 1;
        const at = wallClockMs();
        answeredAt.set(userId, at);
        answered.push(at - sent);
      }));
    }
    await Promise.all(inflight);
    const achievedRate = steady.length / ((wallClockMs() - start) / 1000);
    await waitUntil('every steady SET', () => arrivals.length, steady.length * streamCount, 300_000);
    const latencies = arrivals.map((a) => a.at - sentAt.get(a.sub)).filter((v) => Number.isFinite(v));
    const steadyCpuMs = steadyCpu === null ? null : ((cpuSeconds(tessera.child.pid) - steadyCpu) * 1000) / arrivals.length;
    const afterAnswer = arrivals.map((a) => a.at - answeredAt.get(a.sub)).filter((v) => Number.isFinite(v));
    // The latencies per 10 s of the steady phase (by when the revocation was sent): flat when
    // nothing in the push path grows slower with the rows it leaves behind.
    const windows = [];
    for (const a of arrivals) {
      const sent = sentAt.get(a.sub);
      if (sent === undefined) continue;
      const w = Math.floor((sent - start) / 10_000);
      (windows[w] ??= []).push(a.at - sent);
    }
    const byWindow = windows.map((values, i) => ({ fromS: i * 10, ...summarizeMs(values, 1) }));
    const steadyResult = { revocations: steady.length, targetRate: rate, achievedRate: round(achievedRate, 1), sets: arrivals.length, ...summarizeMs(latencies, 1), serverCpuMsPerSet: steadyCpuMs === null ? null : round(steadyCpuMs, 3), revokeAnswer: summarizeMs(answered, 1), afterAnswer: summarizeMs(afterAnswer, 1), byWindow };
    log(`${label} ${streamCount} push streams: p50 ${steadyResult.p50Ms} ms, p99 ${steadyResult.p99Ms} ms over ${latencies.length} SETs at ${steadyResult.achievedRate} revocations/s, ${steadyResult.serverCpuMsPerSet} ms of server CPU per SET; revoking requests answered in p50 ${steadyResult.revokeAnswer.p50Ms} ms, p99 ${steadyResult.revokeAnswer.p99Ms} ms; from the answer to the SET p50 ${steadyResult.afterAnswer.p50Ms} ms, p99 ${steadyResult.afterAnswer.p99Ms} ms`);
    log(`${label} ${streamCount} push streams, p50 / p99 per 10 s: ${byWindow.map((w) => `${w.p50Ms} / ${w.p99Ms}`).join(', ')} ms`);

    // Burst: BURST sessions ended by one call.
    arrivals.length = 0;
    const burst = users.slice(5 + total);
    const burstCpu = cpuSeconds(tessera.child.pid);
    const burstStart = wallClockMs();
    await expectStatus('burst', request(`${tessera.url}/admin/api/sessions/revoke`, { method: 'POST', headers: { authorization: tessera.adminAuthorization }, body: { handles: burst.map((u) => u.handle) } }), 200);
    const committedAt = wallClockMs();
    await waitUntil('every burst SET', () => arrivals.length, burst.length * streamCount, 600_000);
    const lastAt = arrivals.reduce((last, a) => Math.max(last, a.at), -Infinity);
    const burstCpuMs = burstCpu === null ? null : ((cpuSeconds(tessera.child.pid) - burstCpu) * 1000) / arrivals.length;
    const burstResult = { sessions: burst.length, sets: arrivals.length, revokeMs: round(committedAt - burstStart, 1), seconds: round((lastAt - burstStart) / 1000, 2), setsPerSecond: round(arrivals.length / ((lastAt - burstStart) / 1000), 0), serverCpuMsPerSet: burstCpuMs === null ? null : round(burstCpuMs, 3) };
    log(`${label} ${streamCount} push streams: burst of ${burstResult.sets} SETs in ${burstResult.seconds} s = ${burstResult.setsPerSecond}/s, ${burstResult.serverCpuMsPerSet} ms of server CPU per SET`);
    return { streams: streamCount, steady: steadyResult, burst: burstResult };
  } finally {
    await Promise.all(receivers.map((r) => r.close()));
  }
}

/** Long polls: `streamCount` poll streams, each with a waiting poll; one revocation at a time. */
async function measurePoll(label, tessera, streamCount) {
  const site = await tessera.createApp({ trusted: true });
  const token = await receiverToken(tessera);
  const streams = [];
  for (let i = 0; i < streamCount; i += 1) streams.push(await createStream(tessera, token, {}));
  const users = await sessions(tessera, site, POLLS + 3);
  const latencies = [];
  const pollOnce = async (stream, acks) => {
    const answer = (await expectStatus('poll', request(stream.delivery.endpoint_url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: { ack: acks, maxEvents: 10 } }), 200)).json();
    return { at: wallClockMs(), jtis: Object.keys(answer.sets) };
  };
  // Long polls waiting at the node now, from its gauge (tessera_ssf_long_polls_waiting).
  const pollsWaiting = async () => {
    const scraped = await expectStatus('GET /metrics', request(`${tessera.url}/metrics`, { headers: { authorization: tessera.adminAuthorization } }), 200);
    const line = scraped.bytes.toString('utf8').split('\n').find((l) => l.startsWith('tessera_ssf_long_polls_waiting '));
    return Number(line?.split(' ')[1] ?? NaN);
  };
  const acks = streams.map(() => []);
  for (let i = 0; i < users.length; i += 1) {
    // Every stream's poll is waiting at the node before the revocation is sent: with 100
    // streams, a fixed pause was shorter than the node took to take in 100 polls (each
    // acknowledging the last SET), and that time was counted as the SETs' latency.
    const waiting = streams.map((s, k) => pollOnce(s, acks[k]));
    await waitUntil('every long poll waiting', pollsWaiting, streamCount, 60_000);
    const sentAt = wallClockMs();
    await revoke(tessera, users[i].handle);
    const answers = await Promise.all(waiting);
    answers.forEach((a, k) => (acks[k] = a.jtis));
    if (i >= 3) for (const a of answers) latencies.push(a.at - sentAt);
  }
  const result = { streams: streamCount, revocations: POLLS, ...summarizeMs(latencies, 1) };
  log(`${label} long poll, ${streamCount} streams: p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms over ${latencies.length} answers`);
  return result;
}

async function measureStore(label, databaseUrl) {
  // The server's settings beside its figures (autovacuum, WAL and buffer sizes change them).
  const settings = databaseUrl ? await postgresSettings(databaseUrl) : undefined;
  if (settings) log(`${label} settings: ${Object.entries(settings).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const push = [];
  for (const count of STREAM_COUNTS) push.push(await withNode(databaseUrl, (tessera) => measurePush(label, tessera, count)));
  const poll = [];
  for (const count of STREAM_COUNTS) poll.push(await withNode(databaseUrl, (tessera) => measurePoll(label, tessera, count)));
  return { settings, push, poll };
}

const sqlite = args['no-sqlite'] ? { skipped: '--no-sqlite' } : await measureStore('sqlite', null);
let postgres = null;
if (!args['no-postgres']) {
  try {
    postgres = await measureStore('postgres', args.postgres);
  } catch (error) {
    postgres = { skipped: `PostgreSQL could not be used: ${error.message}` };
    log(postgres.skipped);
  }
}
const result = { rate: RATE, seconds: SECONDS, burst: BURST, postgresPoolSize: args.pool ? Number(args.pool) : null, sqlite, postgres, machine: { cores: availableParallelism(), loadavg: loadavg() }, at: new Date().toISOString() };
if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
else console.log(JSON.stringify(result, null, 2));
