// The SET push claim and the expiry sweep beside a held backlog: SETs that no push may take yet,
// those of a paused push stream and of a poll stream nobody has polled for a while.
//
//   node bench/ssf-held.mjs [--held 50000 --postgres URL --no-postgres --no-sqlite
//                            --store DIR --json FILE.json]
//   (DIR: the built store package to measure, default packages/store/dist; a worktree's, to
//    compare with an earlier version in the same run)
//
// Why: a pause holds a stream's SETs, and a poll stream keeps its SETs until they are
// acknowledged, both up to the horizon (7 days by default). Until migration 13 every pending
// SET sat in the index the push claim walks, so one receiver that paused or stopped polling
// made every claim of every other stream read its whole backlog, and the expiry pass read it
// too, every second.
//
// What it does, per store, on a new SQLite file and a PostgreSQL schema of its own: migrate,
// one paused push stream, one poll stream and one enabled push stream; `--held` SETs (half on
// each of the first two, distinct subjects); ANALYZE on PostgreSQL. Then, 9 times each, timed:
// a claim of the enabled stream's one new SET (enqueue one, claim, record it delivered: the
// push worker's cycle, as at each revocation), and an expiry pass with nothing past its horizon;
// then 9 release passes (releaseHeldSsfEvents, with nothing to release; stores before migration 13
// have none). Medians are printed; the same with no held SETs as the baseline.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { postgresSchema, postgresSettings } from './lib/postgres-schema.mjs';
import { pushStream } from './lib/ssf-streams.mjs';
import { median, round } from './lib/stats.mjs';

const { values: args } = parseBenchArgs(import.meta.url, {
  options: {
    held: { type: 'string', default: '50000' },
    postgres: { type: 'string', default: process.env.TESSERA_BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test' },
    'no-postgres': { type: 'boolean', default: false },
    'no-sqlite': { type: 'boolean', default: false },
    store: { type: 'string', default: new URL('../packages/store/dist', import.meta.url).pathname },
    json: { type: 'string' },
  },
});
const { createPostgresDriver, createSqliteDriver, createSqlStore } = await import(pathToFileURL(join(resolve(args.store), 'index.js')).href);
const log = (line) => process.stderr.write(`[ssf-held] ${line}\n`);
const ROUNDS = 9;

async function measure(kind, held) {
  const schema = kind === 'postgres' ? await postgresSchema(args.postgres, 'bench_ssfheld') : null;
  const dir = kind === 'sqlite' ? mkdtempSync(join(tmpdir(), 'tessera-bench-held-')) : null;
  const driver = schema ? createPostgresDriver(schema.url, { max: 1 }) : createSqliteDriver(join(dir, 'tessera.db'));
  const store = createSqlStore(driver);
  try {
    await store.migrate();
    const at = Date.now();
    await store.createSsfStream(pushStream('st_paused', at, { status: 'paused' }));
    await store.createSsfStream(pushStream('st_poll', at, { deliveryMethod: 'poll', endpointUrl: 'https://tessera.example.test/ssf/poll/st_poll' }));
    await store.createSsfStream(pushStream('st_live', at));
    for (let i = 0; i < held; i += 1000) {
      const events = [];
      for (let j = i; j < Math.min(held, i + 1000); j += 1) {
        // A SET's claims are a few hundred bytes, as in a real session-revoked.
        events.push({ streamId: j % 2 === 0 ? 'st_paused' : 'st_poll', jti: `held_${j}`, subjectKey: `user:u${j}`, eventType: 'x', claims: { pad: 'x'.repeat(300) }, createdAt: at, horizonAt: at + 3_600_000 });
      }
      await store.enqueueSsfEvents(events);
    }
    if (schema) await schema.run(`ANALYZE ${schema.name}.ssf_events`);
    const claims = [];
    const expiries = [];
    for (let i = 0; i < ROUNDS; i += 1) {
      const now = Date.now();
      let started = performance.now();
      await store.enqueueSsfEvents([{ streamId: 'st_live', jti: `live_${i}`, subjectKey: `user:live${i}`, eventType: 'x', claims: {}, createdAt: now, horizonAt: now + 3_600_000 }]);
      const claimed = await store.claimSsfPushEvents('bench', now, now + 60_000, 256);
      if (claimed.length !== 1 || claimed[0].streamId !== 'st_live') throw new Error(`the claim took ${claimed.length} SETs, not the live stream's one`);
      await store.deliverSsfEvents([claimed[0].id], 'bench', now, 202);
      claims.push(performance.now() - started);
      started = performance.now();
      const expired = await store.expireSsfEvents(Date.now(), 1000);
      if (expired !== 0) throw new Error(`the expiry ended ${expired} SETs`);
      expiries.push(performance.now() - started);
    }
    // The pass that releases held SETs of enabled streams (migration 13's; not in earlier stores).
    const releases = [];
    for (let i = 0; store.releaseHeldSsfEvents && i < ROUNDS; i += 1) {
      const started = performance.now();
      const released = await store.releaseHeldSsfEvents(1000);
      if (released !== 0) throw new Error(`the release pass let ${released} SETs go`);
      releases.push(performance.now() - started);
    }
    return { store: kind, held, cycleMedianMs: round(median(claims)), expiryMedianMs: round(median(expiries)), releaseMedianMs: releases.length > 0 ? round(median(releases)) : null };
  } finally {
    await driver.close();
    await schema?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [];
const kinds = [...(args['no-sqlite'] ? [] : ['sqlite']), ...(args['no-postgres'] ? [] : ['postgres'])];
const settings = kinds.includes('postgres') ? await postgresSettings(args.postgres) : null;
for (const kind of kinds) {
  for (const held of [0, Number(args.held)]) {
    const row = await measure(kind, held);
    log(`${kind}, ${held} held: enqueue + claim + record of one live SET p50 ${row.cycleMedianMs} ms; expiry pass p50 ${row.expiryMedianMs} ms${row.releaseMedianMs === null ? '' : `; release pass p50 ${row.releaseMedianMs} ms`}`);
    rows.push(row);
  }
}
const result = { store: args.store, rounds: ROUNDS, settings, rows, at: new Date().toISOString() };
if (args.json) writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
