import { escapeHtml, renderMessagePage, renderPage } from '../pages/index.js';

// The OpenID Provider's pages in the hosted pages' shell (../pages/render.ts): they need forms
// with several buttons, which the shared renderers do not offer. Every interpolated value is escaped.
const page = renderPage;

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
export function renderLogoutConfirmPage(input: { appName: string | null; username: string | null; fields: Record<string, string>; notice?: string }): string {
  const who = `${input.username ? `<p>Signed in as <strong>${escapeHtml(input.username)}</strong>.</p>` : ''}${input.notice ? `<p class="notice" role="status">${escapeHtml(input.notice)}</p>` : ''}`;
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
