import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { UsageError } from './command.js';

/** How a schema field is given on the command line, and what a valid value looks like. */
export type FlagNames = Record<string, { flag: string; expected?: string }>;

/**
 * Checks a request body built from command-line flags against the same schema the HTTP
 * API validates it with, so the CLI accepts exactly what the admin API accepts. The first
 * problem becomes a usage error naming the flag, e.g. `--origin "ftp://x": must be …`.
 * Values are quoted only for fields that are not secret (never `--password`).
 *
 * @example
 * ```ts
 * validateInput(AppBody, { name, allowed_origins: origins }, { allowed_origins: { flag: '--origin' } });
 * ```
 */
export function validateInput(schema: TSchema, body: Record<string, unknown>, flags: FlagNames): void {
  const first = [...Value.Errors(schema, body)][0];
  if (!first) return;
  const [field = '', index] = first.instancePath.replace(/^\//, '').split('/');
  const names = flags[field] ?? { flag: field ? `--${field.replace(/_/g, '-')}` : 'input' };
  const raw = index === undefined ? body[field] : (body[field] as unknown[] | undefined)?.[Number(index)];
  const shown = field === 'password' || typeof raw !== 'string' ? '' : ` ${JSON.stringify(raw.length > 80 ? `${raw.slice(0, 79)}…` : raw)}`;
  const problem = first.keyword === 'pattern' && names.expected ? `must be ${names.expected}` : first.message;
  throw new UsageError(`${names.flag}${shown}: ${problem}`);
}
