import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import { runCli } from '../src/cli/run-cli.js';

/** What one CLI run printed and returned. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the `tessera` CLI in process with `env`, capturing its output. */
export async function runCliCaptured(argv: string[], env: Record<string, string>, options: { stdin?: string; signals?: EventEmitter } = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env,
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    signals: options.signals ?? new EventEmitter(),
  });
  // The CLI is another process in real use: its commits reach a server's session cache from
  // the next turn of the event loop (see packages/core/src/session-cache.ts). Yield one here.
  await new Promise((resolve) => setImmediate(resolve));
  return { code, stdout, stderr };
}

/** Asserts a failure: the exit code, then exactly one stderr line, no stack trace, nothing on stdout. */
export function expectFailure(run: Run, code: number, line: string | RegExp): void {
  expect(run.code).toBe(code);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  if (typeof line === 'string') expect(lines[0]).toBe(line);
  else expect(lines[0]).toMatch(line);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stdout).toBe('');
}
