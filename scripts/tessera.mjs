// `npm run tessera -- <command>`: the `tessera` CLI of this checkout. Like `npm start`, it
// first installs what is missing and builds, so it works on a fresh clone; what npm and tsc
// print then goes to stderr, leaving stdout to the command's own answer (`--json` output
// stays parseable). Exit code and signals are the CLI's.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, ensureInstalled } from './ensure.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

try {
  ensureInstalled({ out: 'stderr' });
  ensureBuilt({ out: 'stderr' });
} catch {
  console.error('[tessera] install or build failed (see above); not running the CLI.');
  process.exit(1);
}

const child = spawn(process.execPath, [join(root, 'packages', 'server', 'dist', 'cli.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const forward = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const signal of SIGNALS) process.on(signal, forward);
child.on('error', (error) => {
  console.error(`[tessera] could not run the CLI: ${error.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  for (const s of SIGNALS) process.off(s, forward);
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
