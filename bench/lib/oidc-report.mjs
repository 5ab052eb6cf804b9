// The docs/benchmarks.md section and summary rows of bench/oidc.mjs, kept next to the
// benchmark so that bench/run.mjs only has to call them.
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const verdict = (ok) => (ok ? 'met' : '**not met**');
const KINDS = [
  ['exchange', 'full authorization-code exchange (authorize with a session → code → token)'],
  ['refresh', 'token endpoint, grant_type=refresh_token'],
];

/**
 * Rows for the "Goals and results" table.
 *
 * @example
 * ```js
 * rows.push(...oidcSummaryRows(JSON.parse(readFileSync(file, 'utf8'))));
 * ```
 */
export function oidcSummaryRows(result) {
  return KINDS.map(([kind, label]) => `| OIDC ${label} per second, Tessera ÷ node-oidc-provider ${result.versions['oidc-provider']} | ≥ 1 | ${result[`${kind}Ratio`].toFixed(2)} | ${verdict(result[`${kind}Ratio`] >= 1)} |`);
}

/**
 * The section of docs/benchmarks.md.
 *
 * @example
 * ```js
 * sections.push(oidcSection(result, 8));
 * ```
 */
export function oidcSection(result, number) {
  const cpu = (v) => (v === null || v === undefined ? '–' : fmt(v, 2));
  const rows = (kind) => result[kind].map((r) => `| ${kind} | ${r.round} | ${r.provider} | ${fmt(r.perSecond, 1)} | ${cpu(r.cpuMsPerCall)} | ${r.errors} |`);
  return [
    `## ${number}. OpenID Connect: Tessera against node-oidc-provider ${result.versions['oidc-provider']}`,
    '',
    `Both providers run in processes of their own on SQLite (Tessera, the built server, log level \`warn\`) and in memory (node-oidc-provider in its default configuration: its in-memory adapter, development keys (RS256) and development interactions; one confidential client registered). The benchmark process is the relying party, with ${result.connections} concurrent workers and \`fetch\`. A browser session is made once per provider through its own sign-in (Tessera's hosted login page; node-oidc-provider's development login and consent). **Exchange**: \`GET\` the authorization endpoint with the session cookie (\`scope=openid\`, PKCE S256, state, nonce), read the code from the 303, \`POST\` it to the token endpoint with \`client_secret_basic\` and the verifier; both answer with an access token, an ID token (RS256) and a refresh token. **Refresh**: \`POST\` the token endpoint with \`grant_type=refresh_token\`. ${result.rounds} rounds of ${result.seconds} s per provider and kind, alternating the providers, after a warm-up of 50 exchanges each (and of 100 refreshes each before the refresh rounds).`,
    '',
    '| kind | Tessera median/s | node-oidc-provider median/s | ratio | Tessera CPU ms/call | node-oidc-provider CPU ms/call | CPU ratio |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...KINDS.map(([kind]) => {
      const c = result[`${kind}CpuMsPerCall`] ?? {};
      const ratio = result[`${kind}CpuRatio`];
      return `| ${kind} | ${fmt(result[`${kind}Median`].tessera, 1)} | ${fmt(result[`${kind}Median`].nodeOidcProvider, 1)} | **${result[`${kind}Ratio`].toFixed(2)}** | ${cpu(c.tessera)} | ${cpu(c.nodeOidcProvider)} | ${ratio === null || ratio === undefined ? '–' : `**${ratio.toFixed(2)}**`} |`;
    }),
    '',
    'ratio: Tessera ÷ node-oidc-provider in calls per second (medians of the rounds). CPU ms/call: the provider process\'s CPU time (user + system, `/proc/<pid>/stat`) over a round divided by the calls it completed, median of the rounds; CPU ratio: node-oidc-provider ÷ Tessera, so above 1 when a call costs Tessera less. On a loaded machine the CPU per call moves much less than the rate, which follows how many cores the provider got in its rounds.',
    '',
    `Goal: Tessera at least as fast as node-oidc-provider on both (ratio ≥ 1): exchange ${verdict(result.exchangeRatio >= 1)}, refresh ${verdict(result.refreshRatio >= 1)}. Load average ${result.machine.loadavgAtStart ? `at the start: ${result.machine.loadavgAtStart.map((l) => l.toFixed(2)).join(' / ')}, at the end: ` : 'at the end: '}${result.machine.loadavg.map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min) on ${result.machine.cores} cores.`,
    '',
    'The two do not do the same work for these calls. Tessera writes the code, spends it, joins the client to the session and writes a new refresh token on every exchange; on every refresh it spends the token and writes its successor (rotation with theft detection), all in SQLite on disk, and reads the session on each. node-oidc-provider keeps everything in memory in its default configuration (a production deployment replaces the adapter with a database), and by default does not rotate a confidential client\'s refresh tokens until 70 % of their lifetime has passed, so a refresh writes no new token; it issues refresh tokens only for `offline_access`, which it grants only with `prompt=consent`, so the refresh measurement spends the one token of an interactive sign-in from every worker, made again before each round (its in-memory adapter is an LRU of 1,000 entries, which the exchange rounds overflow: an untouched refresh token from before them is gone).',
    '',
    '<details><summary>Every round</summary>',
    '',
    '| kind | round | provider | per second | CPU ms/call | errors |',
    '|---|---:|---|---:|---:|---:|',
    ...rows('exchange'),
    ...rows('refresh'),
    '',
    '</details>',
  ].join('\n');
}

/** Caveat lines for the section. */
export function oidcCaveats() {
  return ['- OIDC: the relying party (the benchmark process) does little per call (no ID token validation), but it shares the two cores with both providers; node-oidc-provider warns that Node.js 20 is an unsupported runtime for it (it asks for Node.js 22), and runs.'];
}
