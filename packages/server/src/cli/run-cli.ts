import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, createAuthority, systemClock, TesseraError, type Authority, type Config, type Store } from '@tessera/core';
import { openStore } from '@tessera/store';
import { readConfig } from '../start.js';
import { TESSERA_VERSION } from '../version.js';
import { adminTokenCommands } from './admin-token-commands.js';
import { appsCommands } from './apps-commands.js';
import { deliveriesCommands } from './deliveries-commands.js';
import { ssfCommands } from './ssf-commands.js';
import { UsageError, type Args, type CliIo, type Command, type CommandContext, type OptionSpec } from './command.js';
import { formatJson, printable } from './output.js';
import { retentionCommands } from './retention-commands.js';
import { serverCommands } from './server-commands.js';
import { sessionsCommands } from './sessions-commands.js';
import { usersCommands } from './users-commands.js';

const COMMANDS: Command[] = [...serverCommands, ...appsCommands, ...usersCommands, ...sessionsCommands, ...deliveriesCommands, ...ssfCommands, ...retentionCommands, ...adminTokenCommands];

const COMMON: Record<string, OptionSpec> = {
  config: { type: 'string', value: 'FILE', help: 'JSON configuration file (TESSERA_* environment variables win)' },
  json: { type: 'boolean', help: 'Print JSON instead of text' },
  help: { type: 'boolean', short: 'h', help: 'Show this help' },
};

function optionsOf(command: Command): Record<string, OptionSpec> {
  const { config, json, help } = COMMON;
  return { ...command.options, config: config!, ...(command.json === false ? {} : { json: json! }), help: help! };
}

const title = (command: Command) => command.path.join(' ');

function commandHelp(command: Command): string[] {
  const options = optionsOf(command);
  const required = Object.entries(options).filter(([, o]) => o.required).map(([name, o]) => `--${name} ${o.value ?? ''}`.trim());
  const rows = Object.entries(options).map(([name, o]) => [`${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` ${o.value}` : ''}`, `${o.help}${o.required ? ' (required)' : ''}`] as const);
  const width = Math.max(...rows.map(([left]) => left.length));
  return [
    `Usage: tessera ${title(command)} ${[...(command.positional ? [command.positional.value] : []), ...required, '[options]'].join(' ')}`,
    '',
    command.summary,
    ...(command.positional ? ['', `${command.positional.value}: ${command.positional.help}`] : []),
    ...(command.notes ? ['', ...command.notes] : []),
    '',
    'Options:',
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`),
  ];
}

function overallHelp(commands: Command[] = COMMANDS, heading = 'tessera: the Tessera session authority (one login, one session, logout everywhere)'): string[] {
  const width = Math.max(...commands.map((c) => title(c).length));
  return [
    heading,
    '',
    `Usage: tessera ${commands === COMMANDS ? '<command>' : `${commands[0]!.path[0]} <command>`} [options]`,
    '',
    'Commands:',
    ...commands.map((c) => `  ${title(c).padEnd(width)}  ${c.summary}`),
    '',
    'Every command reads its settings from TESSERA_* environment variables and --config FILE',
    '(the environment wins), so it works on the same database as `tessera start`.',
    'Run `tessera <command> --help` for the options of a command.',
  ];
}

/** Turns node:util parseArgs errors into short usage messages. */
function parseUsage(error: unknown): UsageError {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`unknown option ${quoted}`);
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return new UsageError(`unexpected argument "${quoted}"`);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const option = quoted.split(' ')[0] ?? quoted;
    return new UsageError(/does not take an argument/.test(message) ? `option ${option} takes no value` : `option ${option} needs a value`);
  }
  return new UsageError(message);
}

function parseCommandArgs(command: Command, argv: string[]): { args: Args; help: boolean } {
  const specs = optionsOf(command);
  const config: ParseArgsConfig['options'] = {};
  for (const [name, o] of Object.entries(specs)) config[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  let values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: config, strict: true, allowPositionals: command.positional !== undefined }));
  } catch (error) {
    throw parseUsage(error);
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const string = (name: string) => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  const args: Args = {
    string,
    strings: (name) => (Array.isArray(values[name]) ? (values[name] as unknown[]).filter((v): v is string => typeof v === 'string') : []),
    flag: (name) => values[name] === true,
    need(name) {
      const v = string(name);
      if (v === undefined || v === '') throw new UsageError(`missing --${name}`);
      return v;
    },
    positional: () => positionals[0],
  };
  const help = values.help === true;
  if (!help) {
    for (const [name, o] of Object.entries(specs)) {
      if (!o.required) continue;
      if (!o.multiple) args.need(name);
      else if (!args.strings(name).some((v) => v !== '')) throw new UsageError(`missing --${name}`);
    }
  }
  return { args, help };
}

/** The failure line: `tessera: users disable: no such user "x" (USER_NOT_FOUND)` and an exit code. */
function describeFailure(error: unknown, name: string, env: CliIo['env']): { line: string; code: number } {
  const where = name ? `tessera: ${name}: ` : 'tessera: ';
  if (error instanceof UsageError) {
    return { line: `${where}${error.message} (see: tessera ${name ? `${name} ` : ''}--help)`, code: 2 };
  }
  if (error instanceof TesseraError) return { line: `${where}${error.message.replace(/\.$/, '')} (${error.code})`, code: 1 };
  if (error instanceof ConfigError) return { line: `${where}${error.message}`, code: 1 };
  const message = error instanceof Error ? error.message : String(error);
  const hint = env.TESSERA_DEBUG ? '' : ' (set TESSERA_DEBUG=1 for details)';
  return { line: `${where}${message}${hint}`, code: 1 };
}

/**
 * Runs the `tessera` command line: `argv` without the node and script paths; output goes
 * to `io` (the process's streams by default). Resolves with the exit code: 0 on success,
 * 2 for a usage error, 1 for any other failure, which is reported as one line on stderr,
 * never as a stack trace.
 *
 * @example
 * ```ts
 * const code = await runCli(['users', 'create', '--username', 'alice', '--password-stdin'], { env: process.env });
 * ```
 */
export async function runCli(argv: string[], partialIo: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = { env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, signals: process, ...partialIo };
  const out = (line: string) => void io.stdout.write(`${line}\n`);
  const err = (line: string) => void io.stderr.write(`${line}\n`);

  const [first, second] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    overallHelp().forEach(out);
    return 0;
  }
  if (first === '--version' || first === '-v') {
    out(TESSERA_VERSION);
    return 0;
  }
  const command = COMMANDS.find((c) => c.path.length === 2 && c.path[0] === first && c.path[1] === second) ?? COMMANDS.find((c) => c.path.length === 1 && c.path[0] === first);
  if (!command) {
    const group = COMMANDS.filter((c) => c.path[0] === first);
    if (group.length === 0) return (err(describeFailure(new UsageError(`unknown command "${first}"`), '', io.env).line), 2);
    if (second === undefined || second === '--help' || second === '-h') {
      overallHelp(group, `tessera ${first}: ${group.map((c) => c.path[1]).join(', ')}`).forEach(second === undefined ? err : out);
      return second === undefined ? 2 : 0;
    }
    return (err(describeFailure(new UsageError(`unknown command "${second}"`), first, io.env).line), 2);
  }

  const name = title(command);
  let store: Store | null = null;
  let config: Config | null = null;
  try {
    const { args, help } = parseCommandArgs(command, argv.slice(command.path.length));
    if (help) {
      commandHelp(command).forEach(out);
      return 0;
    }
    let authority: Authority | null = null;
    const ctx: CommandContext = {
      io,
      name,
      config: () => (config ??= readConfig(io.env, args.string('config'))),
      async authority() {
        if (authority) return authority;
        const cfg = ctx.config();
        store = openStore(cfg);
        await store.migrate();
        authority = createAuthority({ store, config: cfg, clock: systemClock });
        return authority;
      },
      out,
      note: err,
      json: (value) => out(formatJson(value)),
    };
    return (await command.run(ctx, args)) ?? 0;
  } catch (error) {
    const failure = describeFailure(error, name, io.env);
    // The whole line is made printable: it may quote ids and handles typed by the operator.
    err(printable(failure.line));
    if (io.env.TESSERA_DEBUG && error instanceof Error && failure.code === 1) err(error.stack ?? '');
    return failure.code;
  } finally {
    await (store as Store | null)?.close().catch(() => undefined);
  }
}
