// Benchmark: how long after a session is ended every app instance rejects its access token.
// A real Tessera node (SQLite) and 8 verifier processes (bench/servers/verifier.mjs), each
// running the SDK and following the revocation feed as in production, each holding (and
// having verified) the access tokens of the sessions under test. The benchmark ends one
// session with the admin API (DELETE /admin/api/sessions/:handle), notes the wall-clock
// time at which the 204 arrives, and waits for every verifier to report the moment its
// verify(token) rejected that token (it calls verify as soon as the SDK emits 'revoked').
// The figure per revocation is the time from the revoke response to the last of the 8
// rejections. Sequential revocations with small random gaps, then a burst of concurrent ones.
//
//   node bench/propagation.mjs [--verifiers 8] [--revocations 200] [--burst 50] [--warmup 10]
//                              [--json out.json]
//
// Needs the build (`npx tsc -b`); `npm run bench` does it. Times are
// performance.timeOrigin + performance.now() in every process: sub-millisecond wall-clock
// times that, unlike process.hrtime, can be compared across processes on one machine; the
// result includes each process's measured offset from Date.now() as a check.
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { ask, sleep, startChild, stopChild, wallClockMs } from './lib/children.mjs';
import { median, round, summarizeMs } from './lib/stats.mjs';
import { startTessera } from './lib/tessera.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const GOAL_P99_MS = 50;
const REPORT_TIMEOUT_MS = 10_000;

function clockOffset(samples = 2000) {
  let total = 0;
  for (let i = 0; i < samples; i++) total += Date.now() - wallClockMs();
  return total / samples;
}


const summarize = (values) => summarizeMs(values, 3);

/**
 * Runs the propagation benchmark and returns its figures.
 *
 * @example
 * ```js
 * const result = await runPropagationBench({ verifiers: 8, revocations: 200 });
 * console.log(result.sequential.allVerifiers.p99Ms);
 * ```
 */
export async function runPropagationBench(options = {}) {
  const settings = { verifiers: 8, revocations: 200, burst: 50, warmup: 10, minGapMs: 5, maxGapMs: 25, ...options };
  const log = options.log ?? ((line) => console.error(line));
  const verifiers = [];
  let tessera;
  try {
    tessera = await startTessera();
    const app = await tessera.createApp({ trusted: true });
    const total = settings.warmup + settings.revocations + settings.burst;
    const started = performance.now();
    const sessions = await tessera.createUsersWithTokens(app, total, { prefix: 'prop' });
    log(`propagation: ${total} users, sessions and access tokens in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    // Reports from every verifier, by session handle.
    const pending = new Map();
    const expect = (sid) => {
      let entry = pending.get(sid);
      if (!entry) {
        let resolve;
        const done = new Promise((r) => (resolve = r));
        entry = { reports: [], done, resolve };
        pending.set(sid, entry);
      }
      return entry;
    };
    const onReport = (m) => {
      if (m?.type !== 'rejected') return;
      const entry = expect(m.sid);
      entry.reports.push(m);
      if (entry.reports.length === settings.verifiers) entry.resolve();
    };

    for (let i = 0; i < settings.verifiers; i++) {
      const { child } = await startChild(join(here, 'servers', 'verifier.mjs'), { message: { issuer: tessera.url, clientId: app.clientId, clientSecret: app.clientSecret, index: i } });
      verifiers.push(child);
      child.on('message', onReport);
    }
    const tokens = sessions.map((s) => ({ sid: s.sid, token: s.accessToken }));
    for (const child of verifiers) {
      const answer = await ask(child, { type: 'tokens', tokens }, 'tokens');
      if (answer.accepted !== tokens.length || answer.status.state !== 'connected') throw new Error(`verifier ${child.pid}: ${answer.accepted} tokens accepted, feed ${answer.status.state}`);
    }
    log(`propagation: ${settings.verifiers} verifiers following the feed, each holding ${tokens.length} verified tokens`);

    /** Ends one session; resolves with its timings once every verifier rejected its token. */
    async function revoke(session) {
      const entry = expect(session.sid);
      const sentAt = wallClockMs();
      const response = await fetch(`${tessera.url}/admin/api/sessions/${encodeURIComponent(session.sid)}`, { method: 'DELETE', headers: { authorization: tessera.adminAuthorization } });
      const respondedAt = wallClockMs();
      await response.arrayBuffer();
      if (response.status !== 204) throw new Error(`DELETE /admin/api/sessions: ${response.status}`);
      let timer;
      const timedOut = await Promise.race([entry.done.then(() => false), new Promise((r) => (timer = setTimeout(() => r(true), REPORT_TIMEOUT_MS)))]);
      clearTimeout(timer);
      pending.delete(session.sid);
      const wrong = entry.reports.filter((r) => r.code !== 'TOKEN_REVOKED');
      if (timedOut || wrong.length > 0) {
        return { sid: session.sid, failed: true, reports: entry.reports.length, codes: [...new Set(entry.reports.map((r) => r.code))] };
      }
      const rejected = entry.reports.map((r) => r.rejectedAt - respondedAt);
      return {
        sid: session.sid,
        failed: false,
        requestMs: round(respondedAt - sentAt, 3),
        // Time from the revoke response until the last verifier rejects: the figure.
        allVerifiersMs: round(Math.max(...rejected), 3),
        firstVerifierMs: round(Math.min(...rejected), 3),
        perVerifierMs: rejected.map((v) => round(v, 3)),
        fromRequestMs: round(Math.max(...entry.reports.map((r) => r.rejectedAt)) - sentAt, 3),
        respondedAt,
        lastRejectedAt: Math.max(...entry.reports.map((r) => r.rejectedAt)),
      };
    }

    let next = 0;
    log(`propagation: ${settings.warmup} warm-up revocations`);
    for (let i = 0; i < settings.warmup; i++) await revoke(sessions[next++]);

    const sequential = [];
    for (let i = 0; i < settings.revocations; i++) {
      sequential.push(await revoke(sessions[next++]));
      if ((i + 1) % 50 === 0) log(`propagation: ${i + 1}/${settings.revocations} sequential revocations`);
      await sleep(randomInt(settings.minGapMs, settings.maxGapMs + 1));
    }
    let burst = [];
    let burstStartedAt = 0;
    if (settings.burst > 0) {
      log(`propagation: burst of ${settings.burst} concurrent revocations`);
      const batch = sessions.slice(next, next + settings.burst);
      next += settings.burst;
      burstStartedAt = wallClockMs();
      burst = await Promise.all(batch.map((s) => revoke(s)));
    }

    const bench = clockOffset();
    const clocks = [];
    for (const child of verifiers) {
      const answer = await ask(child, { type: 'clock' }, 'clock');
      clocks.push({ pid: child.pid, offsetFromBenchMs: round(answer.offsetMs - bench, 3), cursor: answer.status.cursor, revokedSessions: answer.status.revokedSessions, state: answer.status.state });
    }
    const ok = (list) => list.filter((r) => !r.failed);
    const seqOk = ok(sequential);
    const burstOk = ok(burst);
    const result = {
      settings: { ...settings, log: undefined },
      sequential: {
        failures: sequential.length - seqOk.length,
        allVerifiers: summarize(seqOk.map((r) => r.allVerifiersMs)),
        firstVerifier: summarize(seqOk.map((r) => r.firstVerifierMs)),
        perVerifier: summarize(seqOk.flatMap((r) => r.perVerifierMs)),
        fromRequest: summarize(seqOk.map((r) => r.fromRequestMs)),
        revokeRequest: summarize(seqOk.map((r) => r.requestMs)),
      },
      burst: burst.length
        ? {
            failures: burst.length - burstOk.length,
            allVerifiers: summarize(burstOk.map((r) => r.allVerifiersMs)),
            fromRequest: summarize(burstOk.map((r) => r.fromRequestMs)),
            revokeRequest: summarize(burstOk.map((r) => r.requestMs)),
            // From the first request of the burst to the last rejection of any of its tokens,
            // and from the last 204 to that rejection.
            spanMs: round(Math.max(...burstOk.map((r) => r.lastRejectedAt)) - burstStartedAt, 3),
            lastResponseToLastRejectionMs: round(Math.max(...burstOk.map((r) => r.lastRejectedAt)) - Math.max(...burstOk.map((r) => r.respondedAt)), 3),
          }
        : null,
      clocks,
      goalP99Ms: GOAL_P99_MS,
      raw: { sequential, burst },
    };
    result.goalMet = result.sequential.failures === 0 && result.sequential.allVerifiers.p99Ms <= GOAL_P99_MS;
    result.medianAllVerifiersMs = round(median(seqOk.map((r) => r.allVerifiersMs)), 3);
    return result;
  } finally {
    for (const child of verifiers) await stopChild(child);
    await tessera?.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseBenchArgs(import.meta.url, {
    options: {
      verifiers: { type: 'string', default: '8' },
      revocations: { type: 'string', default: '200' },
      burst: { type: 'string', default: '50' },
      warmup: { type: 'string', default: '10' },
      json: { type: 'string' },
    },
  });
  const result = await runPropagationBench({ verifiers: Number(values.verifiers), revocations: Number(values.revocations), burst: Number(values.burst), warmup: Number(values.warmup) });
  const text = JSON.stringify(result, null, 2);
  if (values.json) writeFileSync(values.json, `${text}\n`);
  else console.log(text);
}
