// The SET push claim on PostgreSQL under a backlog, with statistics taken before the backlog.
//
//   node bench/ssf-claim-plan.mjs [--postgres URL --history 20000 --backlog 2000,20000 --limit 64
//                                  --pending-at-analyze 0]
//
// Why: a five-minute run of bench/ssf.mjs with autovacuum on (2026-12-06) fell behind and never
// caught up: the claim's plan read every pending SET of each stream and sorted them, so its cost
// grew with the backlog (535 ms per claim at 70,000 pending) and the push rate fell below the
// revocation rate. Autoanalyze had run while pending rows were few, and with statistics that say
// so every plan looks cheap and the planner picks one that does not stop after `limit` rows.
//
// What it does, per backlog size, on a schema of its own: migrate, 10 push streams, `--history`
// SETs delivered, ANALYZE (a quiet moment: `--pending-at-analyze` pending, none by default, as
// at 100 revocations a second most instants have none or a few), then `--backlog` pending SETs
// (distinct subjects, spread over the streams). Then the store's own claim
// (claimSsfPushEvents, as the push worker calls it) five times, each timed, and once more under
// EXPLAIN (ANALYZE, BUFFERS) in the same message the store sends (its SET LOCALs included),
// rolled back. The same again after a fresh ANALYZE (statistics that know the backlog), side by
// side. A claim that stops after `limit` rows reads about `limit` index entries whatever the
// backlog; one that reads the backlog grows with it.
import pg from 'pg';
import { parseBenchArgs } from './lib/args.mjs';
import { createPostgresDriver, createSqlStore, withDefaultUser } from '../packages/store/dist/index.js';
import { postgresSchema, postgresSettings } from './lib/postgres-schema.mjs';
import { pushStream } from './lib/ssf-streams.mjs';

const { values: args } = parseBenchArgs(import.meta.url, {
  options: {
    postgres: { type: 'string', default: process.env.TESSERA_BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test' },
    history: { type: 'string', default: '20000' },
    backlog: { type: 'string', default: '2000,20000' },
    limit: { type: 'string', default: '64' },
    'pending-at-analyze': { type: 'string', default: '0' },
  },
});
const HISTORY = Number(args.history);
const LIMIT = Number(args.limit);
const STREAMS = 10;
const log = (line) => process.stderr.write(`[ssf-claim-plan] ${line}\n`);

/** The texts pg sends while `fn` runs (pg.Client.prototype.query spied on, as the store tests do). */
async function sentWhile(fn) {
  const sent = [];
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (...a) {
    sent.push(typeof a[0] === 'string' ? a[0] : a[0]?.text ?? '');
    return original.apply(this, a);
  };
  try {
    return { result: await fn(), sent };
  } finally {
    pg.Client.prototype.query = original;
  }
}

/** Rows read from ssf_events by the plan's scans (actual rows × loops, filtered rows included), and its node types. */
function planSummary(plan) {
  let read = 0;
  const nodes = new Set();
  const walk = (node) => {
    nodes.add(node['Index Name'] ? `${node['Node Type']} (${node['Index Name']})` : node['Node Type']);
    if (node['Relation Name'] === 'ssf_events') read += ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0)) * (node['Actual Loops'] ?? 1);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan.Plan);
  return { rowsRead: read, executionMs: Math.round(plan['Execution Time'] * 10) / 10, sorts: [...nodes].some((n) => n.startsWith('Sort')), nodes: [...nodes] };
}

async function measure(backlog, statistics) {
  const schema = await postgresSchema(args.postgres, 'bench_ssfplan');
  const driver = createPostgresDriver(schema.url, { max: 1 });
  const store = createSqlStore(driver);
  try {
    await store.migrate();
    const at = Date.now();
    for (let s = 0; s < STREAMS; s += 1) {
      await store.createSsfStream(pushStream(`st_${s}`, at));
    }
    let n = 0;
    const enqueue = async (count) => {
      for (let i = 0; i < count; i += 1000) {
        const events = [];
        for (let j = i; j < Math.min(count, i + 1000); j += 1) {
          n += 1;
          // A SET's claims are a few hundred bytes, as in a real session-revoked.
          events.push({ streamId: `st_${n % STREAMS}`, jti: `jti_${n}`, subjectKey: `user:u${n}`, eventType: 'x', claims: { pad: 'x'.repeat(300) }, createdAt: at, horizonAt: at + 3_600_000 });
        }
        await store.enqueueSsfEvents(events);
      }
    };
    await enqueue(HISTORY);
    await schema.run(`UPDATE ${schema.name}.ssf_events SET status = 'delivered', delivered_at = ${at}`);
    // VACUUM too: what autovacuum leaves behind in a real run, so dead rows are not what is measured.
    await schema.run(`VACUUM ${schema.name}.ssf_events`);
    await enqueue(Number(args['pending-at-analyze']));
    await schema.run(`ANALYZE ${schema.name}.ssf_events`);
    await enqueue(backlog);
    if (statistics === 'fresh') await schema.run(`ANALYZE ${schema.name}.ssf_events`);
    // One claim to pass over index entries once (the first visit of any entry costs more).
    await store.claimSsfPushEvents('warm', Date.now(), Date.now() + 600_000, LIMIT);
    const times = [];
    let statement;
    for (let i = 0; i < 5; i += 1) {
      const started = performance.now();
      const { sent } = await sentWhile(() => store.claimSsfPushEvents(`w${i}`, Date.now(), Date.now() + 600_000, LIMIT));
      times.push(performance.now() - started);
      statement ??= sent.find((text) => text.includes('UPDATE ssf_events SET lease_owner'));
    }
    const explain = `SET search_path = ${schema.name};\n${statement
      .replace('UPDATE ssf_events SET lease_owner', 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) UPDATE ssf_events SET lease_owner')
      .replace(/COMMIT$/, 'ROLLBACK')}`;
    const client = new pg.Client({ connectionString: withDefaultUser(schema.url) });
    await client.connect();
    let plan;
    try {
      const results = await client.query(explain);
      plan = results.find((r) => r.rows?.[0]?.['QUERY PLAN'])?.rows[0]['QUERY PLAN'][0];
    } finally {
      await client.end();
    }
    times.sort((a, b) => a - b);
    return { backlog, statistics, claimMedianMs: Math.round(times[2] * 10) / 10, ...planSummary(plan) };
  } finally {
    await driver.close();
    await schema.drop();
  }
}

const settings = await postgresSettings(args.postgres);
log(`settings: ${Object.entries(settings).map(([k, v]) => `${k} ${v}`).join(', ')}`);
const rows = [];
for (const backlog of args.backlog.split(',').map(Number)) {
  for (const statistics of ['before the backlog', 'fresh']) {
    const row = await measure(backlog, statistics);
    log(`backlog ${backlog}, statistics ${statistics}: claim of ${LIMIT} p50 ${row.claimMedianMs} ms; plan reads ${row.rowsRead} rows of ssf_events${row.sorts ? ', sorts' : ''} (${row.executionMs} ms): ${row.nodes.join(', ')}`);
    rows.push(row);
  }
}
console.log(JSON.stringify({ history: HISTORY, limit: LIMIT, streams: STREAMS, settings, rows, at: new Date().toISOString() }, null, 2));
