// The docs/benchmarks.md section and summary rows of bench/ssf.mjs, kept next to the benchmark
// so that bench/run.mjs only has to call them.
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const cpu = (ms) => (typeof ms === 'number' ? `${fmt(ms, 2)} ms` : 'n/a');
const verdict = (ok) => (ok ? 'met' : '**not met**');

const stores = (result) => [['SQLite', result.sqlite], ['PostgreSQL', result.postgres]].filter(([, part]) => part && !part.skipped);

/** Rows for the "Goals and results" table. */
export function ssfSummaryRows(result) {
  const rows = [];
  for (const [label, part] of stores(result)) {
    const ten = part.push.find((p) => p.streams === 10);
    if (ten) {
      rows.push(`| SSF push: revocation → SET at 10 push receivers, p99 at ${fmt(ten.steady.targetRate)} revocations/s (${label}; p50 ${fmt(ten.steady.p50Ms, 1)} ms, achieved ${fmt(ten.steady.achievedRate, 1)}/s) | ≤ 50 ms | ${fmt(ten.steady.p99Ms, 1)} ms | ${verdict(ten.steady.p99Ms <= 50 && ten.steady.achievedRate >= ten.steady.targetRate * 0.95)} |`);
      if (label === 'SQLite') rows.push(`| SSF push: SETs per second, ${fmt(ten.burst.sessions)} sessions ended at once × 10 streams (SQLite) | ≥ 2,000/s | ${fmt(ten.burst.setsPerSecond)}/s | ${verdict(ten.burst.setsPerSecond >= 2000)} |`);
    }
  }
  return rows;
}

/** The section of docs/benchmarks.md. */
export function ssfSection(result, number) {
  const lines = [
    `## ${number}. Shared Signals: from a revocation to the SET at its receivers`,
    '',
    `Tessera (the built server in a process of its own, log level \`warn\`) on SQLite and on PostgreSQL (a schema of its own). Receivers are \`node:http\` servers in the benchmark process, one per 10 streams, answering \`202\` and noting when each SET arrived (they decode it; they do not verify the signature, so their cost is not counted as Tessera's). **Push latency**: sessions of distinct users are ended one by one through the admin API (\`DELETE /admin/api/sessions/:handle\`) at a steady rate — ${fmt(result.rate)} revocations a second with 10 streams, a tenth of that with 100, so the SET rate is the same — for ${result.seconds} s, not waiting for one to finish before the next; the latency of each (revocation, stream) pair runs from just before the revoking request is sent (an upper bound of its commit) to the SET's arrival. **Throughput**: ${fmt(result.burst)} sessions (with 10 streams; a tenth with 100) ended by one call (\`POST /admin/api/sessions/revoke\`), SETs per second from the call to the last arrival. **Long poll**: as many poll streams as push streams (10, then 100), each with a poll waiting; one revocation at a time; from just before the revoking request to each poll's answer.`,
    '',
    '| store | streams | revocations/s (target → achieved) | SETs | p50 | p99 | max | server CPU per SET | burst SETs/s | burst server CPU per SET |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [label, part] of stores(result)) {
    for (const p of part.push) lines.push(`| ${label} | ${p.streams} | ${fmt(p.steady.targetRate, 1)} → ${fmt(p.steady.achievedRate, 1)} | ${fmt(p.steady.sets)} | ${fmt(p.steady.p50Ms, 1)} ms | ${fmt(p.steady.p99Ms, 1)} ms | ${fmt(p.steady.maxMs, 1)} ms | ${cpu(p.steady.serverCpuMsPerSet)} | ${fmt(p.burst.setsPerSecond)} (${fmt(p.burst.sets)} in ${fmt(p.burst.seconds, 2)} s) | ${cpu(p.burst.serverCpuMsPerSet)} |`);
  }
  lines.push('', '| store | long poll: streams | answers | p50 | p99 | max |', '|---|---:|---:|---:|---:|---:|');
  for (const [label, part] of stores(result)) for (const poll of part.poll) lines.push(`| ${label} | ${poll.streams} | ${fmt(poll.n)} | ${fmt(poll.p50Ms, 1)} ms | ${fmt(poll.p99Ms, 1)} ms | ${fmt(poll.maxMs, 1)} ms |`);
  for (const [label, part] of [['SQLite', result.sqlite], ['PostgreSQL', result.postgres]]) if (part?.skipped) lines.push('', `${label}: ${part.skipped}`);
  lines.push(
    '',
    '"Server CPU per SET" is the Tessera process\'s CPU time (user + system, all its threads, the signing thread pool included, from `/proc/<pid>/stat`) over the phase, divided by the SETs that arrived; in the steady phase it includes the revoking requests themselves (one admin call and one transaction per revocation, which plans the SET of every stream).',
    '',
    `Goals: p99 at most 50 ms at 100 revocations a second with 10 push streams; at least 2,000 SETs a second on SQLite. Load average at the end: ${result.machine.loadavg.map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min) on ${result.machine.cores} cores.`,
    '',
    'For comparison, what others publish: Keycloak\'s experimental SSF transmitter pushes from a drainer that runs every 30 seconds (and does not honour long polling); Microsoft documents that continuous access evaluation events may take up to 15 minutes to take effect. Neither was measured here.',
  );
  return lines.join('\n');
}

/** Caveat lines for the section. */
export function ssfCaveats() {
  return ['- SSF: every SET is signed RS256 (2048-bit, as the CAEP Interoperability Profile requires) for each stream, about 0.25 ms of CPU each on this machine, in the thread pool of libuv (`crypto.sign` with a callback, so the event loop does not wait for it); the receivers share the two cores with Tessera and the load generator.'];
}
