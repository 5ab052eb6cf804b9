// @ts-check
// Example forum: a stock OpenID Connect relying party. It knows nothing of Tessera's own API:
// it signs users in with the authorization code flow (PKCE) through openid-client, keeps
// its own sessions, signs out with RP-initiated logout, and ends its sessions when Tessera
// sends a back-channel logout token (verified with the SDK's receiver). Any OIDC app plugs
// in the same way (docs/oidc.md). The site next to it uses Tessera's own API instead.
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
 *   `id_token_signed_response_alg` (the SDK's receiver accepts those).
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startForum({ port = 0, host = '127.0.0.1', tesseraUrl, clientId, clientSecret, publicUrl, log = console.log }) {
  const title = 'Example forum';
  const issuer = new URL(tesseraUrl);
  // Discovery: every endpoint comes from Tessera's /.well-known/openid-configuration.
  // (Plain http is for this local demo only.)
  const config = await oidc.discovery(issuer, clientId, clientSecret, undefined, issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {});
  /** @type {Map<string, { sub: string, username: string, sid: string, idToken: string }>} forum session id → sign-in */
  const sessions = new Map();
  /** @type {Map<string, { verifier: string, state: string, nonce: string }>} pending sign-ins */
  const pending = new Map();
  const csrfKey = randomBytes(32);
  let home = '';

  const receiver = createBackchannelReceiver({
    issuer: tesseraUrl,
    clientId,
    // Tessera names the session it ended (sid); a user-wide end without sid ends them all.
    onLogout({ sid, sub }) {
      let dropped = 0;
      for (const [id, s] of sessions) {
        if (sid !== undefined ? s.sid === sid : s.sub === sub) {
          sessions.delete(id);
          dropped += 1;
        }
      }
      log(`[forum] back-channel logout from Tessera: ${sid ? `session ${sid}` : `every session of user ${sub}`} ended (${dropped} forum session${dropped === 1 ? '' : 's'} ended)`);
    },
  });
  const backchannel = createBackchannelHandler(receiver, { onError: (error) => console.error('forum: back-channel logout failed:', error) });

  /** @param {import('node:http').ServerResponse} res @param {string} name @param {string} value @param {number} maxAge */
  const setCookie = (res, name, value, maxAge) => {
    const existing = res.getHeader('set-cookie');
    const list = Array.isArray(existing) ? existing : existing ? [String(existing)] : [];
    res.setHeader('set-cookie', [...list, `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}`]);
  };

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', home);
    const sessionId = readCookie(req.headers.cookie, SESSION_COOKIE);
    const me = sessionId ? sessions.get(sessionId) : undefined;

    if (req.method === 'GET' && url.pathname === '/') {
      if (!me || !sessionId) return send(res, 200, page(title, '<p>Not signed in.</p><p><a href="/signin">Sign in</a> <small>(OpenID Connect)</small></p>'));
      return send(res, 200, page(title, `<p>Signed in as <strong>${esc(me.username)}</strong> <small>(session <code data-session="${esc(me.sid)}">${esc(me.sid)}</code>)</small></p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${csrfFor(csrfKey, sessionId)}"><button type="submit">Sign out everywhere (OpenID Connect logout)</button></form>`));
    }

    if (req.method === 'GET' && url.pathname === '/signin') {
      const attempt = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
      const key = randomBytes(16).toString('base64url');
      pending.set(key, attempt);
      setTimeout(() => pending.delete(key), 10 * 60_000).unref();
      setCookie(res, PENDING_COOKIE, key, 600);
      const target = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${home}callback`,
        scope: 'openid profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(attempt.verifier),
        code_challenge_method: 'S256',
        state: attempt.state,
        nonce: attempt.nonce,
      });
      return redirect(res, target.toString());
    }

    if (req.method === 'GET' && url.pathname === '/callback') {
      const key = readCookie(req.headers.cookie, PENDING_COOKIE);
      const attempt = key ? pending.get(key) : undefined;
      if (!key || !attempt) return send(res, 400, page('Sign-in failed', '<p>This sign-in was not started here (or took too long). <a href="/">Try again</a>.</p>'));
      pending.delete(key);
      try {
        // Checks iss (RFC 9207), state, the code exchange with PKCE, the ID token and nonce.
        const tokens = await oidc.authorizationCodeGrant(config, url, { pkceCodeVerifier: attempt.verifier, expectedState: attempt.state, expectedNonce: attempt.nonce, idTokenExpected: true });
        const claims = /** @type {import('openid-client').IDToken} */ (tokens.claims());
        const id = randomBytes(24).toString('base64url');
        sessions.set(id, { sub: claims.sub, username: String(claims.preferred_username ?? claims.sub), sid: String(claims.sid), idToken: /** @type {string} */ (tokens.id_token) });
        setCookie(res, SESSION_COOKIE, id, 86_400);
        setCookie(res, PENDING_COOKIE, '', 0);
        return redirect(res, home);
      } catch (error) {
        const reason = /** @type {{ error?: string }} */ (error).error ?? 'error';
        return send(res, 400, page('Sign-in failed', `<p>Tessera did not sign you in (${esc(reason)}). <a href="/">Back</a></p>`));
      }
    }

    if (req.method === 'POST' && url.pathname === '/logout') {
      const form = await readForm(req);
      if (!me || !sessionId) return redirect(res, home);
      if (!isOwnSignOutForm(req, form, { home, csrfKey, token: sessionId })) return send(res, 403, page('Sign-out refused', '<p>This sign-out form did not come from this forum. Reload the page and try again.</p>'));
      // Our own session first; then RP-initiated logout ends the Tessera session everywhere
      // (the site hears of it by back-channel) and sends the browser back here.
      sessions.delete(sessionId);
      setCookie(res, SESSION_COOKIE, '', 0);
      return redirect(res, oidc.buildEndSessionUrl(config, { id_token_hint: me.idToken, post_logout_redirect_uri: home }).toString());
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
