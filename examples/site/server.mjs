// @ts-check
// Example site: shows who is signed in with Tessera and signs out with the *browser* flow
// (logout URL + one-time logout token). Plain node:http and fetch, so every call to Tessera
// is visible; only the back-channel logout receiver (token verification) comes from the
// SDK. What it shares with the forum is in ../shared/example-app.mjs.
// Run: TESSERA_CLIENT_ID=… TESSERA_CLIENT_SECRET=… node server.mjs
import { pathToFileURL } from 'node:url';
import { startExampleApp } from '../shared/example-app.mjs';
import { startFromEnv } from '../shared/http.mjs';

/**
 * Starts the example site.
 *
 * @example
 * const site = await startSite({ port: 3001, tesseraUrl: 'http://127.0.0.1:4000', clientId, clientSecret });
 * console.log(site.url); await site.close();
 *
 * @param {import('../shared/example-app.mjs').ExampleAppOptions} options see ExampleAppOptions
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export function startSite(options) {
  // Server-side calls go to Tessera's API URL (by default its public URL).
  const { tesseraUrl, tesseraApiUrl = tesseraUrl } = options;
  return startExampleApp({
    ...options,
    name: 'site',
    signOutLabel: 'Sign out of all apps',
    signedOutLine: 'You signed out. Tessera ended your session at every app and cleared its cookie in this browser.',
    async endSession({ token, home }) {
      // Ask Tessera for a logout URL (a one-time logout token bound to this session) and send
      // the browser there: the browser must visit Tessera so that Tessera clears its cookie.
      // Tessera ends the session everywhere and sends the browser back to our home (303).
      const r = await fetch(`${tesseraApiUrl}/v1/logout/browser?return_to=${encodeURIComponent(home)}`, { headers: { 'x-session-token': token }, signal: AbortSignal.timeout(5000) });
      if (r.status === 401) return home; // already ended elsewhere
      if (!r.ok) throw new Error(`Tessera /v1/logout/browser answered ${r.status}`);
      const { logout_url: logoutUrl } = /** @type {{ logout_url: string }} */ (await r.json());
      return logoutUrl;
    },
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await startFromEnv({ name: 'site', defaultPort: 3001, start: startSite });
