/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

// Fit for a 320 px phone: every box is border-box, the card takes the width it is given up to
// 25rem (padding included, so it never grows past the screen), and long words (an email, a
// username) wrap instead of widening the page.
const STYLE = `*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:1rem;display:grid;place-items:center;min-height:100vh}
main{background:#fff;padding:2rem 1.5rem;border-radius:12px;box-shadow:0 2px 12px #0002;width:100%;max-width:25rem;overflow-wrap:anywhere}
h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}
input{width:100%;padding:.55rem;border:1px solid #bbb;border-radius:6px;font-size:1rem}
form{margin:0}button,a.button{display:inline-block;margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#2d5bd7;color:#fff;font-size:1rem;text-align:center;text-decoration:none;cursor:pointer}
button.secondary{background:#fff;color:#8a1c1c;border:1px solid #8a1c1c}
.hint{margin:.3rem 0 0;font-size:.85rem;color:#555}
.error{background:#fde8e8;color:#8a1c1c;padding:.5rem .7rem;border-radius:6px;font-size:.9rem}
.notice{background:#e6f4ea;color:#1e5631;padding:.5rem .7rem;border-radius:6px;font-size:.9rem}
/* The devices page (account.ts): one card per session, the current one outlined. */
.devices{list-style:none;padding:0;margin:0 0 1rem}.devices li{border:1px solid #ddd;border-radius:8px;padding:.7rem;margin:.6rem 0}
.devices li.current{border-color:#2d5bd7}.devices dl{margin:.3rem 0 0;font-size:.85rem;display:grid;grid-template-columns:auto 1fr;gap:.1rem .6rem}.devices dt{color:#555}.devices dd{margin:0}
.badge{display:inline-block;background:#2d5bd7;color:#fff;border-radius:4px;padding:0 .35rem;font-size:.75rem;margin-left:.3rem}
h2{font-size:1.05rem;margin:1.5rem 0 .5rem}.field-error{color:#8a1c1c;font-size:.85rem;margin:.2rem 0 0}`;

/**
 * The shell of every hosted page (the look above), around `body` (HTML, already escaped by
 * the caller). For pages of other surfaces (the OpenID Provider's consent and sign-out
 * confirmation) that need forms of their own.
 *
 * @example
 * ```ts
 * renderPage('Allow access', `<h1>${escapeHtml(appName)} wants to sign you in</h1>…`);
 * ```
 */
export function renderPage(title: string, body: string): string {
  return page(title, body);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} · Tessera</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

const hidden = (name: string, value: string | undefined) => (value ? `<input type="hidden" name="${name}" value="${escapeHtml(value)}">` : '');

/** The sign-in form. Every interpolated value is escaped. */
export function renderLoginPage(input: { csrf: string; returnTo?: string | undefined; clientId?: string | undefined; error?: string; notice?: string | undefined; username?: string }): string {
  return page(
    'Sign in',
    `<h1>Sign in</h1>${input.notice ? `<p class="notice" role="status">${escapeHtml(input.notice)}</p>` : ''}${input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : ''}
<form method="post" action="/login">
${hidden('csrf', input.csrf)}${hidden('return_to', input.returnTo)}${hidden('client_id', input.clientId)}
<label for="username">Username or email</label><input id="username" name="username" autocomplete="username" required value="${escapeHtml(input.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
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
