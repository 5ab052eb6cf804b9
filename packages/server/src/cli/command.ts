import type { Authority, Config, ErrorCode } from '@tessera/core';
import { TesseraError } from '@tessera/core';

/** Where the CLI reads and writes; tests pass their own, the bin passes the process's. */
export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  /** Read by `--password-stdin`. */
  stdin: AsyncIterable<string | Uint8Array> & { isTTY?: boolean };
  /** Where `tessera start` listens for SIGINT / SIGTERM (the process, or an emitter in tests). */
  signals: {
    on(event: 'SIGINT' | 'SIGTERM', listener: (signal: NodeJS.Signals) => void): unknown;
    off(event: 'SIGINT' | 'SIGTERM', listener: (signal: NodeJS.Signals) => void): unknown;
  };
}

/** One option of a command, as shown in its help. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder shown in help, e.g. `URL`. */
  value?: string;
  help: string;
  required?: boolean;
  /** May be given several times. */
  multiple?: boolean;
  short?: string;
}

/** Parsed option values of one invocation. */
export interface Args {
  /** The value of a string option, or undefined. */
  string(name: string): string | undefined;
  /** Every value of a repeatable option (empty when not given). */
  strings(name: string): string[];
  /** True when a boolean flag was given. */
  flag(name: string): boolean;
  /** The value of a string option that must be present (a usage error otherwise). */
  need(name: string): string;
  /** The command's one positional argument (commands that declare `positional`), or undefined. */
  positional(): string | undefined;
}

/** What a command runs with. */
export interface CommandContext {
  io: CliIo;
  /** The command's words, e.g. `users disable` (used in messages). */
  name: string;
  /** The configuration (environment over `--config FILE`), read on first use. */
  config(): Config;
  /** The authority over the configured store (opened and migrated on first use, closed after the command). */
  authority(): Promise<Authority>;
  /** Writes one line to stdout. */
  out(line: string): void;
  /** Writes one line to stderr. */
  note(line: string): void;
  /** Writes a value as JSON to stdout. */
  json(value: unknown): void;
}

/** A CLI command: its words, help and behaviour. */
export interface Command {
  /** The words that name it, e.g. `['apps', 'create']`. */
  path: string[];
  summary: string;
  /** Extra help paragraphs. */
  notes?: string[];
  options: Record<string, OptionSpec>;
  /** One positional argument, e.g. `tessera apps update CLIENT_ID` (none unless declared). */
  positional?: { value: string; help: string };
  /** Accepts `--json` (default true). */
  json?: boolean;
  /** Returns the exit code (0 when nothing is returned). */
  run(ctx: CommandContext, args: Args): Promise<number | void>;
}

/** A mistake in how the CLI was called: exit code 2 and a pointer to the help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Replaces a core error's generic message with one naming what was asked for, e.g.
 * USER_NOT_FOUND → `no such user "x"`; other errors pass through unchanged.
 *
 * @example
 * ```ts
 * const user = await explain(authority.users.getUser(id), { USER_NOT_FOUND: `no such user "${id}"` });
 * ```
 */
export async function explain<T>(work: Promise<T>, messages: Partial<Record<ErrorCode, string>>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    const message = error instanceof TesseraError ? messages[error.code] : undefined;
    if (error instanceof TesseraError && message !== undefined) throw new TesseraError(error.code, message);
    throw error;
  }
}
