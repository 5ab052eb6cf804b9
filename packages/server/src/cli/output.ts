// Control characters (C0, DEL, C1) and the Unicode line separators. User agents, usernames
// and app names come from HTTP clients: printed raw, an escape sequence in one of them
// could rewrite the operator's terminal (hide a line, fake a prompt).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** A value made safe to print on a terminal: control characters become `?`. */
export function printable(value: string): string {
  return value.replace(CONTROL, '?');
}

/**
 * JSON for stdout, two-space indented. JSON.stringify escapes C0 controls but not DEL, C1
 * or U+2028/9; those are escaped here too (still valid JSON) for the reason above.
 */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A time as `2030-01-01 12:00:00Z` (UTC, to the second). */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** Cuts a long cell to `max` characters with an ellipsis. */
export function clip(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

/**
 * Lines of a plain-text table: a header row and one row per record, columns padded to the
 * widest cell, cells made printable.
 *
 * @example
 * ```ts
 * formatTable(['HANDLE', 'IP'], [['ses_1', '10.0.0.1']]); // ['HANDLE  IP', 'ses_1   10.0.0.1']
 * ```
 */
export function formatTable(header: string[], rows: string[][]): string[] {
  const cells = [header, ...rows.map((row) => row.map(printable))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}
