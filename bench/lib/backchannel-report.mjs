// The docs/benchmarks.md section and summary rows of bench/backchannel-throughput.mjs, kept
// next to the benchmark so that bench/run.mjs only has to call them.
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const verdict = (ok) => (ok ? 'met' : '**not met**');

/** The parts measured: [label, burst, rounds, median]. */
function parts(result) {
  const out = [];
  for (const [label, part] of [['SQLite', result.sqlite], ['PostgreSQL', result.postgres]]) {
    if (!part || part.skipped) continue;
    for (const [burst, median] of Object.entries(part.median)) out.push([label, burst, part.rounds.filter((r) => r.burst === burst), median]);
  }
  return out;
}

const burstLabel = (label, burst) => (label === 'SQLite' ? label : `${label}, ${burst === 'cold' ? 'first burst on new tables' : 'after ANALYZE'}`);

/**
 * Rows for the "Goals and results" table.
 *
 * @example
 * ```js
 * rows.push(...backchannelSummaryRows(JSON.parse(readFileSync(file, 'utf8'))));
 * ```
 */
export function backchannelSummaryRows(result) {
  const s = result.settings;
  return parts(result).map(([label, burst, , m]) => `| back-channel logouts delivered per second, ${fmt(s.sessions)} sessions × ${s.apps} apps ended at once (${burstLabel(label, burst)}) | ≥ ${fmt(s.goal)}/s | ${fmt(m.deliveriesPerSecond)}/s | ${verdict(m.deliveriesPerSecond >= s.goal)} |`);
}

/**
 * The section of docs/benchmarks.md.
 *
 * @example
 * ```js
 * sections.push(backchannelSection(result, 6));
 * ```
 */
export function backchannelSection(result, number) {
  const s = result.settings;
  const lines = [
    `## ${number}. Back-channel logout throughput: ${fmt(s.sessions)} sessions × ${s.apps} apps ended at once`,
    '',
    `A Tessera node (the built server, its own process, default \`outbox\` settings${Object.keys(s.config ?? {}).length ? ` except \`${JSON.stringify(s.config)}\`` : ''}) has ${s.apps} apps with a \`backchannel_logout_uri\`, each a \`node:http\` receiver in the benchmark process that verifies every logout token with jose against Tessera's JWKS (signature, \`typ: logout+jwt\`, \`iss\`, \`aud\`, \`iat\`, \`exp\`, \`jti\`, \`sid\`, the back-channel event, no \`nonce\`) and answers 204. ${fmt(s.sessions)} sessions are started by one app (\`POST /v1/sessions\`) and joined by the ${s.apps - 1} others (\`GET /v1/whoami\` with their client credentials), then all ended by one call, \`POST /admin/api/sessions/revoke\` with the ${fmt(s.sessions)} handles, which writes the ${fmt(s.sessions * s.apps)} outbox rows in the revoking transaction. Timed from the revoke response until the last of the ${fmt(s.sessions * s.apps)} tokens has arrived and been verified; every round also checks that each (session, app) arrived and that the admin API then shows every delivery \`delivered\`. ${s.rounds} rounds per store, each on a fresh node. On PostgreSQL each round makes two bursts on one fresh schema: the first on tables that have no planner statistics yet (a new deployment's first minute), then \`ANALYZE\` (what autovacuum does within a minute of such a load) and a second burst of ${fmt(s.sessions)} new sessions.`,
    '',
    '| store | burst | median deliveries/s | median time to deliver all | median revoke call | Tessera CPU per delivery |',
    '|---|---|---:|---:|---:|---:|',
    ...parts(result).map(([label, burst, , m]) => `| ${label} | ${label === 'SQLite' ? '—' : burst === 'cold' ? 'first, new tables' : 'second, after ANALYZE'} | **${fmt(m.deliveriesPerSecond)}** | ${fmt(m.deliverSeconds, 2)} s | ${fmt(m.revokeMs)} ms | ${m.tesseraCpuMicrosPerDelivery === null ? 'n/a' : `${fmt(m.tesseraCpuMicrosPerDelivery)} µs`} |`),
    '',
    `Goal ≥ ${fmt(s.goal)} deliveries/s: ${parts(result).map(([label, burst, , m]) => `${burstLabel(label, burst)} ${verdict(m.deliveriesPerSecond >= s.goal)}`).join('; ')}.`,
  ];
  if (result.machine) lines.push('', `Load average at the end of this benchmark: ${result.machine.loadavg.map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min) on ${result.machine.cores} cores; deliveries per second fall with the load, the CPU per delivery much less.`);
  if (result.postgres?.skipped) lines.push('', `PostgreSQL was not measured: ${result.postgres.skipped}`);
  else if (!result.postgres) lines.push('', 'PostgreSQL was not measured in this run (`--no-postgres`).');
  lines.push(
    '',
    '<details><summary>Every round</summary>',
    '',
    '| store | round | burst | deliveries/s | time to deliver all | revoke call | arrivals (duplicates) | Tessera CPU per delivery | seeding |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|',
    ...parts(result).flatMap(([label, , rounds]) => rounds.map((r) => `| ${label} | ${r.round} | ${r.burst} | ${fmt(r.deliveriesPerSecond)} | ${fmt(r.deliverSeconds, 2)} s | ${fmt(r.revokeMs)} ms | ${fmt(r.arrivals)} (${r.duplicates}) | ${r.tesseraCpuMicrosPerDelivery === null ? 'n/a' : `${fmt(r.tesseraCpuMicrosPerDelivery)} µs`} | ${fmt(r.seedSeconds, 1)} s |`)),
    '',
    '</details>',
    '',
    'Where a delivery\'s time goes, from CPU profiles of the Tessera node taken when this section was written (`node bench/backchannel-throughput.mjs --profile` writes them to `bench/.results/profiles/`): on SQLite, signing the logout token (Ed25519 through WebCrypto, which jose uses) and the claim statement take about a fifth of the node\'s CPU each, writing the requests to the apps\' sockets about a tenth; recording outcomes and the rest of the HTTP work share the remainder. On PostgreSQL the node waits for the database about a third of the time (every claim and outcome is a round trip and a commit, and the server shares the two cores); of the rest, sending the statements (a socket write each) takes about 30 % and signing about 15 %. What the first measurements showed, and what was changed, is in the caveats below.',
  );
  return lines.join('\n');
}

/** Caveat lines for the section. */
export function backchannelCaveats() {
  return [
    '- Back-channel throughput: the Tessera node, the five receivers (in the benchmark process, verifying every token) and, for PostgreSQL, the database server share the two cores; the receivers\' verification is as much work as the signing. Time starts when the revoke call has answered; the revoke call itself (1,000 sessions ended, 5,000 outbox rows written, one transaction) is listed apart. The figures are for one node; several nodes claim from the same outbox without waiting on each other (`FOR UPDATE SKIP LOCKED` on PostgreSQL).',
    '- The first measurement of this benchmark gave 586 deliveries/s on SQLite at about 1,450 µs of Tessera CPU per delivery; profiles showed the claim query taking half of it. What changed since: on SQLite the claim walks the partial index of due deliveries (`INDEXED BY`; without statistics SQLite sorted the whole pending backlog on every claim); migration 4 indexes `delivery_sessions (delivery_id)` (every claim read that table, which keeps every delivery ever made, in full); the worker no longer claims after a completion whose app is still at its limit (such a claim can only look for other apps\' work and scans the whole backlog of the apps at their limit to find none), tops each app up with a claim of its own (other apps excluded), so no app exceeds `outbox.concurrencyPerApp` (it could reach twice that) and a claim takes every slot the app freed, and lets the completions of one I/O turn share a claim; it sends with `node:http` and keep-alive instead of `fetch`, whose stream machinery cost as much CPU as the rest of a delivery; it reads an app\'s settings at most once a second instead of once per attempt; and on PostgreSQL, recording an outcome no longer lets the planner pick the partial index of pending deliveries, which it did with statistics from a quiet moment, walking a whole burst\'s backlog on every completion (the second burst ran at about 680/s before). The first PostgreSQL burst on new tables is slower than the second because without statistics the planner scans and sorts every due delivery on each claim; once the table has statistics (autovacuum, or any earlier traffic) the claim is an ordered index scan.',
  ];
}
