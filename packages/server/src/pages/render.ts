import { STYLESHEET_PATH } from './stylesheet.js';

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * The shell of every hosted page (the shared stylesheet, stylesheet.ts), around `body` (HTML, already escaped by
 * the caller). For pages of other surfaces (the OpenID Provider's consent and sign-out
 * confirmation) that need forms of their own.
 *
 * @example
 * ```ts
 * renderPage('Allow access', `<h1>${escapeHtml(appName)} wants to sign you in</h1>…`);
 * ```
 */
export function renderPage(title: string, body: string, options: { wide?: boolean } = {}): string {
  return page(title, body, options);
}

function page(title: string, body: string, options: { wide?: boolean } = {}): string {
  // The one shared stylesheet, same origin (CSP style-src 'self'; no inline style anywhere).
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} · Tessera</title><link rel="stylesheet" href="${STYLESHEET_PATH}"></head><body${options.wide ? ' class="wide"' : ''}><main>${body}</main></body></html>`;
}

const hidden = (name: string, value: string | undefined) => (value ? `<input type="hidden" name="${name}" value="${escapeHtml(value)}">` : '');

/** Errors of the sign-in form's fields, each shown under its field. */
export interface LoginFieldErrors {
  username?: string;
  password?: string;
}

// An error under its field, which points at it (aria-describedby) and is marked invalid.
const fieldError = (id: string, message: string | undefined) => (message ? `<p class="field-error" id="${id}-error">${escapeHtml(message)}</p>` : '');
const describedBy = (id: string, message: string | undefined) => (message ? ` aria-invalid="true" aria-describedby="${id}-error"` : '');

/** The sign-in form. Every interpolated value is escaped. */
export function renderLoginPage(input: { csrf: string; returnTo?: string | undefined; clientId?: string | undefined; error?: string; notice?: string | undefined; username?: string; fieldErrors?: LoginFieldErrors }): string {
  const errors = input.fieldErrors ?? {};
  return page(
    'Sign in',
    `<h1>Sign in</h1>${input.notice ? `<p class="notice" role="status">${escapeHtml(input.notice)}</p>` : ''}${input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : ''}
<form method="post" action="/login">
${hidden('csrf', input.csrf)}${hidden('return_to', input.returnTo)}${hidden('client_id', input.clientId)}
<label for="username">Username or email</label><input id="username" name="username" autocomplete="username" required value="${escapeHtml(input.username ?? '')}"${describedBy('username', errors.username)}>${fieldError('username', errors.username)}
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required${describedBy('password', errors.password)}>${fieldError('password', errors.password)}
<button type="submit">Sign in</button>
</form>`,
  );
}

/** What each sign-out button of the signed-in page ends (the `scope` field of its form). */
export type SignOutScope = 'device' | 'all';

/**
 * Shown at /login to a browser that is already signed in: two sign-out forms (POST
 * /login/sign-out, CSRF-protected), each saying exactly what it ends.
 */
export function renderSignedInPage(input: { username: string; csrf: string }): string {
  const form = (scope: SignOutScope, label: string, hint: string, secondary = false) =>
    `<form method="post" action="/login/sign-out">${hidden('csrf', input.csrf)}${hidden('scope', scope)}<button type="submit"${secondary ? ' class="secondary"' : ''}>${escapeHtml(label)}</button></form><p class="hint">${escapeHtml(hint)}</p>`;
  return page(
    'Signed in',
    `<h1>Signed in</h1><p>You are signed in as <strong>${escapeHtml(input.username)}</strong>. <a href="/account">See your devices</a></p>
${form('device', 'Sign out of all apps on this device', 'Ends this browser\'s session in every app that uses it.')}
${form('all', 'Sign out all my devices', 'Ends every session of yours: this browser, your other browsers and devices, every app.', true)}`,
  );
}

/** A short message page (errors of the browser flows). */
export function renderMessagePage(title: string, message: string, link?: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${link ? `<a class="button" href="${escapeHtml(link)}">Back</a>` : ''}`);
}
