import { escapeHtml, renderMessagePage } from '../pages/index.js';

// The look of the hosted pages (../pages/render.ts); the OpenID Provider's pages need forms with
// several buttons, which the shared renderers do not offer. Every interpolated value is escaped.
const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px #0002;width:min(24rem,90vw)}
h1{font-size:1.3rem;margin:0 0 1rem}ul{padding-left:1.2rem}
button{display:inline-block;margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#2d5bd7;color:#fff;font-size:1rem;cursor:pointer}
button.secondary{background:#e4e7ee;color:#222}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} · Tessera</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

const hidden = (fields: Record<string, string>) =>
  Object.entries(fields).map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`).join('');

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are (your Tessera user id)',
  profile: 'Your username, name and picture',
  email: 'Your email address, when verified',
};

/** The consent page of an app that is not trusted: what it asks for, allow or deny. */
export function renderConsentPage(input: { appName: string; username: string; scope: string; fields: Record<string, string> }): string {
  const items = input.scope.split(' ').map((s) => `<li>${escapeHtml(SCOPE_TEXT[s] ?? s)}</li>`).join('');
  return page('Allow access', `<h1>${escapeHtml(input.appName)} wants to sign you in</h1>
<p>Signed in as <strong>${escapeHtml(input.username)}</strong>. The app asks for:</p><ul>${items}</ul>
<form method="post" action="/oidc/consent">${hidden(input.fields)}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`);
}

/** The end-session confirmation, shown when a logout request carries no valid id_token_hint. */
export function renderLogoutConfirmPage(input: { appName: string | null; username: string | null; fields: Record<string, string> }): string {
  const who = input.username ? `<p>Signed in as <strong>${escapeHtml(input.username)}</strong>.</p>` : '';
  const from = input.appName ? ` from ${escapeHtml(input.appName)}` : '';
  return page('Sign out', `<h1>Sign out${from}?</h1>${who}<p>This ends your session in every app of this site.</p>
<form method="post" action="/oidc/logout/confirm">${hidden(input.fields)}
<button type="submit">Sign out</button>
</form>`);
}

/** An error of a request that cannot be returned to the client (unverified client or redirect URI). */
export function renderOidcErrorPage(title: string, message: string): string {
  return renderMessagePage(title, message);
}
