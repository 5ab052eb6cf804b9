// @ts-check
// What the example site and forum have in common: a home page that shows who is signed in
// (asking Tessera with the browser's Tessera cookie), a sign-out form protected against
// CSRF, and the back-channel logout endpoint. Each app passes only how it ends a session at
// Tessera (the site: the browser flow; the forum: server to server).
import { randomBytes } from 'node:crypto';
import { csrfFor, esc, isOwnSignOutForm, page, readCookie, readForm, redirect, send, serve } from './http.mjs';
import { createBackchannelEndpoint, createSessionLookup } from './tessera-session.mjs';

// Tessera's hosted login sets this cookie on its own host. Cookies are scoped by host, not
// by port, so an app on the same host (or on a subdomain, with TESSERA_COOKIE_DOMAIN set)
// receives it too. That is the whole "one login" trick: no token is passed in URLs.
const SESSION_COOKIE = 'tessera_session';

/**
 * @typedef {{ port?: number, host?: string, tesseraUrl: string, clientId: string, clientSecret: string, publicUrl?: string, cacheSeconds?: number, log?: (line: string) => void }} ExampleAppOptions
 *   `publicUrl` defaults to http://<host>:<actual port>; its home (`<publicUrl>/`) must be
 *   one of the app's registered `return_urls`. The client secret authenticates the app's
 *   server-side whoami calls, which record the app as having joined the session.
 *   `cacheSeconds` (default 0, off) keeps each whoami answer that long; set it only when
 *   the app's `backchannel_logout_uri` (`<publicUrl>/backchannel-logout`) is registered,
 *   or a logout made elsewhere would go unnoticed here until the answer expires. `log`
 *   receives a line per back-channel logout (default console.log).
 */

/**
 * Starts one example app.
 *
 * @example
 * const app = await startExampleApp({ name: 'site', signOutLabel: 'Sign out', endSession: async ({ home }) => home, tesseraUrl, clientId, clientSecret });
 *
 * @param {ExampleAppOptions & { name: string, signOutLabel: string, endSession: (input: { token: string, home: string }) => Promise<string> }} options
 *   `endSession` ends the browser's session at Tessera and returns where to send the browser.
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startExampleApp({ name, signOutLabel, endSession, port = 0, host = '127.0.0.1', tesseraUrl, clientId, clientSecret, publicUrl, cacheSeconds = 0, log = console.log }) {
  const title = `Example ${name}`;
  const sessions = createSessionLookup({ tesseraUrl, clientId, clientSecret, cacheSeconds });
  const backchannel = createBackchannelEndpoint({ name, tesseraUrl, clientId, sessions, log });
  // Signs the per-session CSRF tokens of our forms; a new key per process is enough.
  const csrfKey = randomBytes(32);
  let home = '';

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', home);
    const token = readCookie(req.headers.cookie, SESSION_COOKIE);

    if (req.method === 'GET' && url.pathname === '/') {
      const me = token ? await sessions.lookup(token) : null;
      if (!me || !token) {
        const signIn = `${tesseraUrl}/login?return_to=${encodeURIComponent(home)}&client_id=${encodeURIComponent(clientId)}`;
        return send(res, 200, page(title, `<p>Not signed in.</p><p><a href="${esc(signIn)}">Sign in</a></p>`));
      }
      return send(res, 200, page(title, `<p>Signed in as <strong>${esc(me.user.username)}</strong> <small>(session <code data-session="${esc(me.session.handle)}">${esc(me.session.handle)}</code>)</small></p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${csrfFor(csrfKey, token)}"><button type="submit">${esc(signOutLabel)}</button></form>`));
    }

    if (req.method === 'POST' && url.pathname === '/logout') {
      const form = await readForm(req);
      if (!token) return redirect(res, home); // nothing to end
      if (!isOwnSignOutForm(req, form, { home, csrfKey, token })) {
        return send(res, 403, page('Sign-out refused', `<p>This sign-out form did not come from this ${esc(name)}. Reload the page and try again.</p>`));
      }
      sessions.forget(token); // our own state first; Tessera's back-channel notice follows
      return redirect(res, await endSession({ token, home }));
    }

    // Tessera tells us here when a session we joined ended, wherever it was ended.
    if (url.pathname === '/backchannel-logout') return backchannel(req, res);

    return send(res, 404, page('Not found', '<p>Nothing here.</p>'));
  }

  const served = await serve({ name: `example ${name}`, port, host, publicUrl, handle });
  home = `${served.url}/`;
  return served;
}
