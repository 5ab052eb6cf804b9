import { escapeHtml, renderPage } from '../pages/index.js';

/** The sections of the console, in the order of its navigation. */
export type ConsoleSection = 'overview' | 'users' | 'apps' | 'revocations' | 'ssf';

// The console's navigation, in one place. A new surface adds its entry here and its pages
// beside the others in this folder.
const NAV: ReadonlyArray<readonly [ConsoleSection, string, string]> = [
  ['overview', '/admin', 'Overview'],
  ['users', '/admin/users', 'Users'],
  ['apps', '/admin/apps', 'Apps'],
  ['revocations', '/admin/revocations', 'Revocation log'],
  ['ssf', '/admin/ssf', 'Shared Signals'],
];

/** Escaped text. */
export const text = (value: string | number | null | undefined): string => escapeHtml(value === null || value === undefined ? '' : String(value));

/** A hidden form field. */
export const hidden = (name: string, value: string): string => `<input type="hidden" name="${text(name)}" value="${text(value)}">`;

/** An exact time: readable, with the ISO form on hover and for machines. */
export function time(at: number | null): string {
  if (at === null) return '—';
  const iso = new Date(at).toISOString();
  return `<time datetime="${iso}" title="${iso}">${iso.slice(0, 19).replace('T', ' ')} UTC</time>`;
}

/**
 * A small form that posts to `action` with the console's CSRF token: one button (and any
 * hidden fields). Every state change of the console is such a form, so it works without
 * JavaScript.
 */
export function postButton(action: string, csrf: string, label: string, options: { fields?: Record<string, string>; secondary?: boolean; small?: boolean; name?: string } = {}): string {
  const fields = Object.entries(options.fields ?? {}).map(([k, v]) => hidden(k, v)).join('');
  const classes = [options.secondary ? 'secondary' : '', options.small ? 'small' : ''].filter(Boolean).join(' ');
  return `<form method="post" action="${text(action)}">${hidden('csrf', csrf)}${fields}<button type="submit"${classes ? ` class="${classes}"` : ''}${options.name ? ` aria-label="${text(options.name)}"` : ''}>${text(label)}</button></form>`;
}

/** The errors of a form, by field name; `form` is shown above the form. */
export type FieldErrors = Record<string, string | undefined>;

/**
 * A labelled form field; its error, when there is one, sits right under it and is tied to
 * it with aria-describedby (and aria-invalid), as is its hint.
 */
export function field(input: {
  name: string;
  label: string;
  value?: string;
  type?: 'text' | 'email' | 'password' | 'url' | 'search';
  textarea?: boolean;
  required?: boolean;
  hint?: string;
  errors?: FieldErrors;
  autocomplete?: string;
}): string {
  const id = `f-${input.name}`;
  const error = input.errors?.[input.name];
  const described = [input.hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  const attrs = `id="${id}" name="${text(input.name)}"${input.required ? ' required' : ''}${described ? ` aria-describedby="${described}"` : ''}${error ? ' aria-invalid="true"' : ''}${input.autocomplete ? ` autocomplete="${text(input.autocomplete)}"` : ''}`;
  const control = input.textarea
    ? `<textarea ${attrs}>${text(input.value ?? '')}</textarea>`
    : `<input ${attrs} type="${input.type ?? 'text'}" value="${text(input.value ?? '')}">`;
  return `<label for="${id}">${text(input.label)}</label>${control}${input.hint ? `<p class="hint" id="${id}-hint">${text(input.hint)}</p>` : ''}${error ? `<p class="field-error" id="${id}-error">${text(error)}</p>` : ''}`;
}

/** A checkbox with its label (and its error under it, tied with aria-describedby). */
export function checkbox(input: { name: string; label: string; checked?: boolean; errors?: FieldErrors }): string {
  const id = `f-${input.name}`;
  const error = input.errors?.[input.name];
  return `<label class="check" for="${id}"><input type="checkbox" id="${id}" name="${text(input.name)}" value="1"${input.checked ? ' checked' : ''}${error ? ` aria-invalid="true" aria-describedby="${id}-error"` : ''}>${text(input.label)}</label>${error ? `<p class="field-error" id="${id}-error">${text(error)}</p>` : ''}`;
}

/** A select with its label and error. `options` are [value, label]. */
export function select(input: { name: string; label: string; options: ReadonlyArray<readonly [string, string]>; value?: string; errors?: FieldErrors }): string {
  const id = `f-${input.name}`;
  const error = input.errors?.[input.name];
  const opts = input.options.map(([v, l]) => `<option value="${text(v)}"${v === input.value ? ' selected' : ''}>${text(l)}</option>`).join('');
  return `<label for="${id}">${text(input.label)}</label><select id="${id}" name="${text(input.name)}"${error ? ` aria-invalid="true" aria-describedby="${id}-error"` : ''}>${opts}</select>${error ? `<p class="field-error" id="${id}-error">${text(error)}</p>` : ''}`;
}

/**
 * A table in a region that scrolls sideways on a narrow screen. The region is focusable and
 * named so that keyboard users can scroll it too.
 */
export function table(caption: string, headers: string[], rows: string[][], empty = 'Nothing to show.'): string {
  if (rows.length === 0) return `<p class="hint">${text(empty)}</p>`;
  const head = headers.map((h) => `<th scope="col">${text(h)}</th>`).join('');
  const body = rows.map((cells) => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<div class="table-wrap" role="region" aria-label="${text(caption)}" tabindex="0"><table><caption class="hint">${text(caption)}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

/** A notice after an action (fixed texts chosen by the route, never echoed from the request). */
export const notice = (message: string | undefined): string => (message ? `<p class="notice" role="status">${text(message)}</p>` : '');

/** The error summary of a form. */
export const formError = (message: string | undefined): string => (message ? `<p class="error" role="alert">${text(message)}</p>` : '');

/**
 * A console page: the top bar (navigation, sign-out form) around `body`, in the hosted
 * pages' shell (one stylesheet, wide layout).
 */
export function renderConsolePage(input: { title: string; section: ConsoleSection | null; csrf: string; body: string }): string {
  const nav = NAV.map(([key, href, label]) => `<li><a href="${href}"${key === input.section ? ' aria-current="page"' : ''}>${text(label)}</a></li>`).join('');
  const bar = `<header class="topbar"><span class="brand">Tessera admin</span><nav aria-label="Console"><ul>${nav}</ul></nav>${postButton('/admin/logout', input.csrf, 'Sign out', { secondary: true, small: true })}</header>`;
  return renderPage(`${input.title} · Admin`, `${bar}<h1>${text(input.title)}</h1>${input.body}`, { wide: true });
}
