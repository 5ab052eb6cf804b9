// Installs what is missing and builds, using only Node's standard library, so that
// `npm start`, `npm test`, `npm run tessera` and `npm run bench` work on a fresh clone with
// nothing but Node and npm.
//
//   node scripts/ensure.mjs           install (root) if missing or stale, then build
//   node scripts/ensure.mjs --bench   the same, then install bench/'s own dependencies
//
// The root install holds what the server, the tests and the build need; what only the
// benchmarks compare against (better-auth, express-session, oidc-provider, autocannon) lives in
// bench/package.json and is installed only by `npm run bench`.
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quietNpm = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

/**
 * Where the output of npm and tsc goes: 'inherit' (our stdout and stderr), or 'stderr'
 * (both to our stderr, so a command whose stdout is read by a script, like
 * `npm run tessera -- sessions list --json`, prints only its own answer there).
 */
const stdioFor = (out) => (out === 'stderr' ? ['ignore', 2, 2] : 'inherit');
const say = (out, line) => (out === 'stderr' ? console.error(line) : console.log(line));

/** True when `dir`'s node_modules is missing or older than its package.json / lock. */
function installStale(dir) {
  const marker = join(dir, 'node_modules', '.package-lock.json');
  return !existsSync(marker) || mtime(join(dir, 'package.json')) > mtime(marker) || mtime(join(dir, 'package-lock.json')) > mtime(marker);
}

function npmInstall(dir, out) {
  const cmd = existsSync(join(dir, 'package-lock.json')) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund';
  execSync(cmd, { cwd: dir, stdio: stdioFor(out), env: quietNpm });
}

/** Installs the root dependencies when they are missing or stale (`npm ci` from the lock). */
export function ensureInstalled({ out = 'inherit' } = {}) {
  const nativeMissing = !existsSync(join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
  if (installStale(root) || nativeMissing) {
    say(out, '[tessera] installing dependencies (first run builds better-sqlite3, about a minute)…');
    npmInstall(root, out);
  }
}

/** Builds every package (`tsc -b`: incremental, well under a second when nothing changed). */
export function ensureBuilt({ out = 'inherit' } = {}) {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], { cwd: root, stdio: stdioFor(out) });
}

/** Installs bench/'s own dependencies (the libraries the benchmarks compare against). */
export function ensureBenchInstalled({ out = 'inherit' } = {}) {
  const bench = join(root, 'bench');
  if (installStale(bench)) {
    say(out, '[tessera] installing the benchmarks\' dependencies (bench/package.json)…');
    npmInstall(bench, out);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    ensureInstalled();
    ensureBuilt();
    if (process.argv.includes('--bench')) ensureBenchInstalled();
  } catch {
    // npm / tsc have printed their own output above; a stack trace of execSync adds nothing.
    console.error('[tessera] install or build failed (see above).');
    process.exit(1);
  }
}
