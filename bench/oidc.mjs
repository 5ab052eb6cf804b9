// OIDC benchmark: Tessera's OpenID Provider against node-oidc-provider (default
// configuration) on the same machine in the same run.
//
//   node bench/oidc.mjs [--rounds 3 --seconds 5 --connections 8 --json FILE.json]
//
// Two measurements, each alternating the two providers round by round:
// - exchange: a full authorization-code exchange with an existing browser session —
//   GET authorize (with the session cookie, PKCE S256) → 303 with the code → POST token
//   (client_secret_basic) → tokens; completed exchanges per second;
// - refresh: POST token with grant_type=refresh_token, each worker spending the refresh
//   token it got last (rotation); completed refreshes per second.
// The session is made once per provider through its own login (Tessera's hosted page;
// node-oidc-provider's development interactions). Each server runs in its own process.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { cpuSeconds, startChild, stopChild } from './lib/children.mjs';
import { startTessera } from './lib/tessera.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseBenchArgs(import.meta.url, { options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '8' }, json: { type: 'string' } } });
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);
const connections = Number(args.connections);
const log = (line) => process.stderr.write(`[oidc] ${line}\n`);

const REDIRECT = 'https://rp.bench.example/cb';
const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');

/** A cookie jar per origin, enough for both providers' cookies. */
function jar() {
  const cookies = new Map();
  return {
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
    take(headers) {
      for (const line of headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) cookies.delete(name);
        else cookies.set(name, value);
      }
    },
  };
}

async function hop(cookies, url, { method = 'GET', form } = {}) {
  const response = await fetch(url, {
    method,
    redirect: 'manual',
    headers: { cookie: cookies.header(), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    ...(form ? { body: new URLSearchParams(form).toString() } : {}),
  });
  cookies.take(response.headers);
  const location = response.headers.get('location');
  return { status: response.status, location: location ? new URL(location, url).toString() : null, body: await response.text() };
}

/** Follows same-origin redirects until one leaves the provider or a page is answered. */
async function follow(cookies, url, origin, options) {
  let current = await hop(cookies, url, options);
  let at = url;
  for (let i = 0; i < 10 && current.location && new URL(current.location).origin === origin; i++) {
    at = current.location;
    current = await hop(cookies, at);
  }
  return { ...current, at };
}

const codeOf = (location) => {
  const code = location && location.startsWith(REDIRECT) ? new URL(location).searchParams.get('code') : null;
  if (!code) throw new Error(`no code in ${location}`);
  return code;
};

/** One provider under test: its URLs, client, signed-in cookie jar and scope. */
async function prepareTessera() {
  const tessera = await startTessera();
  await tessera.admin('POST', '/users', { username: 'bench', password: 'bench-password-1' }, 201);
  const created = await tessera.admin('POST', '/apps', { name: 'bench-rp', trusted: true, redirect_uris: [REDIRECT] }, 201);
  const cookies = jar();
  const login = await hop(cookies, `${tessera.url}/login`);
  const csrf = /name="csrf" value="([^"]+)"/.exec(login.body)[1];
  await hop(cookies, `${tessera.url}/login`, { method: 'POST', form: { username: 'bench', password: 'bench-password-1', csrf } });
  return {
    name: 'tessera',
    child: tessera.child,
    stop: () => tessera.stop(),
    cookies,
    clientId: created.app.client_id,
    clientSecret: created.client_secret,
    authorize: `${tessera.url}/oidc/authorize`,
    token: `${tessera.url}/oidc/token`,
    scope: 'openid',
  };
}

async function prepareNodeOidcProvider() {
  const clientId = 'bench-rp';
  const clientSecret = randomBytes(24).toString('base64url');
  const { child, url } = await startChild(join(here, 'servers', 'oidc-provider.mjs'), { env: { ...process.env, NODE_ENV: 'production' }, message: { clientId, clientSecret, redirectUri: REDIRECT } });
  const cookies = jar();
  const provider = {
    name: 'node-oidc-provider',
    child,
    stop: () => stopChild(child),
    cookies,
    clientId,
    clientSecret,
    authorize: `${url}/auth`,
    token: `${url}/token`,
    scope: 'openid offline_access',
    refreshToken: null,
    // A refresh token through an interactive sign-in and consent; see the refresh measurement.
    freshRefreshToken: () => interactiveRefreshToken(provider, url),
  };
  provider.refreshToken = await provider.freshRefreshToken();
  return provider;
}

/**
 * Signs in and consents through node-oidc-provider's development interactions (any login);
 * offline_access (with prompt=consent, as node-oidc-provider requires) so that a refresh
 * token is issued, redeemed at once while its code is fresh. Called again before each
 * refresh round: the default in-memory adapter is an LRU of 1,000 entries, and the codes and
 * tokens of the exchange rounds push an untouched refresh token (and its grant) out of it.
 */
async function interactiveRefreshToken(provider, url) {
  const start = `${url}/auth?${new URLSearchParams({ client_id: provider.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid offline_access', prompt: 'consent', code_challenge: challenge, code_challenge_method: 'S256', state: 's' })}`;
  let page = await follow(provider.cookies, start, url);
  for (let i = 0; i < 4 && page.status === 200; i++) {
    const prompt = /name="prompt" value="(\w+)"/.exec(page.body)?.[1];
    const action = /<form[^>]*action="([^"]+)"/.exec(page.body)?.[1];
    if (!prompt || !action) throw new Error(`node-oidc-provider: unexpected page at ${page.at}`);
    page = await follow(provider.cookies, new URL(action, url).toString(), url, { method: 'POST', form: prompt === 'login' ? { prompt, login: 'bench', password: 'x' } : { prompt } });
  }
  const code = codeOf(page.location);
  return (await tokenCall(provider, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier })).refresh_token;
}

const basic = (p) => `Basic ${Buffer.from(`${encodeURIComponent(p.clientId)}:${encodeURIComponent(p.clientSecret)}`).toString('base64')}`;

async function tokenCall(p, form) {
  const response = await fetch(p.token, { method: 'POST', headers: { authorization: basic(p), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`${p.name} token: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

/** authorize (existing session) → code → token. */
async function exchange(p) {
  const url = `${p.authorize}?${new URLSearchParams({ client_id: p.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: p.scope, code_challenge: challenge, code_challenge_method: 'S256', state: 's', nonce: 'n' })}`;
  const response = await fetch(url, { redirect: 'manual', headers: { cookie: p.cookies.header() } });
  await response.arrayBuffer();
  const code = codeOf(response.headers.get('location') && new URL(response.headers.get('location'), url).toString());
  return tokenCall(p, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
}

/**
 * Runs `connections` workers for `seconds`; returns completions per second, errors, and the
 * provider process's CPU time per completed call (user + system, from /proc: what the call
 * costs the server, much less sensitive than throughput to what else loads the machine).
 */
async function measure(work, pid) {
  const cpuBefore = cpuSeconds(pid);
  const until = performance.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  let firstError = null;
  await Promise.all(Array.from({ length: connections }, async (_, i) => {
    while (performance.now() < until) {
      try {
        await work(i);
        done += 1;
      } catch (error) {
        errors += 1;
        firstError ??= error.message;
      }
    }
  }));
  const cpuAfter = cpuSeconds(pid);
  const cpuMsPerCall = cpuBefore === null || cpuAfter === null || done === 0 ? null : ((cpuAfter - cpuBefore) * 1000) / done;
  return { perSecond: done / seconds, errors, firstError, cpuMsPerCall };
}

const loadavgAtStart = loadavg();
const providers = [await prepareTessera(), await prepareNodeOidcProvider()];
// bench/'s own install (npm run bench) holds oidc-provider; an older checkout had it at the root.
const providerPackage = [join(here, 'node_modules', 'oidc-provider', 'package.json'), join(here, '..', 'node_modules', 'oidc-provider', 'package.json')].find((p) => existsSync(p));
const version = providerPackage ? JSON.parse(readFileSync(providerPackage, 'utf8')).version : 'unknown';
const results = { rounds, seconds, connections, versions: { 'oidc-provider': version }, exchange: [], refresh: [] };
try {
  // Warm-up: each provider's code paths (and JIT) once before measuring.
  for (const p of providers) for (let i = 0; i < 50; i++) await exchange(p);

  for (let round = 1; round <= rounds; round++) {
    for (const p of providers) {
      const r = await measure(() => exchange(p), p.child.pid);
      results.exchange.push({ round, provider: p.name, ...r });
      log(`exchange round ${round} ${p.name}: ${r.perSecond.toFixed(0)}/s, ${r.cpuMsPerCall?.toFixed(2)} ms CPU/call (${r.errors} errors${r.firstError ? `: ${r.firstError}` : ''})`);
    }
  }
  // Warm-up of the refresh path too (100 refreshes each), so that the rounds compare both
  // providers' steady state, as the exchange warm-up does for the exchange.
  for (const p of providers) {
    let token = p.name === 'tessera' ? (await exchange(p)).refresh_token : await p.freshRefreshToken();
    for (let i = 0; i < 100; i++) token = (await tokenCall(p, { grant_type: 'refresh_token', refresh_token: token })).refresh_token ?? token;
  }
  for (let round = 1; round <= rounds; round++) {
    for (const p of providers) {
      // Each worker starts from a refresh token of its own and spends the one it got last.
      // node-oidc-provider issues refresh tokens only for offline_access, which it grants
      // only with prompt=consent (an interaction): the one token of an interactive sign-in
      // made just before the round serves every worker. By default it does not rotate a confidential client's refresh
      // tokens (until 70 % of their lifetime), so the same token stays valid; Tessera
      // rotates every refresh token (single use, with theft detection).
      let tokens;
      if (p.name === 'tessera') {
        tokens = await Promise.all(Array.from({ length: connections }, async () => (await exchange(p)).refresh_token));
      } else {
        p.refreshToken = await p.freshRefreshToken();
        tokens = Array.from({ length: connections }, () => p.refreshToken);
      }
      const r = await measure(async (i) => {
        const next = await tokenCall(p, { grant_type: 'refresh_token', refresh_token: tokens[i] });
        if (next.refresh_token) tokens[i] = next.refresh_token;
      }, p.child.pid);
      results.refresh.push({ round, provider: p.name, ...r });
      log(`refresh round ${round} ${p.name}: ${r.perSecond.toFixed(0)}/s, ${r.cpuMsPerCall?.toFixed(2)} ms CPU/call (${r.errors} errors${r.firstError ? `: ${r.firstError}` : ''})`);
    }
  }
} finally {
  for (const p of providers) await p.stop();
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
for (const kind of ['exchange', 'refresh']) {
  const of = (name) => median(results[kind].filter((r) => r.provider === name).map((r) => r.perSecond));
  results[`${kind}Median`] = { tessera: of('tessera'), nodeOidcProvider: of('node-oidc-provider') };
  results[`${kind}Ratio`] = of('tessera') / of('node-oidc-provider');
  const cpuOf = (name) => {
    const values = results[kind].filter((r) => r.provider === name && r.cpuMsPerCall !== null).map((r) => r.cpuMsPerCall);
    return values.length ? median(values) : null;
  };
  results[`${kind}CpuMsPerCall`] = { tessera: cpuOf('tessera'), nodeOidcProvider: cpuOf('node-oidc-provider') };
  // CPU per call, node-oidc-provider ÷ Tessera: above 1 when a call costs Tessera less.
  results[`${kind}CpuRatio`] = cpuOf('tessera') && cpuOf('node-oidc-provider') ? cpuOf('node-oidc-provider') / cpuOf('tessera') : null;
  log(`${kind}: Tessera ${of('tessera').toFixed(0)}/s, node-oidc-provider ${of('node-oidc-provider').toFixed(0)}/s, ratio ${results[`${kind}Ratio`].toFixed(2)}; CPU per call ratio ${results[`${kind}CpuRatio`]?.toFixed(2)}`);
}
results.machine = { loadavgAtStart, loadavg: loadavg(), cores: availableParallelism() };
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 2));
else process.stdout.write(`${JSON.stringify(results)}\n`);
