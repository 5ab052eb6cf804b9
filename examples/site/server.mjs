// @ts-check
// Example site: shows who is signed in with Tessera and signs out with the *browser* flow
// (logout URL + one-time logout token). Plain node:http and fetch, so every call to Tessera
// is visible; only the back-channel logout receiver (token verification) comes from the
// SDK. Run: TESSERA_CLIENT_ID=… TESSERA_CLIENT_SECRET=… node server.mjs
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { csrfFor, esc, isOwnSignOutForm, page, readCookie, readForm, redirect, send, serve, startFromEnv } from '../shared/http.mjs';
import { createBackchannelEndpoint, createSessionLookup } from '../shared/tessera-session.mjs';

// Tessera's hosted login sets this cookie on its own host. Cookies are scoped by host, not
// by port, so an app on the same host (or on a subdomain, with TESSERA_COOKIE_DOMAIN set)
// receives it too. That is the whole "one login" trick: no token is passed in URLs.
const SESSION_COOKIE = 'tessera_session';

/**
 * Starts the example site.
 *
 * @example
 * const site = await startSite({ port: 3001, tesseraUrl: 'http://127.0.0.1:4000', clientId, clientSecret });
 * console.log(site.url); await site.close();
 *
 * @param {{ port?: number, host?: string, tesseraUrl: string, clientId: string, clientSecret: string, publicUrl?: string, cacheSeconds?: number, log?: (line: string) => void }} options
 *   `publicUrl` defaults to http://<host>:<actual port>; its home (`<publicUrl>/`) must be
 *   one of the app's registered `return_urls`. The client secret authenticates the app's
 *   server-side whoami calls, which record the app as having joined the session.
 *   `cacheSeconds` (default 0, off) keeps each whoami answer that long; set it only when
 *   the app's `backchannel_logout_uri` (`<publicUrl>/backchannel-logout`) is registered,
 *   or a logout made elsewhere would go unnoticed here until the answer expires. `log`
 *   receives a line per back-channel logout (default console.log).
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startSite({ port = 0, host = '127.0.0.1', tesseraUrl, clientId, clientSecret, publicUrl, cacheSeconds = 0, log = console.log }) {
  const sessions = createSessionLookup({ tesseraUrl, clientId, clientSecret, cacheSeconds });
  const backchannel = createBackchannelEndpoint({ name: 'site', tesseraUrl, clientId, sessions, log });
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
        return send(res, 200, page('Example site', `<p>Not signed in.</p><p><a href="${esc(signIn)}">Sign in</a></p>`));
      }
      return send(res, 200, page('Example site', `<p>Signed in as <strong>${esc(me.user.username)}</strong> <small>(session <code data-session="${esc(me.session.handle)}">${esc(me.session.handle)}</code>)</small></p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${csrfFor(csrfKey, token)}"><button type="submit">Sign out everywhere</button></form>`));
    }

    if (req.method === 'POST' && url.pathname === '/logout') {
      const form = await readForm(req);
      if (!token) return redirect(res, home); // nothing to end
      if (!isOwnSignOutForm(req, form, { home, csrfKey, token })) {
        return send(res, 403, page('Sign-out refused', '<p>This sign-out form did not come from this site. Reload the page and try again.</p>'));
      }
      sessions.forget(token); // our own state first; Tessera's back-channel notice follows
      // Ask Tessera for a logout URL (a one-time logout token bound to this session) and send
      // the browser there: the browser must visit Tessera so that Tessera clears its cookie.
      // Tessera ends the session everywhere and sends the browser back to our home (303).
      const r = await fetch(`${tesseraUrl}/v1/logout/browser?return_to=${encodeURIComponent(home)}`, { headers: { 'x-session-token': token }, signal: AbortSignal.timeout(5000) });
      if (r.status === 401) return redirect(res, home); // already ended elsewhere
      if (!r.ok) throw new Error(`Tessera /v1/logout/browser answered ${r.status}`);
      const { logout_url: logoutUrl } = /** @type {{ logout_url: string }} */ (await r.json());
      return redirect(res, logoutUrl);
    }

    // Tessera tells us here when a session we joined ended, wherever it was ended.
    if (url.pathname === '/backchannel-logout') return backchannel(req, res);

    return send(res, 404, page('Not found', '<p>Nothing here.</p>'));
  }

  const served = await serve({ name: 'example site', port, host, publicUrl, handle });
  home = `${served.url}/`;
  return served;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await startFromEnv({ name: 'site', defaultPort: 3001, start: startSite });
