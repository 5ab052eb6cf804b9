// @ts-check
// Example forum: shares the Tessera session with the site (same cookie, no second login)
// and signs out with the *server-to-server* flow: the forum's server posts the session
// token to Tessera with its own client credentials. Plain node:http and fetch; only the
// back-channel logout receiver (token verification) comes from the SDK.
// Run: TESSERA_CLIENT_ID=… TESSERA_CLIENT_SECRET=… node server.mjs
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { basicAuth, csrfFor, esc, isOwnSignOutForm, startFromEnv, page, readCookie, readForm, redirect, send, serve } from '../shared/http.mjs';
import { createBackchannelEndpoint, createSessionLookup } from '../shared/tessera-session.mjs';

// Tessera's hosted login sets this cookie on its own host. Cookies are scoped by host, not
// by port, so an app on the same host (or on a subdomain, with TESSERA_COOKIE_DOMAIN set)
// receives it too. That is the whole "one login" trick: no token is passed in URLs.
const SESSION_COOKIE = 'tessera_session';

/**
 * Starts the example forum.
 *
 * @example
 * const forum = await startForum({ port: 3002, tesseraUrl: 'http://127.0.0.1:4000', clientId, clientSecret });
 * console.log(forum.url); await forum.close();
 *
 * @param {{ port?: number, host?: string, tesseraUrl: string, clientId: string, clientSecret: string, publicUrl?: string, cacheSeconds?: number, log?: (line: string) => void }} options
 *   `publicUrl` defaults to http://<host>:<actual port>; its home (`<publicUrl>/`) must be
 *   one of the app's registered `return_urls` (the sign-in link returns there).
 *   `cacheSeconds` (default 0, off) keeps each whoami answer that long; set it only when
 *   the app's `backchannel_logout_uri` (`<publicUrl>/backchannel-logout`) is registered,
 *   or a logout made elsewhere would go unnoticed here until the answer expires. `log`
 *   receives a line per back-channel logout (default console.log).
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startForum({ port = 0, host = '127.0.0.1', tesseraUrl, clientId, clientSecret, publicUrl, cacheSeconds = 0, log = console.log }) {
  const basic = basicAuth(clientId, clientSecret);
  const sessions = createSessionLookup({ tesseraUrl, clientId, clientSecret, cacheSeconds });
  const backchannel = createBackchannelEndpoint({ name: 'forum', tesseraUrl, clientId, sessions, log });
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
        return send(res, 200, page('Example forum', `<p>Not signed in.</p><p><a href="${esc(signIn)}">Sign in</a></p>`));
      }
      return send(res, 200, page('Example forum', `<p>Signed in as <strong>${esc(me.user.username)}</strong> <small>(session <code data-session="${esc(me.session.handle)}">${esc(me.session.handle)}</code>)</small></p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${csrfFor(csrfKey, token)}"><button type="submit">Sign out (server to server)</button></form>`));
    }

    if (req.method === 'POST' && url.pathname === '/logout') {
      const form = await readForm(req);
      if (!token) return redirect(res, home); // nothing to end
      if (!isOwnSignOutForm(req, form, { home, csrfKey, token })) {
        return send(res, 403, page('Sign-out refused', '<p>This sign-out form did not come from this forum. Reload the page and try again.</p>'));
      }
      sessions.forget(token); // our own state first; Tessera's back-channel notice follows
      // Server to server: the forum authenticates as itself and names the session by its
      // token. scope "session" ends it for every app (the site included); "app" would only
      // take the forum out of it, "user" would end every session of the user.
      const r = await fetch(`${tesseraUrl}/api/v1/logout`, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/json' },
        body: JSON.stringify({ token, scope: 'session' }),
        signal: AbortSignal.timeout(5000),
      });
      // 200 also when the session had already ended; 403 TOKEN_INVALID: no such session.
      if (!r.ok && r.status !== 403) throw new Error(`Tessera /api/v1/logout answered ${r.status}`);
      // The browser keeps Tessera's cookie, now naming an ended session: harmless, since
      // every app asks Tessera (or was told by back-channel logout, if it caches answers)
      // and gets 401 for it, and the next sign-in replaces it. (Use
      // the site's browser flow when Tessera itself should clear the cookie.)
      return redirect(res, home);
    }

    // Tessera tells us here when a session we joined ended, wherever it was ended.
    if (url.pathname === '/backchannel-logout') return backchannel(req, res);

    return send(res, 404, page('Not found', '<p>Nothing here.</p>'));
  }

  const served = await serve({ name: 'example forum', port, host, publicUrl, handle });
  home = `${served.url}/`;
  return served;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await startFromEnv({ name: 'forum', defaultPort: 3002, start: startForum });
