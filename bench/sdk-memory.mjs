// Benchmark: the SDK's heap with 100,000 ended sessions in its revocation set, and the set
// emptying itself once no access token of those sessions can still be valid.
//
//   node bench/sdk-memory.mjs [--sessions 100000] [--json out.json]
//
// Needs the build (`npx tsc -b`); `npm run bench` does it. Everything goes through the real
// paths: a Tessera node (SQLite, access-token lifetime 10 s, the minimum) whose store is
// migrated by the store code and seeded in bulk (bench/lib/seed-sessions.mjs) with
// 2 × sessions sessions, half of them already ended long ago (their log entries are past
// forget_after); an SDK client in its own process (bench/servers/sdk-heap.mjs, run with
// --expose-gc) that catches up with that log and follows the feed; then the benchmark ends
// every active session with the admin API (POST /admin/api/sessions/revoke, 1,000 handles a
// call), the SDK receives the entries over the revocation stream, and its heap is measured
// after full collections: before, with every entry in the set, and after the entries' 
// forget_after (plus the SDK's clock tolerance and one sweep interval) has passed, in real
// time, without any call that would drop entries on its own.
import { createSqliteStore } from '@tessera/store';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { ask, sleep, startChild, stopChild } from './lib/children.mjs';
import { planPopulation, seedSqlite } from './lib/seed-sessions.mjs';
import { round } from './lib/stats.mjs';
import { startTessera } from './lib/tessera.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const ACCESS_TOKEN_TTL_SECONDS = 10;
// The SDK's default clock tolerance (it keeps entries that long past forget_after) and the
// interval of its background sweep.
const SDK_TOLERANCE_MS = 5_000;
const SDK_SWEEP_MS = 30_000;
const BATCH = 1000;

const mib = (bytes) => round(bytes / 2 ** 20, 2);

/**
 * Runs the memory benchmark and returns its figures.
 *
 * @example
 * ```js
 * const result = await runSdkMemoryBench({ sessions: 100_000 });
 * console.log(result.bytesPerEntry);
 * ```
 */
export async function runSdkMemoryBench(options = {}) {
  const settings = { sessions: 100_000, ...options };
  const log = options.log ?? ((line) => console.error(line));
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-bench-heap-'));
  const file = join(dataDir, 'tessera.db');
  let tessera;
  let sdk;
  try {
    // A store with 2 × sessions sessions: as many active as we will end, and as many ended
    // 10 days ago (with their log entries), which the SDK must page through and not keep.
    let started = performance.now();
    const migrating = createSqliteStore(file);
    await migrating.migrate();
    await migrating.close();
    const oldEntries = seedSqlite(file, planPopulation(2 * settings.sessions, 1));
    const Database = require('better-sqlite3');
    const db = new Database(file, { readonly: true });
    const handles = db.prepare('SELECT handle FROM sessions WHERE ended_at IS NULL').pluck().all();
    db.close();
    if (handles.length !== settings.sessions) throw new Error(`seeded ${handles.length} active sessions, not ${settings.sessions}`);
    log(`sdk-memory: store seeded in ${((performance.now() - started) / 1000).toFixed(1)} s: ${handles.length} active sessions, ${oldEntries} old log entries`);

    tessera = await startTessera({ dataDir, env: { TESSERA_ACCESS_TOKEN_TTL: String(ACCESS_TOKEN_TTL_SECONDS) } });
    const app = await tessera.createApp({ trusted: false });
    started = performance.now();
    const child = await startChild(join(here, 'servers', 'sdk-heap.mjs'), { execArgv: ['--expose-gc'], message: { issuer: tessera.url, clientId: app.clientId, clientSecret: app.clientSecret } });
    sdk = child.child;
    log(`sdk-memory: SDK caught up with ${oldEntries} old entries in ${child.ready.caughtUpMs} ms; it keeps ${child.ready.status.revokedSessions} of them`);
    await sleep(1000);
    const before = await ask(sdk, { type: 'measure' }, 'measure');
    log(`sdk-memory: heap before: ${mib(before.heapUsed)} MiB, ${before.status.revokedSessions} entries`);

    // End every active session, 1,000 per call, as an operator's bulk revoke would.
    started = performance.now();
    for (let i = 0; i < handles.length; i += BATCH) {
      const answer = await tessera.admin('POST', '/sessions/revoke', { handles: handles.slice(i, i + BATCH) }, 200);
      if (answer.revoked.length !== Math.min(BATCH, handles.length - i)) throw new Error(`revoke batch ${i / BATCH}: ${answer.revoked.length} ended`);
    }
    const revokeSeconds = (performance.now() - started) / 1000;
    const filled = await ask(sdk, { type: 'wait', revokedSessions: settings.sessions }, 'wait', 600_000);
    const ingestSeconds = (performance.now() - started) / 1000;
    log(`sdk-memory: ${settings.sessions} sessions ended in ${revokeSeconds.toFixed(1)} s; the SDK's set held them all after ${ingestSeconds.toFixed(1)} s`);
    const full = await ask(sdk, { type: 'measure' }, 'measure');
    log(`sdk-memory: heap with ${full.status.revokedSessions} entries: ${mib(full.heapUsed)} MiB`);

    // Wait, in real time, until every entry is past forget_after plus the SDK's tolerance,
    // then one sweep interval more; measure before anything asks for the set's size.
    const expiresAt = full.lastForgetAfter + SDK_TOLERANCE_MS;
    const wakeAt = expiresAt + SDK_SWEEP_MS + 1000;
    log(`sdk-memory: last forget_after in ${((full.lastForgetAfter - Date.now()) / 1000).toFixed(0)} s; waiting ${((wakeAt - Date.now()) / 1000).toFixed(0)} s (forget_after + ${SDK_TOLERANCE_MS / 1000} s tolerance + a ${SDK_SWEEP_MS / 1000} s sweep interval)`);
    await sleep(Math.max(0, wakeAt - Date.now()));
    const aged = await ask(sdk, { type: 'measure', status: false }, 'measure');
    const agedStatus = await ask(sdk, { type: 'measure' }, 'measure');
    log(`sdk-memory: heap after ageing: ${mib(aged.heapUsed)} MiB, ${agedStatus.status.revokedSessions} entries`);

    return {
      settings: { sessions: settings.sessions, accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS, batch: BATCH, sdkToleranceMs: SDK_TOLERANCE_MS, sdkSweepMs: SDK_SWEEP_MS },
      oldEntries,
      oldEntriesKept: child.ready.status.revokedSessions,
      catchUpMs: child.ready.caughtUpMs,
      revokeSeconds: round(revokeSeconds, 2),
      ingestSeconds: round(ingestSeconds, 2),
      before: { heapUsed: before.heapUsed, rss: before.rss, entries: before.status.revokedSessions },
      full: { heapUsed: full.heapUsed, rss: full.rss, entries: full.status.revokedSessions, events: full.events, cursor: full.status.cursor },
      aged: { heapUsed: aged.heapUsed, rss: aged.rss, entries: agedStatus.status.revokedSessions, secondsAfterLastForgetAfter: round((aged.now - full.lastForgetAfter) / 1000, 1) },
      bytesPerEntry: round((full.heapUsed - before.heapUsed) / settings.sessions, 1),
      agedMinusBefore: aged.heapUsed - before.heapUsed,
    };
  } finally {
    if (sdk) await stopChild(sdk);
    await tessera?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseBenchArgs(import.meta.url, { options: { sessions: { type: 'string', default: '100000' }, json: { type: 'string' } } });
  const result = await runSdkMemoryBench({ sessions: Number(values.sessions) });
  const text = JSON.stringify(result, null, 2);
  if (values.json) writeFileSync(values.json, `${text}\n`);
  else console.log(text);
}
