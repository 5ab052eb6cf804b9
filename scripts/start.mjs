// `npm start`: install what is missing, build, then run `tessera start` with this process's
// environment. Arguments after `npm start --` go to `tessera start` (e.g. `--config FILE`).
// Signals are forwarded to the server and its exit code becomes ours.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, ensureInstalled } from './ensure.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

try {
  ensureInstalled();
  ensureBuilt();
} catch {
  // npm / tsc have printed their own output above; a stack trace of execSync adds nothing.
  console.error('[tessera] install or build failed (see above); not starting.');
  process.exit(1);
}

/** The config file `tessera start` will read: `--config FILE` / `--config=FILE`, else TESSERA_CONFIG. */
function configPath() {
  const i = args.findIndex((a) => a === '--config' || a.startsWith('--config='));
  if (i < 0) return process.env.TESSERA_CONFIG || null;
  return args[i].includes('=') ? args[i].slice('--config='.length) : (args[i + 1] ?? null);
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The issuer when it is plain http on this machine (the newcomer's http://127.0.0.1:4000),
 * else null. Mirrors how the configuration fills in the default issuer. Returns null when
 * cookie.secure is already decided (environment or config file) or the file is unreadable
 * (then `tessera start` reports the problem itself).
 */
function localHttpIssuer(env) {
  if (env.TESSERA_COOKIE_SECURE !== undefined && env.TESSERA_COOKIE_SECURE !== '') return null;
  let file = {};
  const path = configPath();
  if (path) {
    try {
      file = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      return null;
    }
    if (typeof file !== 'object' || file === null || file.cookie?.secure !== undefined) return null;
  }
  const host = env.TESSERA_HOST || file.host || '127.0.0.1';
  const port = env.TESSERA_PORT || file.port || 4000;
  const issuer = env.TESSERA_ISSUER || file.issuer || `http://${String(host).includes(':') ? `[${host}]` : host}:${port}`;
  try {
    const url = new URL(issuer);
    return url.protocol === 'http:' && LOOPBACK.has(url.hostname) ? issuer : null;
  } catch {
    return null;
  }
}

const env = { ...process.env };
const issuer = localHttpIssuer(env);
if (issuer) {
  // Browsers drop Secure cookies set over plain http, so the login page would never keep a
  // session on http://127.0.0.1. Relaxing it is allowed only for a loopback issuer (the
  // configuration refuses it anywhere else), and said out loud.
  env.TESSERA_COOKIE_SECURE = 'false';
  console.log(`[tessera] the issuer ${issuer} is local http: using TESSERA_COOKIE_SECURE=false so the login page works without https (set TESSERA_COOKIE_SECURE=true to keep Secure cookies).`);
}

console.log('[tessera] new here? `npm run demo` runs Tessera with two example apps and shows a single logout reaching both, step by step.');

const child = spawn(process.execPath, [join(root, 'packages', 'server', 'dist', 'cli.js'), 'start', ...args], { env, stdio: 'inherit' });

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const forward = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const signal of SIGNALS) process.on(signal, forward);

child.on('error', (error) => {
  console.error(`[tessera] could not run the server: ${error.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  for (const s of SIGNALS) process.off(s, forward);
  // Killed by a signal: die by the same signal, so whoever started us sees the same end.
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
