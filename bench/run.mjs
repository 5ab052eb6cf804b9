// `npm run bench`: runs every benchmark, each in its own process, one after the other, keeps
// the raw results in bench/.results/ (not committed) and rewrites docs/benchmarks.md.
//
//   npm run bench [-- --rounds 5 --seconds 5 --connections 10 --sizes 10000,1000000
//                     --pg-sizes 10000,1000000 --users 200 --postgres URL --no-postgres --profile
//                     --route-users 1000 --route-rounds 10 --route-seconds 3 --verifiers 8
//                     --revocations 200 --burst 50 --heap-sessions 100000
//                     --oidc-rounds 3 --oidc-seconds 5
//                     --only whoami,revoke,protected-route,propagation,sdk-memory,multi-node,backchannel,oidc,ssf]
//
// --connections and --profile apply to both throughput benchmarks; --rounds and --seconds
// to whoami, --route-rounds and --route-seconds to protected-route (more, shorter rounds:
// five targets alternate there, and finer alternation follows the machine's load better). --only runs a subset; the document it writes then covers
// only that subset, so it goes to bench/.results/ and docs/benchmarks.md is left alone
// (unless --out names a file).
//
// PostgreSQL defaults to postgres://127.0.0.1:5432/test (or TESSERA_BENCH_DATABASE_URL); the
// revocation benchmark works in schemas of its own there and drops them afterwards.
// Benchmarks are not tests: `npm test` never runs them.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { median } from './lib/stats.mjs';
import { syncBenchmarkFigures } from '../scripts/readme-figures.mjs';
import { backchannelCaveats, backchannelSection, backchannelSummaryRows } from './lib/backchannel-report.mjs';
import { oidcCaveats, oidcSection, oidcSummaryRows } from './lib/oidc-report.mjs';
import { ssfCaveats, ssfSection, ssfSummaryRows } from './lib/ssf-report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);

const { values: args } = parseBenchArgs(import.meta.url, {
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '10' },
    sizes: { type: 'string', default: '10000,1000000' },
    'pg-sizes': { type: 'string', default: '10000,1000000' },
    users: { type: 'string', default: '200' },
    postgres: { type: 'string', default: process.env.TESSERA_BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test' },
    'no-postgres': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'route-users': { type: 'string', default: '1000' },
    'route-rounds': { type: 'string', default: '10' },
    'route-seconds': { type: 'string', default: '3' },
    verifiers: { type: 'string', default: '8' },
    revocations: { type: 'string', default: '200' },
    burst: { type: 'string', default: '50' },
    'heap-sessions': { type: 'string', default: '100000' },
    'oidc-rounds': { type: 'string', default: '3' },
    'oidc-seconds': { type: 'string', default: '5' },
    only: { type: 'string' },
    out: { type: 'string' },
  },
});

const BENCHMARKS = ['whoami', 'revoke', 'protected-route', 'propagation', 'sdk-memory', 'multi-node', 'backchannel', 'oidc', 'ssf'];
const selected = args.only ? args.only.split(',').map((s) => s.trim()).filter(Boolean) : BENCHMARKS;
for (const name of selected) if (!BENCHMARKS.includes(name)) throw new TypeError(`--only: unknown benchmark ${name}; choose among ${BENCHMARKS.join(', ')}`);
const partial = selected.length < BENCHMARKS.length;
const out = args.out ?? (partial ? null : join(root, 'docs', 'benchmarks.md'));

/** Runs one benchmark script in its own process; its progress goes to our stderr. */
function runScript(script, scriptArgs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, script), ...scriptArgs], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited with code ${code}`))));
  });
}

function git(...gitArgs) {
  try {
    return execFileSync('git', gitArgs, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function sqliteVersion() {
  const Database = require('better-sqlite3');
  const db = new Database(':memory:');
  try {
    return db.prepare('SELECT sqlite_version() AS v').get().v;
  } finally {
    db.close();
  }
}

/** The command that produced the figures, as the reader would type it. */
function commandLine() {
  const extra = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${extra ? ` -- ${extra}` : ''}`;
  return `node bench/run.mjs${extra ? ` ${extra}` : ''}`;
}

const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const verdict = (ok) => (ok ? 'met' : '**not met**');

function whoamiSection(w) {
  const s = w.settings;
  const lines = [
    '## 1. `GET /v1/whoami` against a bare `node:http` server',
    '',
    `Tessera (SQLite, built server from \`packages/server/dist\`, log level \`warn\`, rate limits off) answers \`GET /v1/whoami\` for a session started by a trusted app (\`POST /v1/sessions\`), authenticated with \`X-Session-Token\`. The baseline is a bare \`node:http\` server that answers every request with the bytes of one real whoami response (${w.responseBytes} bytes, same \`content-type\`). Each server is its own process; autocannon runs in the benchmark process. ${s.rounds} rounds of ${s.seconds} s per target, alternating bare, Tessera, bare, Tessera, …, after a ${s.warmupSeconds} s warm-up of each; ${s.connections} connections, pipelining ${s.pipelining}.`,
    '',
    '| target | median req/s | mean latency (connections ÷ req/s) | server CPU per request | autocannon CPU per request |',
    '|---|---:|---:|---:|---:|',
    ...[['bare `node:http`', w.median.bare], ['Tessera whoami', w.median.tessera]].map(
      ([name, m]) => `| ${name} | ${fmt(m.reqPerSec)} | ${fmt(m.impliedLatencyMs, 2)} ms | ${m.serverCpuMicrosPerRequest === null ? 'n/a' : `${fmt(m.serverCpuMicrosPerRequest, 1)} µs`} | ${fmt(m.loadGeneratorCpuMicrosPerRequest, 1)} µs |`,
    ),
    '',
    `**Ratio Tessera / bare: ${w.ratio.toFixed(2)}** (median req/s over median req/s; goal ≥ ${w.goal}: ${verdict(w.ratio >= w.goal)}). Ratio of each round's pair: ${w.pairRatios.map((r) => r.toFixed(2)).join(', ')}.`,
    '',
    '<details><summary>Every round</summary>',
    '',
    '| round | target | req/s | server CPU per request | autocannon CPU per request |',
    '|---:|---|---:|---:|---:|',
    ...w.rounds.map((r) => `| ${r.round} | ${r.target} | ${fmt(r.reqPerSec)} | ${r.serverCpuMicrosPerRequest === null ? 'n/a' : `${fmt(r.serverCpuMicrosPerRequest, 1)} µs`} | ${fmt(r.loadGeneratorCpuMicrosPerRequest, 1)} µs |`),
    '',
    '</details>',
  ];
  return lines.join('\n');
}

function revokeTable(part, label) {
  const rows = [];
  for (const row of part.rows) {
    for (const path of ['store', 'core']) {
      rows.push(`| ${label} | ${fmt(row.sessions)} | ${fmt(row.users)} | ${path} | ${fmt(row[path].medianMs, 3)} ms | ${fmt(row[path].p95Ms, 3)} ms | ${row[path].n} | ${fmt(row.seedSeconds, 1)} s |`);
    }
  }
  const small = part.rows[0].sessions;
  const large = part.rows[part.rows.length - 1].sessions;
  const ratioLines = ['store', 'core'].map(
    (path) => `- ${label}, ${path} path: ${fmt(large)} ÷ ${fmt(small)} = **${part.ratios[path].median.toFixed(2)}×** at the median (goal ≤ ${part.goal}×: ${verdict(part.ratios[path].median <= part.goal)}), ${part.ratios[path].p95.toFixed(2)}× at p95.`,
  );
  return { rows, ratioLines };
}

function revokeSection(r) {
  const s = r.settings;
  const parts = [['SQLite', r.sqlite]];
  if (r.postgres && !r.postgres.skipped) parts.push(['PostgreSQL', r.postgres]);
  const tables = parts.map(([label, part]) => revokeTable(part, label));
  const lines = [
    '## 2. Ending all sessions of one user, by store size',
    '',
    `Ending all ${s.activePerUser} active sessions of one user, in stores of ${r.sqlite.sizes.map((n) => fmt(n)).join(' and ')} sessions. Each store is migrated by the store code, then seeded in bulk (\`bench/lib/seed-sessions.mjs\`) with users all alike: ${s.activePerUser} active and ${s.sessionsPerUser - s.activePerUser} ended sessions each (the ended ones with their revocation-log entries), created round-robin so that one user's rows are spread over the table, so ${fmt(r.sqlite.sizes[r.sqlite.sizes.length - 1] / s.sessionsPerUser)} users in the largest store. Two code paths, each timed on its own ${s.users} users per store after ${s.warmup} warm-up users (an ended user cannot be measured again, so every sample is a different user): **store** = \`store.endUserSessions(userId, {}, end)\`, one transaction; **core** = \`authority.sessions.revokeUserSessions(userId, {}, …)\`, the same plus the audit row, which is what \`DELETE /admin/api/users/:id/sessions\` runs, minus HTTP. The sizes are measured alternately (user *i* of the small store, then of the large one) so that the machine's load hits both alike. SQLite runs with the store's own settings (WAL, \`synchronous = NORMAL\`, default page cache).`,
    '',
    '| database | sessions in store | users | path | median | p95 | samples | seeding |',
    '|---|---:|---:|---|---:|---:|---:|---:|',
    ...tables.flatMap((t) => t.rows),
    '',
    ...tables.flatMap((t) => t.ratioLines),
  ];
  if (r.postgres?.skipped) lines.push('', `PostgreSQL was not measured: ${r.postgres.skipped}`);
  else if (!r.postgres) lines.push('', 'PostgreSQL was not measured in this run (`--no-postgres`).');
  return lines.join('\n');
}

const TARGET_LABELS = {
  unguarded: 'unguarded (baseline)',
  tessera: '(a) Tessera SDK',
  jose: '(b) jose `jwtVerify`',
  'express-session': '(c) express-session, MemoryStore',
  'better-auth': '(d) better-auth `getSession`, SQLite',
};
const cpuCell = (v) => (v === null ? 'n/a' : `${fmt(v, 1)} µs`);

function protectedRouteSection(p) {
  const s = p.settings;
  const v = p.versions;
  const measured = Object.keys(p.median);
  const peers = measured.filter((n) => n !== 'unguarded' && n !== 'tessera');
  const aheadOfPeers = peers.every((n) => p.ratios.tessera > p.ratios[n]);
  const lines = [
    '## 3. Protected route: `GET /me` unguarded and guarded four ways',
    '',
    `The same tiny route on plain \`node:http\`: \`GET /me\` answers \`{"sub","sid"}\` of the caller (about 60 bytes of JSON). Every target is its own process running \`bench/servers/me.mjs\` with the same server, routing and response writer; only the guard differs. ${fmt(s.users)} distinct users' credentials are in rotation: a real Tessera node (SQLite) made ${fmt(s.users)} users with the admin API, started a session for each (\`POST /v1/sessions\`, trusted app) and exchanged it for an access token (\`POST /v1/token\`, EdDSA JWT, lifetime set to ${s.accessTokenTtlSeconds} s so that none expires during the run).`,
    '',
    `- **unguarded**: no check; it receives the same \`Authorization: Bearer\` headers as (a) and (b) and ignores them.`,
    `- **(a) Tessera SDK**: \`withSession(tessera, handler)\` from \`@tessera/sdk/node\`; \`createTessera({ issuer, clientId, clientSecret })\` with default options, \`start()\`ed before listening, so it is caught up with the revocation log and follows the stream as in production (the Tessera node runs during the whole benchmark). Each distinct token is verified once (signature, claims) and cached until it expires; every request then costs the cache lookup plus the revocation-set check.`,
    `- **(b) jose ${v.jose}**: \`jwtVerify(token, createLocalJWKSet(jwks), { issuer, audience, algorithms: ['EdDSA'], typ: 'at+jwt' })\` on every request; the JWKS is fetched once at start and held locally; no token cache. It never learns of a revocation before \`exp\`.`,
    `- **(c) express-session ${v['express-session']}** with its \`MemoryStore\`, \`resave: false, saveUninitialized: false\`: the middleware function is called directly on node:http's \`req\`/\`res\` (no Express, the least overhead), then the handler reads \`req.session.user\`. ${fmt(s.users)} sessions were made up front through the same middleware (a setup-only \`GET /login?user=i\` that stores the user in a new session), and their signed \`sid\` cookies are rotated.`,
    `- **(d) better-auth ${v['better-auth']}** on SQLite through better-sqlite3 ${v['better-sqlite3']} (WAL): \`auth.api.getSession({ headers: fromNodeHeaders(req.headers) })\`, default session settings (no cookie cache, so every call reads the session and the user from SQLite and checks the cookie's HMAC). Migrations run programmatically (\`getMigrations(auth.options).runMigrations()\` from \`better-auth/db/migration\`); ${fmt(s.users)} users and their sessions were made with \`auth.api.signUpEmail\`, whose session cookies are rotated. Setup only: the users' passwords are hashed with SHA-256 instead of better-auth's default scrypt (0.2 s per sign-up here); \`getSession\` never touches a password.`,
    '',
    `Load: autocannon ${v.autocannon} in the benchmark process, ${s.connections} connections, pipelining ${s.pipelining}. Rotation: ${s.rotation === 'list' ? `one autocannon instance per connection, each with autocannon's \`requests\` list of all ${fmt(s.users)} credentials built once and started at its own offset, so concurrent requests carry different credentials and even the slowest target sees every credential within a round, at no more load-generator CPU per request than a fixed request (a \`setupRequest\` callback rebuilds each request and costs autocannon about twice the CPU per request, which on two shared cores caps the fast targets; \`node bench/protected-route.mjs --rotation setup-request\` runs that way)` : 'one autocannon instance whose `setupRequest` sets the next credential from a shared counter on every request'}. Before the timed rounds, each server counted what it served during ${fmt(3 * s.users)} requests: every target saw ${fmt(s.users)} distinct credentials (and the guarded ones ${fmt(s.users)} distinct identities), so the rotation is checked, not assumed. ${s.rounds} rounds of ${s.seconds} s per target, alternating ${measured.join(', ')}, … after a ${s.warmupSeconds} s warm-up of each.`,
    '',
    '| target | median req/s | ratio to unguarded | ratio per round | mean latency | server CPU per request | autocannon CPU per request |',
    '|---|---:|---:|---|---:|---:|---:|',
    ...measured.map((n) => {
      const m = p.median[n];
      return `| ${TARGET_LABELS[n]} | ${fmt(m.reqPerSec)} | **${p.ratios[n].toFixed(2)}** | ${p.pairRatios[n].map((r) => r.toFixed(2)).join(', ')} | ${fmt(m.impliedLatencyMs, 2)} ms | ${cpuCell(m.serverCpuMicrosPerRequest)} | ${cpuCell(m.loadGeneratorCpuMicrosPerRequest)} |`;
    }),
    '',
  ];
  if (p.ratios.tessera !== undefined) {
    const cpuU = p.median.unguarded.serverCpuMicrosPerRequest;
    const cpuT = p.median.tessera.serverCpuMicrosPerRequest;
    const cpuNote = cpuU !== null && cpuT !== null ? ` Server CPU per request (median): ${fmt(cpuU, 1)} µs unguarded, ${fmt(cpuT, 1)} µs with the SDK, so the SDK's process spends about ${fmt(cpuT - cpuU, 1)} µs more CPU per request: the guard's own work (read the header, look the token up in the verified-token cache, check the revocation set; a token seen before reaches the handler without a promise hop) plus the kernel's costlier wake-ups at a lower request rate (see Caveats). Next to a route this cheap, and with the load generator on the same two cores, that is what sets the ratio.` : '';
    const pairs = p.pairRatios.tessera;
    const pairNote = pairs.length > 1 ? ` The ratios of the single rounds range from ${Math.min(...pairs).toFixed(2)} to ${Math.max(...pairs).toFixed(2)} (median ${median(pairs).toFixed(2)}): one round is noisy on this shared machine, hence the medians over ${pairs.length} rounds.` : '';
    lines.push(`**Tessera ÷ unguarded: ${p.ratios.tessera.toFixed(2)}** (median req/s over median req/s; goal ≥ ${p.goal}: ${verdict(p.ratios.tessera >= p.goal)}); ahead of every peer: ${peers.length ? `${aheadOfPeers ? 'yes' : '**no**'} (${peers.map((n) => `${n} ${p.ratios[n].toFixed(2)}`).join(', ')})` : 'no peer measured'}. At the end, the SDK held ${p.sdkStatus ? fmt(p.sdkStatus.cachedTokens) : '?'} verified tokens and its feed was \`${p.sdkStatus?.state ?? '?'}\`.${pairNote}${cpuNote}`);
    lines.push('');
  }
  const ip = p.inProcess ?? {};
  if (ip.unguarded && ip.tessera) {
    lines.push(
      `In process, without HTTP and without the load generator (each server's own \`GET /me\` handler called ${fmt(p.settings.costIterations)} times in a row with a minimal request carrying a fresh header string, rotated over the same credentials, and a response whose \`end\` completes the call; CPU time per call, median of 5 runs, measured in each target's process after the rounds): unguarded ${fmt(ip.unguarded.microsPerCall, 2)} µs, Tessera SDK ${fmt(ip.tessera.microsPerCall, 2)} µs${ip.jose ? `, jose ${fmt(ip.jose.microsPerCall, 1)} µs` : ''}. **The SDK guard itself costs ${fmt(ip.tessera.microsPerCall - ip.unguarded.microsPerCall, 2)} µs of CPU per request.**`,
      '',
    );
  }
  lines.push(
    '<details><summary>Every round</summary>',
    '',
    '| round | target | req/s | server CPU per request | autocannon CPU per request |',
    '|---:|---|---:|---:|---:|',
    ...p.rounds.map((r) => `| ${r.round} | ${r.target} | ${fmt(r.reqPerSec)} | ${cpuCell(r.serverCpuMicrosPerRequest)} | ${cpuCell(r.loadGeneratorCpuMicrosPerRequest)} |`),
    '',
    '</details>',
  );
  return lines.join('\n');
}

const ms = (v) => `${fmt(v, 1)} ms`;

function propagationSection(g) {
  const s = g.settings;
  const q = g.sequential;
  const row = (label, x) => `| ${label} | ${x.n} | ${ms(x.p50Ms)} | ${ms(x.p90Ms)} | ${ms(x.p99Ms)} | ${ms(x.maxMs)} | ${ms(x.minMs)} |`;
  const offsets = g.clocks.map((c) => c.offsetFromBenchMs);
  const lines = [
    '## 4. Revocation propagation to 8 verifier processes',
    '',
    `A real Tessera node (SQLite, built server) and ${s.verifiers} verifier processes (\`bench/servers/verifier.mjs\`), each an app instance running the SDK with default options, \`start()\`ed and following the revocation stream, each holding the access tokens of all ${fmt(s.warmup + s.revocations + s.burst)} sessions under test (verified once, so cached, as after serving a request with each). The benchmark ends one session with the admin API (\`DELETE /admin/api/sessions/:handle\`) and notes when the 204 arrives; each verifier, as soon as its SDK emits \`'revoked'\` for that session, calls \`verify(token)\`, checks that it rejects with \`TOKEN_REVOKED\` and reports that moment over IPC. **The figure is the time from the revoke response until the last of the ${s.verifiers} verifiers rejects the token.** Times are \`performance.timeOrigin + performance.now()\` in every process (sub-millisecond wall clock, comparable across processes, unlike \`process.hrtime\`); the verifiers' clocks differed from the benchmark's by ${fmt(Math.min(...offsets), 2)} to ${fmt(Math.max(...offsets), 2)} ms (mean of 2,000 \`Date.now()\` readings each). ${s.warmup} warm-up revocations, then ${s.revocations} one after the other with a random gap of ${s.minGapMs}–${s.maxGapMs} ms, then a burst of ${s.burst} sent at once. All ${s.verifiers + 2} processes share the machine's cores.`,
    '',
    '| sequential revocations | n | p50 | p90 | p99 | max | min |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row('**revoke response → all verifiers reject**', q.allVerifiers),
    row('revoke response → first verifier rejects', q.firstVerifier),
    row('revoke response → each verifier rejects (all pairs)', q.perVerifier),
    row('revoke request sent → all verifiers reject', q.fromRequest),
    row('the revoke request itself (sent → 204)', q.revokeRequest),
    '',
    `**p99 ${ms(q.allVerifiers.p99Ms)}** over ${q.allVerifiers.n} revocations (goal ≤ ${g.goalP99Ms} ms on loopback: ${verdict(g.goalMet)}); ${q.failures === 0 ? 'every verifier rejected every token' : `**${q.failures} revocations were not seen by every verifier within 10 s, or a verify still accepted**`}. A negative time means a verifier rejected the token before the 204 reached the benchmark: the server wakes the feed right after the commit, while the response is still on its way.`,
  ];
  if (g.burst) {
    const b = g.burst;
    lines.push(
      '',
      `Burst: ${s.burst} \`DELETE\` requests sent at once (they queue at the server, which commits one end after the other, so the later 204s come late; the first row counts from each revocation's own 204):`,
      '',
      '| burst | n | p50 | p90 | p99 | max | min |',
      '|---|---:|---:|---:|---:|---:|---:|',
      row('revoke response → all verifiers reject', b.allVerifiers),
      row('revoke request sent → all verifiers reject', b.fromRequest),
      row('the revoke request itself (sent → 204)', b.revokeRequest),
      '',
      `${b.failures === 0 ? 'Every verifier rejected every token of the burst' : `**${b.failures} revocations of the burst were not seen by every verifier**`}; the last rejection came ${ms(b.spanMs)} after the first request of the burst was sent, ${b.lastResponseToLastRejectionMs >= 0 ? `${ms(b.lastResponseToLastRejectionMs)} after the last 204 arrived` : `${ms(-b.lastResponseToLastRejectionMs)} before the last 204 arrived`}.`,
    );
  }
  return lines.join('\n');
}

function memorySection(m) {
  const s = m.settings;
  return [
    `## 5. SDK heap with ${fmt(s.sessions)} ended sessions in its revocation set`,
    '',
    `A Tessera node (SQLite, access-token lifetime ${s.accessTokenTtlSeconds} s, the minimum, so that \`forget_after\` = end + ${s.accessTokenTtlSeconds} s + the server's 60 s skew) on a store migrated by the store code and seeded in bulk with ${fmt(2 * s.sessions)} sessions: ${fmt(s.sessions)} active, and ${fmt(m.oldEntries)} ended 10 days ago with their revocation-log entries. One SDK client (default options) in its own process run with \`--expose-gc\` (\`bench/servers/sdk-heap.mjs\`); \`start()\` paged through the ${fmt(m.oldEntries)} old entries in ${fmt(m.catchUpMs)} ms and kept ${fmt(m.oldEntriesKept)} of them (all past \`forget_after\`). Then the benchmark ended all ${fmt(s.sessions)} active sessions with the admin API (\`POST /admin/api/sessions/revoke\`, ${fmt(s.batch)} handles per call, ${fmt(m.revokeSeconds, 1)} s); the SDK received them over the revocation stream and held all of them ${fmt(m.ingestSeconds, 1)} s after the first call. Heap is \`process.memoryUsage().heapUsed\` after full collections (\`gc()\`, the smallest of four readings).`,
    '',
    '| moment | entries in the set | heap used | RSS |',
    '|---|---:|---:|---:|',
    `| after start (caught up, following the stream) | ${fmt(m.before.entries)} | ${fmt(m.before.heapUsed / 2 ** 20, 2)} MiB | ${fmt(m.before.rss / 2 ** 20, 1)} MiB |`,
    `| all ${fmt(s.sessions)} sessions ended | ${fmt(m.full.entries)} | ${fmt(m.full.heapUsed / 2 ** 20, 2)} MiB | ${fmt(m.full.rss / 2 ** 20, 1)} MiB |`,
    `| ${fmt(m.aged.secondsAfterLastForgetAfter)} s after the last \`forget_after\` | ${fmt(m.aged.entries)} | ${fmt(m.aged.heapUsed / 2 ** 20, 2)} MiB | ${fmt(m.aged.rss / 2 ** 20, 1)} MiB |`,
    '',
    `**${fmt(m.bytesPerEntry)} bytes per entry** (heap with the set full minus heap before, divided by ${fmt(s.sessions)}): ${fmt((m.full.heapUsed - m.before.heapUsed) / 2 ** 20, 1)} MiB for ${fmt(s.sessions)} ended sessions. The entries age out on their own: the last row was taken in real time, after the last entry's \`forget_after\` plus the SDK's ${s.sdkToleranceMs / 1000} s clock tolerance plus one ${s.sdkSweepMs / 1000} s interval of its background sweep, with no call that drops entries itself (the entry count was read just after); the heap is back ${m.agedMinusBefore >= 0 ? `within ${fmt(m.agedMinusBefore / 1024)} KiB of` : `${fmt(-m.agedMinusBefore / 1024)} KiB below`} where it started.`,
  ].join('\n');
}

function summaryRows(w, r, p, g, m) {
  const rows = [];
  if (w) rows.push(`| whoami req/s, Tessera ÷ bare \`node:http\` | ≥ ${w.goal} | ${w.ratio.toFixed(2)} | ${verdict(w.ratio >= w.goal)} |`);
  if (r) {
    const parts = [['SQLite', r.sqlite]];
    if (r.postgres && !r.postgres.skipped) parts.push(['PostgreSQL', r.postgres]);
    for (const [label, part] of parts) {
      const small = part.rows[0].sessions;
      const large = part.rows[part.rows.length - 1].sessions;
      for (const path of ['store', 'core']) {
        rows.push(`| end a user's 10 sessions, ${label} (${path}), median at ${fmt(large)} ÷ at ${fmt(small)} | ≤ ${part.goal}× | ${part.ratios[path].median.toFixed(2)}× | ${verdict(part.ratios[path].median <= part.goal)} |`);
      }
    }
  }
  if (p && p.ratios.tessera !== undefined) {
    rows.push(`| \`GET /me\` req/s, Tessera SDK ÷ unguarded (${fmt(p.settings.users)} users' tokens in rotation) | ≥ ${p.goal} | ${p.ratios.tessera.toFixed(2)} | ${verdict(p.ratios.tessera >= p.goal)} |`);
    const peers = Object.keys(p.ratios).filter((n) => n !== 'unguarded' && n !== 'tessera');
    if (peers.length) {
      const best = peers.reduce((a, b) => (p.ratios[a] >= p.ratios[b] ? a : b));
      rows.push(`| \`GET /me\`: Tessera ahead of every peer (${peers.map((n) => `${n} ${p.ratios[n].toFixed(2)}`).join(', ')}) | ahead of all | ${p.ratios.tessera.toFixed(2)} vs best peer ${p.ratios[best].toFixed(2)} | ${verdict(peers.every((n) => p.ratios.tessera > p.ratios[n]))} |`);
    }
  }
  if (g) rows.push(`| revocation seen by all ${g.settings.verifiers} verifiers, p99 over ${g.sequential.allVerifiers.n} (p50 ${ms(g.sequential.allVerifiers.p50Ms)}) | ≤ ${g.goalP99Ms} ms | ${ms(g.sequential.allVerifiers.p99Ms)} | ${verdict(g.goalMet)} |`);
  if (m) rows.push(`| SDK heap with ${fmt(m.settings.sessions)} ended sessions; entries age out | bounded, ages out | ${fmt(m.bytesPerEntry)} B/entry (${fmt((m.full.heapUsed - m.before.heapUsed) / 2 ** 20, 1)} MiB); ${fmt(m.aged.entries)} left after ageing | ${verdict(m.aged.entries === 0)} |`);
  return ['| benchmark | goal | measured | |', '|---|---|---:|---|', ...rows].join('\n');
}

function caveats(w, r, p, g, m) {
  const sizes = r && r.postgres && !r.postgres.skipped ? r.postgres.sizes : null;
  const lines = [
    '## Caveats',
    '',
    `- The machine has ${availableParallelism()} cores and is shared with other work; the load average was ${loadavg().map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min) at the end of the run. Absolute figures move from run to run; only the ratios, measured side by side in one run with alternating rounds, are meant to be compared.`,
  ];
  if (w || p) lines.push('- whoami and `GET /me`: the load generator (autocannon, in the benchmark process) and the server under test share those cores, so it caps every target. Server CPU per request is read from `/proc/<pid>/stat` around each round and includes the kernel\'s share of the loopback TCP traffic; on this virtual machine a response written to a load generator that is waiting costs a cross-CPU wake-up, so a slower server also pays more per write, which widens the ratio beyond the difference in application work. On a machine where the load generator has its own cores, absolute figures are higher. autocannon records latencies in whole milliseconds, too coarse at these speeds, so the tables give the mean latency that follows from the throughput of a closed loop of that many connections.');
  if (w) lines.push('- whoami runs on SQLite with one session, authenticated with `X-Session-Token` and no `Origin`, so Tessera answers it on its lean path (docs/decisions/0004: the same core session check and the same bytes as the Fastify route, without Fastify\'s per-request hooks and objects; at log level `info` every request takes the Fastify route instead). Every request splits the token, checks SQLite\'s `data_version` (at most once per turn of the event loop), takes the session from the in-process session cache and compares a SHA-256 of the token secret in constant time; the cache is exact (every end or user change made by this process drops its entries, a commit by any other connection empties it). The last-seen write happens at most once per `session.touchIntervalSeconds` (60 s), so at most once per round.');
  if (r) {
    lines.push(
      `- Revocation: every timing is one call of a few hundred microseconds to a few milliseconds; the median is stable, the p95 is at the mercy of the machine (scheduling, SQLite WAL checkpoints, PostgreSQL background writes).${sizes ? ` PostgreSQL runs on the same machine (TCP to 127.0.0.1, the server's own settings), with ANALYZE after seeding, as autovacuum would do after a load of that size; sizes ${sizes.map((n) => fmt(n)).join(' and ')}.` : ''}`,
      '- The seeded stores carry no audit rows and one revocation-log entry per ended session; the audit table grows by one row per core-path call during the run. Seeding time is for the benchmark only (bulk load with indexes built at the end), not a figure of Tessera.',
      '- A small store fits in SQLite\'s page cache and in the CPU caches; a large one does not, so each call in the large store reads its pages from the operating system\'s cache and walks deeper B-trees: a cost that grows with the logarithm of the size plus the cache misses.',
    );
  }
  if (p) {
    lines.push(
      '- `GET /me` compares guards that do different things: (a) verifies each token once and then checks the in-memory revocation set (kept current by the feed) on every request; (b) verifies the signature on every request but never sees a revocation before `exp`; (c) and (d) look the session up on every request ((c) in process memory, (d) in SQLite) and see a logout at once, but only on the one server that holds the store (c) or can reach the database (d). better-auth also offers a signed cookie cache (`session.cookieCache`) that skips the database and, like (b), does not see a revocation until the cache expires; it was left off, its default. The Tessera access tokens live 1 h in this benchmark only so that none expires mid-run; with the default 5 min each token is verified once per 5 min instead of once per run, which changes nothing measurable at 1,000 users.',
      '- Every target answers from a process that does nothing else, except that the Tessera node (idle but for the SDK\'s open revocation stream and its 15 s heartbeat) runs alongside all of them.',
    );
  }
  if (g) lines.push('- Propagation: the server, the 8 verifiers and the benchmark are 10 processes on 2 cores, so a verifier often waits for a core; that scheduling delay, not the feed, makes most of the tail. The revoke goes through the admin API of the one node that serves the stream, which wakes the stream right after the commit. With several nodes, an end committed on another node (or by the CLI) reaches this node\'s stream when it is woken (PostgreSQL `NOTIFY` or Redis, when configured) or at its next poll of the log (`feed.pollIntervalMs`, default 1 s); that path is not measured here.');
  if (m) lines.push('- SDK memory: heap figures are for the whole SDK process (Node.js itself, the SDK, jose, the open stream); the difference between readings is what the set costs. The SDK\'s verified-token cache (not measured here) holds a token string and its claims per entry, more than a revocation entry, and is bounded by `cache.maxEntries` (10,000 by default).');
  lines.push('- To see where time goes, add `--profile`: the whoami and `GET /me` servers run under `node --cpu-prof` and write `.cpuprofile` files to `bench/.results/profiles/` (open them in Chrome DevTools).');
  return lines.join('\n');
}

async function main() {
  const results = join(here, '.results');
  mkdirSync(results, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = (name) => join(results, `${stamp}-${name}.json`);
  const startedAt = new Date();
  const shared = ['--connections', args.connections, ...(args.profile ? ['--profile'] : [])];
  const runs = {
    whoami: () => runScript('whoami.mjs', ['--rounds', args.rounds, '--seconds', args.seconds, ...shared, '--json', file('whoami')]),
    revoke: () => runScript('revoke-scaling.mjs', ['--sizes', args.sizes, '--pg-sizes', args['pg-sizes'], '--users', args.users, '--postgres', args.postgres, '--json', file('revoke'), ...(args['no-postgres'] ? ['--no-postgres'] : [])]),
    'protected-route': () => runScript('protected-route.mjs', ['--rounds', args['route-rounds'], '--seconds', args['route-seconds'], ...shared, '--users', args['route-users'], '--json', file('protected-route')]),
    propagation: () => runScript('propagation.mjs', ['--verifiers', args.verifiers, '--revocations', args.revocations, '--burst', args.burst, '--json', file('propagation')]),
    'sdk-memory': () => runScript('sdk-memory.mjs', ['--sessions', args['heap-sessions'], '--json', file('sdk-memory')]),
    // Three nodes on PostgreSQL, with and without Redis (bench/multi-node.mjs).
    'multi-node': async () => (args['no-postgres'] ? writeFileSync(file('multi-node'), JSON.stringify({ skipped: '--no-postgres' })) : runScript('multi-node.mjs', ['--postgres', args.postgres, '--revocations', args.revocations, '--json', file('multi-node')])),
    // 1,000 sessions × 5 apps ended at once; deliveries per second (bench/backchannel-throughput.mjs).
    backchannel: () => runScript('backchannel-throughput.mjs', ['--postgres', args.postgres, '--json', file('backchannel'), ...(args['no-postgres'] ? ['--no-postgres'] : [])]),
    // Authorization-code exchanges and refreshes against node-oidc-provider (bench/oidc.mjs).
    oidc: () => runScript('oidc.mjs', ['--rounds', args['oidc-rounds'], '--seconds', args['oidc-seconds'], '--json', file('oidc')]),
    // Shared Signals: revocation → SET at push receivers and long polls (bench/ssf.mjs).
    ssf: () => runScript('ssf.mjs', ['--postgres', args.postgres, '--json', file('ssf'), ...(args['no-postgres'] ? ['--no-postgres'] : [])]),
  };
  const data = {};
  for (const name of selected) {
    const began = Date.now();
    console.error(`\n== ${name} ==`);
    await runs[name]();
    data[name] = JSON.parse(readFileSync(file(name), 'utf8'));
    console.error(`== ${name}: ${Math.round((Date.now() - began) / 1000)} s`);
  }
  const finishedAt = new Date();
  const [w, r, p, g, m] = BENCHMARKS.map((name) => data[name]);

  const commit = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no');
  const machine = [
    `- CPU: ${availableParallelism()} cores (\`nproc\`), ${cpus()[0]?.model ?? 'unknown model'}; memory ${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${type()} ${release()}`,
    `- Node.js ${process.version}; SQLite ${sqliteVersion()} (better-sqlite3); autocannon ${require('autocannon/package.json').version}${p ? `; jose ${p.versions.jose}, express-session ${p.versions['express-session']}, better-auth ${p.versions['better-auth']}` : ''}`,
    `- Date: ${startedAt.toISOString()} to ${finishedAt.toISOString()} (${Math.round((finishedAt - startedAt) / 1000)} s)`,
    `- Code: commit ${commit ?? 'unknown'}${dirty ? ' with uncommitted changes' : ''}`,
    `- Raw results: ${selected.map((name) => `\`${relative(root, file(name))}\``).join(', ')} (not committed)`,
  ];
  const mn = data['multi-node'] ? { result: data['multi-node'], ...(await import('./multi-node.mjs')) } : null;
  const sections = [w && whoamiSection(w), r && revokeSection(r), p && protectedRouteSection(p), g && propagationSection(g), m && memorySection(m), mn && mn.multiNodeSection(mn.result, 6), data.backchannel && backchannelSection(data.backchannel, 7), data.oidc && oidcSection(data.oidc, 8), data.ssf && ssfSection(data.ssf, 9)].filter(Boolean);
  const summary = [summaryRows(w, r, p, g, m), ...(mn ? mn.multiNodeSummaryRows(mn.result) : []), ...(data.backchannel ? backchannelSummaryRows(data.backchannel) : []), ...(data.oidc ? oidcSummaryRows(data.oidc) : []), ...(data.ssf ? ssfSummaryRows(data.ssf) : [])].join('\n');
  const doc = [
    '# Benchmarks',
    '',
    '<!-- Written by bench/run.mjs; run `npm run bench` to measure again and rewrite this file. -->',
    '',
    `The properties Tessera promises, measured on one machine in one run${partial ? ` (only ${selected.join(', ')})` : ''}. Benchmarks are not tests: \`npm test\` does not run them.`,
    '',
    'Command that produced the figures below (from the repository root; it installs and builds first if needed):',
    '',
    '```sh',
    commandLine(),
    '```',
    '',
    machine.join('\n'),
    '',
    '## Goals and results',
    '',
    summary,
    '',
    ...sections.flatMap((section) => [section, '']),
    caveats(w, r, p, g, m),
    ...(data.backchannel ? backchannelCaveats() : []),
    ...(data.oidc ? oidcCaveats() : []),
    ...(data.ssf ? ssfCaveats() : []),
    '',
  ].join('\n');
  const copy = join(results, `${stamp}-benchmarks.md`);
  writeFileSync(copy, doc);
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, doc);
    console.error(`\nwrote ${relative(root, out)}`);
    // The README quotes figures of this document; they follow it, never typed by hand.
    if (out === join(root, 'docs', 'benchmarks.md')) console.error(`README figures: ${JSON.stringify(syncBenchmarkFigures())}`);
  } else {
    console.error(`\nwrote ${relative(root, copy)} (a partial run leaves docs/benchmarks.md alone; pass --out to write elsewhere)`);
  }
  console.error(summary);
}

await main();
