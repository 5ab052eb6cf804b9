/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px #0002;width:min(22rem,90vw)}
h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}
input{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #bbb;border-radius:6px;font-size:1rem}
button,a.button{display:inline-block;margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#2d5bd7;color:#fff;font-size:1rem;text-align:center;text-decoration:none;cursor:pointer}
.error{background:#fde8e8;color:#8a1c1c;padding:.5rem .7rem;border-radius:6px;font-size:.9rem}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} · Tessera</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

/** The sign-in form. Every interpolated value is escaped. */
export function renderLoginPage(input: { csrf: string; returnTo?: string | undefined; clientId?: string | undefined; error?: string; username?: string }): string {
  const hidden = (name: string, value: string | undefined) => (value ? `<input type="hidden" name="${name}" value="${escapeHtml(value)}">` : '');
  return page(
    'Sign in',
    `<h1>Sign in</h1>${input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : ''}
<form method="post" action="/login">
${hidden('csrf', input.csrf)}${hidden('return_to', input.returnTo)}${hidden('client_id', input.clientId)}
<label for="username">Username or email</label><input id="username" name="username" autocomplete="username" required value="${escapeHtml(input.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** Shown at /login to a browser that is already signed in. */
export function renderSignedInPage(username: string, logoutUrl: string): string {
  return page('Signed in', `<h1>Signed in</h1><p>You are signed in as <strong>${escapeHtml(username)}</strong>.</p><a class="button" href="${escapeHtml(logoutUrl)}">Sign out everywhere</a>`);
}

/** A short message page (errors of the browser flows). */
export function renderMessagePage(title: string, message: string, link?: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${link ? `<a class="button" href="${escapeHtml(link)}">Back</a>` : ''}`);
}
