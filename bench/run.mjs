// `npm run bench`: runs every benchmark, each in its own process, one after the other, keeps
// the raw results in bench/.results/ (not committed) and rewrites docs/benchmarks.md.
//
//   npm run bench [-- --rounds 5 --seconds 5 --connections 10 --sizes 10000,1000000
//                     --pg-sizes 10000,1000000 --users 200 --postgres URL --no-postgres --profile]
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
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);

const { values: args } = parseArgs({
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
    out: { type: 'string', default: join(root, 'docs', 'benchmarks.md') },
  },
});

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

function summaryTable(w, r) {
  const rows = [`| whoami req/s, Tessera ÷ bare \`node:http\` | ≥ ${w.goal} | ${w.ratio.toFixed(2)} | ${verdict(w.ratio >= w.goal)} |`];
  const parts = [['SQLite', r.sqlite]];
  if (r.postgres && !r.postgres.skipped) parts.push(['PostgreSQL', r.postgres]);
  for (const [label, part] of parts) {
    const small = part.rows[0].sessions;
    const large = part.rows[part.rows.length - 1].sessions;
    for (const path of ['store', 'core']) {
      rows.push(`| end a user's 10 sessions, ${label} (${path}), median at ${fmt(large)} ÷ at ${fmt(small)} | ≤ ${part.goal}× | ${part.ratios[path].median.toFixed(2)}× | ${verdict(part.ratios[path].median <= part.goal)} |`);
    }
  }
  return ['| benchmark | goal | measured | |', '|---|---|---:|---|', ...rows].join('\n');
}

function caveats(w, r) {
  const sizes = r.postgres && !r.postgres.skipped ? r.postgres.sizes : null;
  return [
    '## Caveats',
    '',
    `- The machine has ${availableParallelism()} cores and is shared with other work; the load average was ${loadavg().map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min) at the end of the run. Absolute figures move from run to run; only the ratios, measured side by side in one run with alternating rounds, are meant to be compared.`,
    '- whoami: the load generator (autocannon, in the benchmark process) and the server under test share those cores, so it caps both targets. Server CPU per request is read from `/proc/<pid>/stat` around each round and includes the kernel\'s share of the loopback TCP traffic; on this virtual machine a response written to a load generator that is waiting costs a cross-CPU wake-up, so a slower server also pays more per write, which widens the ratio beyond the difference in application work. On a machine where the load generator has its own cores, absolute figures are higher.',
    '- whoami runs on SQLite with one session; every request does its two primary-key reads (session by token id, user by id) and a SHA-256 of the token secret. The last-seen write happens at most once per `session.touchIntervalSeconds` (60 s), so at most once per round. autocannon records latencies in whole milliseconds, too coarse at these speeds, so the table gives the mean latency that follows from the throughput of a closed loop of that many connections.',
    `- Revocation: every timing is one call of a few hundred microseconds to a few milliseconds; the median is stable, the p95 is at the mercy of the machine (scheduling, SQLite WAL checkpoints, PostgreSQL background writes).${sizes ? ` PostgreSQL runs on the same machine (TCP to 127.0.0.1, the server's own settings), with ANALYZE after seeding, as autovacuum would do after a load of that size; sizes ${sizes.map((n) => fmt(n)).join(' and ')}.` : ''}`,
    '- The seeded stores carry no audit rows and one revocation-log entry per ended session; the audit table grows by one row per core-path call during the run. Seeding time is for the benchmark only (bulk load with indexes built at the end), not a figure of Tessera.',
    '- A small store fits in SQLite\'s page cache and in the CPU caches; a large one does not, so each call in the large store reads its pages from the operating system\'s cache and walks deeper B-trees: a cost that grows with the logarithm of the size plus the cache misses.',
    '- To see where time goes, add `--profile`: both whoami servers run under `node --cpu-prof` and write `.cpuprofile` files to `bench/.results/profiles/` (open them in Chrome DevTools).',
  ].join('\n');
}

async function main() {
  const results = join(here, '.results');
  mkdirSync(results, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const whoamiFile = join(results, `${stamp}-whoami.json`);
  const revokeFile = join(results, `${stamp}-revoke.json`);
  const startedAt = new Date();

  await runScript('whoami.mjs', ['--rounds', args.rounds, '--seconds', args.seconds, '--connections', args.connections, '--json', whoamiFile, ...(args.profile ? ['--profile'] : [])]);
  await runScript('revoke-scaling.mjs', ['--sizes', args.sizes, '--pg-sizes', args['pg-sizes'], '--users', args.users, '--postgres', args.postgres, '--json', revokeFile, ...(args['no-postgres'] ? ['--no-postgres'] : [])]);
  const whoami = JSON.parse(readFileSync(whoamiFile, 'utf8'));
  const revoke = JSON.parse(readFileSync(revokeFile, 'utf8'));
  const finishedAt = new Date();

  const commit = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no');
  const machine = [
    `- CPU: ${availableParallelism()} cores (\`nproc\`), ${cpus()[0]?.model ?? 'unknown model'}; memory ${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${type()} ${release()}`,
    `- Node.js ${process.version}; SQLite ${sqliteVersion()} (better-sqlite3); autocannon ${require('autocannon/package.json').version}`,
    `- Date: ${startedAt.toISOString()} to ${finishedAt.toISOString()} (${Math.round((finishedAt - startedAt) / 1000)} s)`,
    `- Code: commit ${commit ?? 'unknown'}${dirty ? ' with uncommitted changes' : ''}`,
    `- Raw results: \`${relative(root, whoamiFile)}\`, \`${relative(root, revokeFile)}\` (not committed)`,
  ];
  const doc = [
    '# Benchmarks',
    '',
    '<!-- Written by bench/run.mjs; run `npm run bench` to measure again and rewrite this file. -->',
    '',
    'Two properties Tessera promises, measured on one machine in one run. Benchmarks are not tests: `npm test` does not run them.',
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
    summaryTable(whoami, revoke),
    '',
    whoamiSection(whoami),
    '',
    revokeSection(revoke),
    '',
    caveats(whoami, revoke),
    '',
  ].join('\n');
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, doc);
  writeFileSync(join(results, `${stamp}-benchmarks.md`), doc);
  console.error(`\nwrote ${relative(root, args.out)}`);
  console.error(summaryTable(whoami, revoke));
}

await main();
