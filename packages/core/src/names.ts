import { TesseraError } from './errors.js';

/**
 * Characters refused in every name a person reads: usernames, first and last names, emails
 * and app names (in lists, the admin console, logs, audit lines).
 *
 * - C0 and C1 control characters (NUL, newline, escape…): they cut or forge log lines and
 *   terminal output, and NUL truncates strings in C-based consumers (PHP, databases).
 * - Bidirectional overrides, embeddings and isolates (U+202A–U+202E, U+2066–U+2069) and the
 *   directional marks (U+200E, U+200F, U+061C): they reorder what is displayed, so
 *   "admin\u202Enimda" can read as something else entirely ("Trojan Source").
 * - Zero-width characters (U+200B–U+200D, U+2060, U+FEFF) and the line and paragraph
 *   separators (U+2028, U+2029): invisible, so two different names look identical in every
 *   list and an operator acts on the wrong account.
 */
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001F\u007F-\u009F\u061C\u200B-\u200F\u2028-\u202E\u2060\u2066-\u2069\uFEFF]/u;

/** The fields the rule applies to, as named in error messages. */
export type NameField = 'username' | 'first_name' | 'last_name' | 'email' | 'name';

/**
 * A name as stored: Unicode NFC (so the same letters typed on two systems — "é" as one code
 * point or as "e" plus a combining accent — are one name, not two look-alike accounts), and
 * refused with 400 `INVALID_NAME` when it contains a character of {@link FORBIDDEN}. The one
 * rule for every path that creates or renames a user or an app: the admin API, the CLI, a
 * trusted app's claims, and the OIDC and connector paths that build on the user service.
 *
 * @example
 * ```ts
 * normaliseName('Cafe\u0301', 'username'); // 'Café' (NFC)
 * normaliseName('ad\u200Bmin', 'username'); // throws TesseraError INVALID_NAME
 * ```
 */
export function normaliseName(value: string, field: NameField): string {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string`);
  const nfc = value.normalize('NFC');
  const bad = FORBIDDEN.exec(nfc);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new TesseraError('INVALID_NAME', `${field} contains U+${code}, a control, bidirectional or invisible character.`);
  }
  if (field === 'username' && nfc.trim() === '') throw new TesseraError('INVALID_NAME', 'username is empty.');
  return nfc;
}

/**
 * True when `value` holds a character no stored name can hold. Lookups by a login name or a
 * client id use it to answer "no such name" without asking the store: PostgreSQL refuses a
 * NUL in a query parameter outright, which would otherwise surface as a 500.
 *
 * @example
 * ```ts
 * if (hasForbiddenNameChars(login)) return null;
 * ```
 */
export function hasForbiddenNameChars(value: string): boolean {
  return FORBIDDEN.test(value);
}

/** {@link normaliseName} for an optional field: `null` and `undefined` pass through. */
export function normaliseOptionalName<T extends string | null | undefined>(value: T, field: NameField): T {
  return (typeof value === 'string' ? normaliseName(value, field) : value) as T;
}
