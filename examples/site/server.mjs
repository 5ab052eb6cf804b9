// @ts-check
// Example site: shows who is signed in with Tessera and signs out with the *browser* flow
// (logout URL + one-time logout token). Plain node:http and fetch, no SDK, so every call
// to Tessera is visible. Run: TESSERA_CLIENT_ID=… TESSERA_CLIENT_SECRET=… node server.mjs
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

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
 * @param {{ port?: number, host?: string, tesseraUrl: string, clientId: string, clientSecret: string, publicUrl?: string }} options
 *   `publicUrl` defaults to http://<host>:<actual port>; its home (`<publicUrl>/`) must be
 *   one of the app's registered `return_urls`. The client secret authenticates the app's
 *   server-side whoami calls, which record the app as having joined the session.
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startSite({ port = 0, host = '127.0.0.1', tesseraUrl, clientId, clientSecret, publicUrl }) {
  // HTTP Basic as in RFC 6749 §2.3.1: id and secret are form-encoded before base64.
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
  // Signs the per-session CSRF tokens of our forms; a new key per process is enough.
  const csrfKey = randomBytes(32);
  let home = '';

  /** Who is signed in, asked server side: the answer is Tessera's, not a guess from a cookie. */
  async function whoami(/** @type {string} */ token) {
    // The token goes in X-Session-Token rather than forwarding the browser's Cookie header:
    // Tessera sees only the session token, never the other cookies of this app.
    // Asking with our client credentials records this app as having joined the session, so
    // the session's app list (and every later logout notice) includes it.
    const res = await fetch(`${tesseraUrl}/v1/whoami`, { headers: { 'x-session-token': token, authorization: basic }, signal: AbortSignal.timeout(5000) });
    if (res.status === 401) return null; // ended, expired or unknown: signed out
    if (!res.ok) throw new Error(`Tessera /v1/whoami answered ${res.status}`);
    return /** @type {{ session: { handle: string }, user: { username: string } }} */ (await res.json());
  }

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', home);
    const token = readCookie(req.headers.cookie, SESSION_COOKIE);

    if (req.method === 'GET' && url.pathname === '/') {
      const me = token ? await whoami(token) : null;
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
      // Our own CSRF check. SameSite=Lax keeps other *sites* out, but every app on this host
      // is the same site, so a sibling app's page could still post here: the form must carry
      // the token we derived from this very session, and the Origin (sent by browsers on
      // POST) must be ours.
      const origin = req.headers.origin;
      if ((origin !== undefined && origin !== new URL(home).origin) || !csrfMatches(csrfKey, token, form.get('csrf'))) {
        return send(res, 403, page('Sign-out refused', '<p>This sign-out form did not come from this site. Reload the page and try again.</p>'));
      }
      // Ask Tessera for a logout URL (a one-time logout token bound to this session) and send
      // the browser there: the browser must visit Tessera so that Tessera clears its cookie.
      // Tessera ends the session everywhere and sends the browser back to our home (303).
      const r = await fetch(`${tesseraUrl}/v1/logout/browser?return_to=${encodeURIComponent(home)}`, { headers: { 'x-session-token': token }, signal: AbortSignal.timeout(5000) });
      if (r.status === 401) return redirect(res, home); // already ended elsewhere
      if (!r.ok) throw new Error(`Tessera /v1/logout/browser answered ${r.status}`);
      const { logout_url: logoutUrl } = /** @type {{ logout_url: string }} */ (await r.json());
      return redirect(res, logoutUrl);
    }

    return send(res, 404, page('Not found', '<p>Nothing here.</p>'));
  }

  const server = createServer((req, res) => {
    // Fail closed: if Tessera cannot be asked, nobody is shown as signed in.
    handle(req, res).catch((error) => {
      console.error('example site:', error);
      send(res, 502, page('Tessera unavailable', '<p>Could not ask Tessera who is signed in. Try again shortly.</p>'));
    });
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve(undefined)));
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  const url = (publicUrl ?? `http://${host}:${address.port}`).replace(/\/$/, '');
  home = `${url}/`;
  return {
    url,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** HMAC of the session token: only a page rendered for this session can carry it. */
function csrfFor(/** @type {Buffer} */ key, /** @type {string} */ token) {
  return createHmac('sha256', key).update(token).digest('base64url');
}

function csrfMatches(/** @type {Buffer} */ key, /** @type {string} */ token, /** @type {string | null} */ given) {
  const expected = Buffer.from(csrfFor(key, token));
  const actual = Buffer.from(given ?? '');
  return expected.length === actual.length && timingSafeEqual(expected, actual); // constant time
}

/** @returns {string | null} */
function readCookie(/** @type {string | undefined} */ header, /** @type {string} */ name) {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/** Reads a small url-encoded form body (a sign-out form has one field). */
async function readForm(/** @type {import('node:http').IncomingMessage} */ req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 4096) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function esc(/** @type {string} */ text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(/** @type {string} */ title, /** @type {string} */ body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

function send(/** @type {import('node:http').ServerResponse} */ res, /** @type {number} */ status, /** @type {string} */ html) {
  // Pages depend on the session: never cached; never framed (clickjacking of the sign-out button).
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-frame-options': 'DENY' }).end(html);
}

function redirect(/** @type {import('node:http').ServerResponse} */ res, /** @type {string} */ location) {
  res.writeHead(303, { location, 'cache-control': 'no-store' }).end(); // 303: the next request is a GET
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env;
  if (!env.TESSERA_CLIENT_ID) throw new Error('Set TESSERA_CLIENT_ID (register the app: POST /admin/api/apps with return_urls ["http://127.0.0.1:3001/"])');
  const site = await startSite({ port: Number(env.PORT ?? 3001), tesseraUrl: env.TESSERA_URL ?? 'http://127.0.0.1:4000', clientId: env.TESSERA_CLIENT_ID, clientSecret: env.TESSERA_CLIENT_SECRET, publicUrl: env.PUBLIC_URL });
  console.log(`Example site at ${site.url}/`);
}
