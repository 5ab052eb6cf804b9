// @ts-check
// What the two example apps share for talking to Tessera: asking who is signed in (with a
// small local cache, as real apps keep their own sessions) and receiving Tessera's
// back-channel logout, which is what makes such a cache safe.
import { createBackchannelHandler, createBackchannelReceiver } from '@tessera/sdk/backchannel';
import { basicAuth } from './http.mjs';

/** @typedef {{ session: { handle: string, created_at: string }, user: { id: string, username: string, first_name?: string | null } }} Me */

/**
 * Who is signed in, asked server side: the answer is Tessera's, not a guess from a cookie.
 * With `cacheSeconds` > 0 an answer is kept that long per session token, so most page views
 * do not call Tessera. A kept answer would outlive a logout made elsewhere, so a cache is
 * only safe when Tessera tells the app of every logout: register the app's back-channel
 * logout URI, and let {@link createBackchannelEndpoint} drop what a logout ended.
 *
 * @example
 * const sessions = createSessionLookup({ tesseraUrl, clientId, clientSecret, cacheSeconds: 60 });
 * const me = await sessions.lookup(token); // null when signed out
 *
 * @param {{ tesseraUrl: string, clientId: string, clientSecret: string, cacheSeconds?: number }} options
 */
export function createSessionLookup({ tesseraUrl, clientId, clientSecret, cacheSeconds = 0 }) {
  const basic = basicAuth(clientId, clientSecret);
  /** @type {Map<string, { me: Me, until: number }>} session token → answer, until when it is kept */
  const cache = new Map();

  async function whoami(/** @type {string} */ token) {
    // The token goes in X-Session-Token rather than forwarding the browser's Cookie header:
    // Tessera sees only the session token, never the other cookies of this app.
    // Asking with our client credentials records this app as having joined the session, so
    // the session's app list (and every later logout notice) includes it.
    const res = await fetch(`${tesseraUrl}/v1/whoami`, { headers: { 'x-session-token': token, authorization: basic }, signal: AbortSignal.timeout(5000) });
    if (res.status === 401) return null; // ended, expired or unknown: signed out
    if (!res.ok) throw new Error(`Tessera /v1/whoami answered ${res.status}`);
    return /** @type {Me} */ (await res.json());
  }

  return {
    /** @returns {Promise<Me | null>} */
    async lookup(/** @type {string} */ token) {
      const now = Date.now();
      const kept = cache.get(token);
      if (kept && kept.until > now) return kept.me;
      cache.delete(token);
      const me = await whoami(token);
      if (me && cacheSeconds > 0) {
        // Small and simple: expired answers are swept whenever a new one is kept.
        for (const [key, entry] of cache) if (entry.until <= now) cache.delete(key);
        cache.set(token, { me, until: now + cacheSeconds * 1000 });
      }
      return me;
    },
    /** Forgets one token's answer (this app's own sign-out ends its local state first). */
    forget(/** @type {string} */ token) {
      cache.delete(token);
    },
    /**
     * Drops every kept answer of a session the logout ended: the session `sid`, or, for a
     * user-wide logout, the user's sessions it listed or that began before it — never one
     * the user started after it (a retried notice can arrive late). Returns how many.
     * @param {import('@tessera/sdk/backchannel').BackchannelLogout} logout
     */
    drop(logout) {
      let dropped = 0;
      for (const [token, { me }] of cache) {
        if (logout.sid === undefined && me.user.id !== logout.sub) continue;
        if (logout.covers({ sid: me.session.handle, startedAt: Date.parse(me.session.created_at) })) {
          cache.delete(token);
          dropped += 1;
        }
      }
      return dropped;
    },
  };
}

/**
 * The app's `POST /backchannel-logout` endpoint: Tessera POSTs an OIDC back-channel logout
 * token there when a session this app joined ends (any way: sign-out at another app, an
 * admin, expiry, a password change). The SDK's receiver checks the token against Tessera's
 * published keys (signature, `typ`, issuer, audience = our client id, times, the logout
 * event, no replay) and only then calls us; we drop the local state of that session and
 * answer 200, which Tessera records as "delivered".
 *
 * @example
 * const backchannel = createBackchannelEndpoint({ name: 'forum', issuer: tesseraUrl, tesseraUrl, clientId, sessions, log: console.log });
 * if (req.method === 'POST' && url.pathname === '/backchannel-logout') return backchannel(req, res);
 *
 * @param {{ name: string, issuer: string, tesseraUrl: string, clientId: string, sessions: ReturnType<typeof createSessionLookup>, log: (line: string) => void }} options
 *   `issuer` is Tessera's public URL (the `iss` of its tokens); `tesseraUrl` is where this
 *   server fetches Tessera's keys (often the same).
 */
export function createBackchannelEndpoint({ name, issuer, tesseraUrl, clientId, sessions, log }) {
  const receiver = createBackchannelReceiver({
    // Tessera's public URL is the issuer of its tokens; its keys are at /.well-known/jwks.json.
    issuer,
    jwksUri: `${tesseraUrl}/.well-known/jwks.json`,
    clientId,
    onLogout(logout) {
      const { sid, sub } = logout;
      const dropped = sessions.drop(logout);
      log(`[${name}] back-channel logout from Tessera: ${sid ? `session ${sid}` : `every session of user ${sub}`} ended (${dropped} cached sign-in${dropped === 1 ? '' : 's'} dropped)`);
    },
  });
  return createBackchannelHandler(receiver, { onError: (error) => console.error(`${name}: back-channel logout failed:`, error) });
}
