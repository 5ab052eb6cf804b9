/**
 * The built CLI (`node packages/server/dist/cli.js start`) as a child process of its own, for
 * the tests that kill Tessera mid-work and restart it on the same data directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './backchannel.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = join(root, 'packages', 'server', 'dist', 'cli.js');
/** A node took over 30 s to load at load average 20: the start deadline allows for that. */
export const START_TIMEOUT_MS = 120_000;

export interface CliProcessOptions {
  configFile: string;
  port: number;
  dataDir: string;
  adminToken: string;
}

/** Starts Tessera and waits until it answers /health (or fails with its output if it exits). */
export async function startCliProcess(options: CliProcessOptions): Promise<ChildProcess> {
  // Only our settings reach the child: a TESSERA_DATABASE_URL of the caller's shell must
  // not move the test to PostgreSQL.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TESSERA_')));
  const started = spawn(process.execPath, [CLI, 'start', '--config', options.configFile], {
    cwd: root,
    env: { ...env, TESSERA_PORT: String(options.port), TESSERA_DATA_DIR: options.dataDir, TESSERA_ADMIN_TOKEN: options.adminToken, TESSERA_COOKIE_SECURE: 'false', TESSERA_LOG_LEVEL: 'warn', TESSERA_RATE_LIMIT: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  started.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  started.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${options.port}`;
  await waitFor('Tessera to answer /health', async () => {
    if (started.exitCode !== null) throw new Error(`tessera start exited with ${started.exitCode}:\n${output}`);
    const ok = await fetch(`${url}/health`).then((r) => r.status === 200, () => false);
    return ok ? true : undefined;
  }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 50 });
  return started;
}

/** SIGKILL: no shutdown hook runs, as when a machine dies. Resolves once the process is gone. */
export function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, 'SIGKILL');
  return exited;
}
