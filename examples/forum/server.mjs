// @ts-check
// Example forum: a stock OpenID Connect relying party. It knows nothing of Tessera's own API:
// it signs users in with the authorization code flow (PKCE) through openid-client, keeps
// its own sessions, signs out with RP-initiated logout, and ends its sessions when Tessera
// sends a back-channel logout token (verified with the SDK's receiver). Any OIDC app plugs
// in the same way (docs/oidc.md). The site next to it uses Tessera's own API instead; both
// look alike (examples/shared/http.mjs: a header with the user's name and a sign-out
// button, and a line saying what just happened).
// Run: TESSERA_CLIENT_ID=… TESSERA_CLIENT_SECRET=… node server.mjs
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import * as oidc from 'openid-client';
import { createBackchannelHandler, createBackchannelReceiver } from '@tessera/sdk/backchannel';
import { csrfFor, esc, isOwnSignOutForm, page, readCookie, readForm, redirect, send, serve, startFromEnv } from '../shared/http.mjs';

// The forum's own session cookie: the forum does not read Tessera's cookie at all.
const SESSION_COOKIE = 'forum_session';
// Binds a sign-in in progress to the browser that started it (state, nonce, PKCE verifier).
const PENDING_COOKIE = 'forum_oidc';
// A one-shot note for the page to say what just happened ("signed-in", "signed-out"). It
// carries no authority: who is signed in is the forum's own session, set from the ID token.
const NOTE_COOKIE = 'forum_note';
const SIGN_OUT_LABEL = 'Sign out of all apps (OpenID Connect logout)';

/**
 * Starts the example forum.
 *
 * @example
 * const forum = await startForum({ port: 3002, tesseraUrl: 'http://127.0.0.1:4000', clientId, clientSecret });
 * console.log(forum.url); await forum.close();
 *
 * @param {import('../shared/example-app.mjs').ExampleAppOptions} options the app's
 *   registration must list `<publicUrl>/callback` in `redirect_uris`, `<publicUrl>/` in
 *   `post_logout_redirect_uris`, `<publicUrl>/backchannel-logout` as `backchannel_logout_uri`
 *   with `backchannel_logout_session_required`, and EdDSA (or ES256) as
 *   `id_token_signed_response_alg` (the SDK's receiver accepts those). `tesseraUrl` is the
 *   issuer (what browsers open); `tesseraApiUrl`, when set, is where this server reaches it.
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startForum({ port = 0, host = '127.0.0.1', tesseraUrl, tesseraApiUrl = tesseraUrl, clientId, clientSecret, publicUrl, log = console.log }) {
  const title = 'Example forum';
  const issuer = new URL(tesseraUrl);
  /** @type {import('openid-client').DiscoveryRequestOptions} */
  const options = {};
  // (Plain http is for this local demo only.)
  if (issuer.protocol === 'http:') options.execute = [oidc.allowInsecureRequests];
  // The server may reach Tessera under another name than browsers do (a container network):
  // every server-side request to the issuer goes to the API URL, the issuer stays the same.
  if (tesseraApiUrl !== tesseraUrl) options[oidc.customFetch] = (url, init) => fetch(url.startsWith(tesseraUrl) ? `${tesseraApiUrl}${url.slice(tesseraUrl.length)}` : url, init);
  // Discovery: every endpoint comes from Tessera's /.well-known/openid-configuration.
  const config = await oidc.discovery(issuer, clientId, clientSecret, undefined, options);
  /** @type {Map<string, { sub: string, username: string, name: string, sid: string, startedAt: number | null, idToken: string }>} forum session id → sign-in (startedAt: the Tessera sign-in, auth_time) */
  const sessions = new Map();
  /** @type {Map<string, { verifier: string, state: string, nonce: string }>} pending sign-ins */
  const pending = new Map();
  const csrfKey = randomBytes(32);
  let home = '';

  const receiver = createBackchannelReceiver({
    issuer: tesseraUrl,
    jwksUri: `${tesseraApiUrl}/.well-known/jwks.json`,
    clientId,
    // Tessera names the session it ended (sid); a user-wide end names the sessions it ended
    // (sids) and when (revoked_at). `covers` decides, so a late or retried notice never ends
    // a forum session of a Tessera session the user started after the revocation.
    onLogout(logout) {
      const { sid, sub } = logout;
      let dropped = 0;
      for (const [id, s] of sessions) {
        if (s.sub === sub && logout.covers({ sid: s.sid, startedAt: s.startedAt })) {
          sessions.delete(id);
          dropped += 1;
        }
      }
      log(`[forum] back-channel logout from Tessera: ${sid ? `session ${sid}` : `every session of user ${sub}`} ended (${dropped} forum session${dropped === 1 ? '' : 's'} ended)`);
    },
  });
  const backchannel = createBackchannelHandler(receiver, { onError: (error) => console.error('forum: back-channel logout failed:', error) });

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', home);
    const sessionId = readCookie(req.headers.cookie, SESSION_COOKIE);
    const me = sessionId ? sessions.get(sessionId) : undefined;

    if (req.method === 'GET' && url.pathname === '/') {
      const note = readCookie(req.headers.cookie, NOTE_COOKIE);
      const cookies = note ? [cookie(NOTE_COOKIE, '', 0)] : [];
      if (!me || !sessionId) {
        // A forum session cookie whose session is gone: Tessera ended it (back-channel logout).
        if (sessionId) cookies.push(cookie(SESSION_COOKIE, '', 0));
        const line = note === 'signed-out' ? 'You signed out. The forum ended its own session and sent you to Tessera\'s end-session endpoint (RP-initiated logout), which ended your session at every app.'
          : sessionId ? 'Your session ended elsewhere (at another app, on another device, or by an administrator): Tessera told the forum by back-channel logout, so you are signed out of this forum too.'
          : 'You are not signed in.';
        return send(res, 200, page(title, {
          account: '<a class="button" href="/signin">Sign in</a>',
          status: line,
          body: '<p data-signed-out>Not signed in. Sign in with Tessera (OpenID Connect): one sign-in for this forum and every other app of the site.</p>',
        }), cookies);
      }
      const line = note === 'signed-in' ? `You signed in with Tessera (OpenID Connect) as ${me.username}: the forum joined your session ${me.sid}.` : `You are signed in as ${me.username}.`;
      return send(res, 200, page(title, {
        account: `<span class="user" data-user="${esc(me.username)}">${esc(me.name)}</span>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${csrfFor(csrfKey, sessionId)}"><button type="submit">${esc(SIGN_OUT_LABEL)}</button></form>`,
        status: line,
        body: `<p>Signed in as <strong>${esc(me.username)}</strong> <small>(session <code data-session="${esc(me.sid)}">${esc(me.sid)}</code>)</small></p>
<p>Welcome back. Every thread of this forum is yours to read; sign out above when you are done.</p>`,
      }), cookies);
    }

    if (req.method === 'GET' && url.pathname === '/signin') {
      const attempt = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
      const key = randomBytes(16).toString('base64url');
      pending.set(key, attempt);
      setTimeout(() => pending.delete(key), 10 * 60_000).unref();
      const target = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${home}callback`,
        scope: 'openid profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(attempt.verifier),
        code_challenge_method: 'S256',
        state: attempt.state,
        nonce: attempt.nonce,
      });
      return redirect(res, target.toString(), [cookie(PENDING_COOKIE, key, 600)]);
    }

    if (req.method === 'GET' && url.pathname === '/callback') {
      const key = readCookie(req.headers.cookie, PENDING_COOKIE);
      const attempt = key ? pending.get(key) : undefined;
      if (!key || !attempt) return send(res, 400, page('Sign-in failed', { account: '<a class="button" href="/signin">Sign in</a>', status: 'This sign-in was not started here (or took too long).', body: '<p><a href="/">Try again</a>.</p>' }));
      pending.delete(key);
      try {
        // Checks iss (RFC 9207), state, the code exchange with PKCE, the ID token and nonce.
        const tokens = await oidc.authorizationCodeGrant(config, url, { pkceCodeVerifier: attempt.verifier, expectedState: attempt.state, expectedNonce: attempt.nonce, idTokenExpected: true });
        const claims = /** @type {import('openid-client').IDToken} */ (tokens.claims());
        const username = String(claims.preferred_username ?? claims.sub);
        const name = typeof claims.given_name === 'string' && claims.given_name ? `${claims.given_name} (${username})` : username;
        const id = randomBytes(24).toString('base64url');
        sessions.set(id, { sub: claims.sub, username, name, sid: String(claims.sid), startedAt: typeof claims.auth_time === 'number' ? claims.auth_time * 1000 : null, idToken: /** @type {string} */ (tokens.id_token) });
        return redirect(res, home, [cookie(SESSION_COOKIE, id, 86_400), cookie(PENDING_COOKIE, '', 0), cookie(NOTE_COOKIE, 'signed-in', 60)]);
      } catch (error) {
        const reason = /** @type {{ error?: string }} */ (error).error ?? 'error';
        return send(res, 400, page('Sign-in failed', { account: '<a class="button" href="/signin">Sign in</a>', status: `Tessera did not sign you in (${reason}).`, body: '<p><a href="/">Back</a></p>' }));
      }
    }

    if (req.method === 'POST' && url.pathname === '/logout') {
      const form = await readForm(req);
      if (!me || !sessionId) return redirect(res, home);
      if (!isOwnSignOutForm(req, form, { home, csrfKey, token: sessionId })) return send(res, 403, page('Sign-out refused', { status: 'This sign-out form did not come from this forum. Reload the page and try again.', body: '' }));
      // Our own session first; then RP-initiated logout ends the Tessera session everywhere
      // (the site hears of it by back-channel) and sends the browser back here.
      sessions.delete(sessionId);
      return redirect(res, oidc.buildEndSessionUrl(config, { id_token_hint: me.idToken, post_logout_redirect_uri: home }).toString(), [cookie(SESSION_COOKIE, '', 0), cookie(NOTE_COOKIE, 'signed-out', 60)]);
    }

    // Tessera tells us here when a session we joined ended, wherever it was ended.
    if (url.pathname === '/backchannel-logout') return backchannel(req, res);

    return send(res, 404, page('Not found', { status: 'Nothing here.', body: '' }));
  }

  const served = await serve({ name: 'example forum', port, host, publicUrl, handle });
  home = `${served.url}/`;
  return served;
}

/** A Set-Cookie line for one of the forum's own cookies (max age 0 deletes it). */
function cookie(/** @type {string} */ name, /** @type {string} */ value, /** @type {number} */ maxAge) {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await startFromEnv({ name: 'forum', defaultPort: 3002, start: startForum });
