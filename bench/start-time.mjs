// How long `npm start` takes on a fresh clone until GET /health answers 200: once cold (no
// node_modules, no dist: it installs and builds) and then warm (everything in place), each
// from `npm start` being launched. Not part of `npm run bench` (it clones the repository and
// installs from scratch); run it on its own:
//
//   node bench/start-time.mjs [--runs 2] [--fresh-cache] [--keep] [--write-readme]
//
// It clones HEAD of this checkout into a temporary directory (committed files only), so
// uncommitted changes are not measured. --fresh-cache gives npm an empty cache, so every
// package is downloaded from the registry, as on a new machine; without it npm's cache (if
// warm) supplies the tarballs, and only the install and build are measured. --write-readme
// puts the result into the README (its figure:start-times marker, scripts/readme-figures.mjs).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './lib/args.mjs';
import { README, setFigures } from '../scripts/readme-figures.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseBenchArgs(import.meta.url, { options: { runs: { type: 'string', default: '2' }, 'fresh-cache': { type: 'boolean', default: false }, keep: { type: 'boolean', default: false }, 'write-readme': { type: 'boolean', default: false } } });

const freePort = () =>
  new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

async function healthy(url) {
  try {
    return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })).status === 200;
  } catch {
    return false;
  }
}

/** Runs `npm start` in `dir` until /health answers 200; returns the seconds it took, then stops it. */
async function timeStart(dir, env) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  // detached: its own process group, so stopping it stops npm, the start script and the server.
  const child = spawn('npm', ['start'], { cwd: dir, env: { ...env, TESSERA_PORT: String(port), TESSERA_DATA_DIR: join(dir, 'data') }, stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  let exited = null;
  child.once('exit', (code) => (exited = code));
  while (!(await healthy(url))) {
    if (exited !== null) throw new Error(`npm start exited (${exited}) before /health answered`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const seconds = (performance.now() - started) / 1000;
  const stopped = new Promise((r) => child.once('exit', r));
  process.kill(-child.pid, 'SIGTERM');
  await stopped;
  return seconds;
}

const work = mkdtempSync(join(tmpdir(), 'tessera-start-time-'));
const clone = join(work, 'tessera');
const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
execFileSync('git', ['clone', '--quiet', '--no-hardlinks', root, clone]);
const env = { ...process.env, npm_config_update_notifier: 'false' };
delete env.TESSERA_DATABASE_URL;
delete env.TESSERA_CONFIG;
if (args['fresh-cache']) env.npm_config_cache = join(work, 'npm-cache');
try {
  const cold = await timeStart(clone, env);
  const warm = [];
  for (let i = 1; i < Number(args.runs); i++) warm.push(await timeStart(clone, env));
  const packages = Number(execFileSync('npm', ['ls', '--all', '--parseable'], { cwd: clone, encoding: 'utf8', env }).trim().split('\n').length - 1);
  const result = {
    commit: head,
    node: process.version,
    cpus: cpus().length,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
    npmCache: args['fresh-cache'] ? 'empty (all downloaded)' : 'as is',
    installedPackages: packages,
    coldSeconds: Math.round(cold * 10) / 10,
    warmSeconds: warm.map((s) => Math.round(s * 10) / 10),
  };
  console.log(JSON.stringify(result, null, 2));
  if (args['write-readme']) {
    const cache = args['fresh-cache'] ? 'an empty npm cache, so every package was downloaded' : 'npm\'s cache as it was';
    const text = `cold ${Math.round(result.coldSeconds)} s (no node_modules, no build; ${cache}; ${result.installedPackages} packages), warm ${result.warmSeconds.map((s) => `${s} s`).join(' and ')} (commit ${head}, Node.js ${process.version}, ${result.cpus} cores shared with other jobs: load average ${result.loadavg[0]} at the end)`;
    writeFileSync(README, setFigures(readFileSync(README, 'utf8'), { 'start-times': text }));
    console.log('README.md: start-times written');
  }
} finally {
  if (!args.keep) rmSync(work, { recursive: true, force: true });
}
