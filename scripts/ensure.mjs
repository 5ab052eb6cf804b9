// Installs what is missing and builds, using only Node's standard library, so that
// `npm start` and `npm test` work on a fresh clone with nothing but Node and npm.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit', env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

export function ensureInstalled() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  const stale = !existsSync(marker) || mtime(join(root, 'package.json')) > mtime(marker) || mtime(join(root, 'package-lock.json')) > mtime(marker);
  const nativeMissing = !existsSync(join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
  if (stale || nativeMissing) {
    console.log('[tessera] installing dependencies (first run builds better-sqlite3, about a minute)…');
    run(existsSync(join(root, 'package-lock.json')) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund');
  }
}

export function ensureBuilt() {
  run('npx --no-install tsc -b');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  ensureInstalled();
  ensureBuilt();
}
