// @ts-check
// Example forum: shares the Tessera session with the site (same cookie, no second login)
// and signs out with the *server-to-server* flow: the forum's server posts the session
// token to Tessera with its own client credentials. Plain node:http and fetch; only the
// back-channel logout receiver (token verification) comes from the SDK. What it shares
// with the site is in ../shared/example-app.mjs.
// Run: TESSERA_CLIENT_ID=… TESSERA_CLIENT_SECRET=… node server.mjs
import { pathToFileURL } from 'node:url';
import { startExampleApp } from '../shared/example-app.mjs';
import { basicAuth, startFromEnv } from '../shared/http.mjs';

/**
 * Starts the example forum.
 *
 * @example
 * const forum = await startForum({ port: 3002, tesseraUrl: 'http://127.0.0.1:4000', clientId, clientSecret });
 * console.log(forum.url); await forum.close();
 *
 * @param {import('../shared/example-app.mjs').ExampleAppOptions} options see ExampleAppOptions
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export function startForum(options) {
  // Server-side calls go to Tessera's API URL (by default its public URL).
  const { tesseraUrl, tesseraApiUrl = tesseraUrl } = options;
  const basic = basicAuth(options.clientId, options.clientSecret);
  return startExampleApp({
    ...options,
    name: 'forum',
    signOutLabel: 'Sign out of all apps (server to server)',
    signedOutLine: 'You signed out. The forum asked Tessera, server to server, to end your session at every app.',
    async endSession({ token, home }) {
      // Server to server: the forum authenticates as itself and names the session by its
      // token. scope "session" ends it for every app (the site included); "app" would only
      // take the forum out of it, "user" would end every session of the user.
      const r = await fetch(`${tesseraApiUrl}/api/v1/logout`, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/json' },
        body: JSON.stringify({ token, scope: 'session' }),
        signal: AbortSignal.timeout(5000),
      });
      // 200 also when the session had already ended; 403 TOKEN_INVALID: no such session.
      if (!r.ok && r.status !== 403) throw new Error(`Tessera /api/v1/logout answered ${r.status}`);
      // The browser keeps Tessera's cookie, now naming an ended session: harmless, since
      // every app asks Tessera (or was told by back-channel logout, if it caches answers)
      // and gets 401 for it, and the next sign-in replaces it. (Use the site's browser flow
      // when Tessera itself should clear the cookie.)
      return home;
    },
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await startFromEnv({ name: 'forum', defaultPort: 3002, start: startForum });
