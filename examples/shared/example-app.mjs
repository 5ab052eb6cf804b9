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
 * @typedef {{ port?: number, host?: string, tesseraUrl: string, tesseraApiUrl?: string, clientId: string, clientSecret: string, publicUrl?: string, cacheSeconds?: number, log?: (line: string) => void }} ExampleAppOptions
 *   `tesseraUrl` is Tessera's public URL (what browsers open, and the issuer of its
 *   tokens); `tesseraApiUrl` is where this app's server reaches Tessera (default: the same;
 *   set it when the server sees Tessera under another name, as in a container network).
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
 * const app = await startExampleApp({ name: 'site', signOutLabel: 'Sign out', signedOutLine: 'You signed out.', endSession: async ({ home }) => home, tesseraUrl, clientId, clientSecret });
 *
 * @param {ExampleAppOptions & { name: string, signOutLabel: string, signedOutLine: string, endSession: (input: { token: string, home: string }) => Promise<string> }} options
 *   `endSession` ends the browser's session at Tessera and returns where to send the browser;
 *   `signedOutLine` is what the home page says right after this app's own sign-out.
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startExampleApp({ name, signOutLabel, signedOutLine, endSession, port = 0, host = '127.0.0.1', tesseraUrl, tesseraApiUrl = tesseraUrl, clientId, clientSecret, publicUrl, cacheSeconds = 0, log = console.log }) {
  const title = `Example ${name}`;
  const sessions = createSessionLookup({ tesseraUrl: tesseraApiUrl, clientId, clientSecret, cacheSeconds });
  const backchannel = createBackchannelEndpoint({ name, issuer: tesseraUrl, tesseraUrl: tesseraApiUrl, clientId, sessions, log });
  // Signs the per-session CSRF tokens of our forms; a new key per process is enough.
  const csrfKey = randomBytes(32);
  // This app's own small cookies, only to say on the page what just happened: the session
  // it last showed this browser (a new one means "you just signed in"; a vanished one,
  // "your session ended elsewhere") and a one-shot note after our own sign-out. Named after
  // the app: cookies are scoped by host, not port, so the site and the forum on one host
  // would otherwise share them. They carry no authority: who is signed in is always
  // Tessera's answer.
  const SEEN_COOKIE = `example_${name}_seen`;
  const NOTE_COOKIE = `example_${name}_note`;
  let home = '';

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', home);
    const token = readCookie(req.headers.cookie, SESSION_COOKIE);

    if (req.method === 'GET' && url.pathname === '/') {
      const me = token ? await sessions.lookup(token) : null;
      const seen = readCookie(req.headers.cookie, SEEN_COOKIE);
      const note = readCookie(req.headers.cookie, NOTE_COOKIE);
      const cookies = [];
      if (note) cookies.push(clearCookie(NOTE_COOKIE));
      if (!me || !token) {
        if (seen) cookies.push(clearCookie(SEEN_COOKIE));
        const line = note === 'signed-out' ? signedOutLine
          : seen ? `Your session ended elsewhere (at another app, on another device, or by an administrator), so you are signed out of this ${name} too.`
          : 'You are not signed in.';
        const signIn = `${tesseraUrl}/login?return_to=${encodeURIComponent(home)}&client_id=${encodeURIComponent(clientId)}`;
        return send(res, 200, page(title, {
          account: `<a class="button" href="${esc(signIn)}">Sign in</a>`,
          status: line,
          body: `<p data-signed-out>Not signed in. Sign in with Tessera: one sign-in for this ${esc(name)} and every other app of the site.</p>`,
        }), cookies);
      }
      const handleNow = me.session.handle;
      const line = seen === handleNow ? `You are signed in as ${me.user.username}.`
        : `You are signed in with Tessera as ${me.user.username}: this ${name} joined your session ${handleNow}${seen ? ' (a new one: your previous session ended)' : ''}.`;
      if (seen !== handleNow) cookies.push(`${SEEN_COOKIE}=${handleNow}; Path=/; HttpOnly; SameSite=Lax`);
      const who = me.user.first_name ? `${me.user.first_name} (${me.user.username})` : me.user.username;
      return send(res, 200, page(title, {
        account: `<span class="user" data-user="${esc(me.user.username)}">${esc(who)}</span>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${csrfFor(csrfKey, token)}"><button type="submit">${esc(signOutLabel)}</button></form>`,
        status: line,
        body: `<p>Signed in as <strong>${esc(me.user.username)}</strong> <small>(session <code data-session="${esc(handleNow)}">${esc(handleNow)}</code>)</small></p>
<p>Welcome back. Everything on this ${esc(name)} is yours to read; sign out above when you are done.</p>`,
      }), cookies);
    }

    if (req.method === 'POST' && url.pathname === '/logout') {
      const form = await readForm(req);
      if (!token) return redirect(res, home); // nothing to end
      if (!isOwnSignOutForm(req, form, { home, csrfKey, token })) {
        return send(res, 403, page('Sign-out refused', { status: `This sign-out form did not come from this ${name}. Reload the page and try again.`, body: '' }));
      }
      sessions.forget(token); // our own state first; Tessera's back-channel notice follows
      return redirect(res, await endSession({ token, home }), [`${NOTE_COOKIE}=signed-out; Path=/; HttpOnly; SameSite=Lax; Max-Age=60`, clearCookie(SEEN_COOKIE)]);
    }

    // Tessera tells us here when a session we joined ended, wherever it was ended.
    if (url.pathname === '/backchannel-logout') return backchannel(req, res);

    return send(res, 404, page('Not found', { status: 'Nothing here.', body: '' }));
  }

  const served = await serve({ name: `example ${name}`, port, host, publicUrl, handle });
  home = `${served.url}/`;
  return served;
}

/** A Set-Cookie line that deletes one of our cookies. */
function clearCookie(/** @type {string} */ name) {
  return `${name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
}
