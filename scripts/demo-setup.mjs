// @ts-check
// The single-logout demo, as a function: Tessera and the two example apps on three local
// ports (the site on Tessera's own API, the forum a stock OpenID Connect client), both
// registered with a back-channel logout URI, a demo user. Used by
// `npm run demo` (scripts/demo.mjs) and by the end-to-end test test/e2e/demo.test.ts.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readConfig, startServer } from '@tessera/server';
import { startSite } from '@tessera/example-site';
import { startForum } from '@tessera/example-forum';

/** Stable client ids, so a second run finds the apps of the first one. */
export const DEMO_APPS = { site: 'demo-site', forum: 'demo-forum' };
/** The demo user: a stable id, so a second run finds (and re-keys) the same user. */
export const DEMO_USER = { id: 'demo-alice', username: 'alice', email: 'alice@example.test', firstName: 'Alice' };
/** How long the example apps keep a whoami answer: back-channel logout is what ends it early. */
export const DEMO_CACHE_SECONDS = 60;

/**
 * @typedef {object} Demo
 * @property {string} tesseraUrl
 * @property {string} siteUrl  the site's home, e.g. http://127.0.0.1:4001/
 * @property {string} forumUrl the forum's home
 * @property {string} adminToken valid while this demo runs
 * @property {{ username: string, password: string, id: string }} user
 * @property {string} dataDir
 * @property {() => Promise<void>} close
 */

/**
 * Starts the demo. Re-runs reuse the data directory: the apps are found by client id and
 * get a new secret (the old one was only in the previous process), their URLs are updated
 * to the ports in use, and the demo user gets a new password (which, like every password
 * change, ends the user's old sessions).
 *
 * @example
 * const demo = await startDemo({ dataDir: 'data/demo' });
 * console.log(demo.siteUrl); await demo.close();
 *
 * @param {{ port?: number, sitePort?: number, forumPort?: number, host?: string, dataDir: string, logLevel?: string, appLog?: (line: string) => void }} options
 *   `port` is Tessera's (default 4000; it must be a real port, since the issuer URL names
 *   it); the apps default to 4001 and 4002 (0 = any free port). `appLog` receives the apps'
 *   back-channel logout lines (default console.log).
 * @returns {Promise<Demo>}
 */
export async function startDemo({ port = 4000, sitePort = 4001, forumPort = 4002, host = '127.0.0.1', dataDir, logLevel = 'warn', appLog = console.log }) {
  mkdirSync(dataDir, { recursive: true });
  // A fresh bootstrap admin token per run, from configuration: it works only while this
  // process runs, and nothing about it is stored.
  const adminToken = `demo-${randomBytes(24).toString('base64url')}`;
  const config = readConfig({
    TESSERA_PORT: String(port),
    TESSERA_HOST: host,
    TESSERA_DATA_DIR: dataDir,
    // Plain http on this machine: browsers drop Secure cookies there (allowed on loopback only).
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_ADMIN_TOKEN: adminToken,
    TESSERA_LOG_LEVEL: logLevel,
  });
  const tessera = await startServer(config, { print: () => {} });
  /** @type {Array<{ close(): Promise<void> }>} */
  const started = [tessera];
  const close = async () => {
    for (const thing of started.reverse()) await thing.close().catch(() => undefined);
  };

  try {
    /** Calls the admin API; returns the status and the parsed body. */
    const admin = async (/** @type {string} */ method, /** @type {string} */ path, /** @type {unknown} */ body = undefined) => {
      const res = await fetch(`${tessera.url}/admin/api${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const expect = (/** @type {{ status: number, body: any }} */ res, /** @type {number} */ status, /** @type {string} */ what) => {
      if (res.status !== status) throw new Error(`demo: ${what} answered ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body;
    };

    /** The app's client secret: registered now, or rotated when a previous run registered it. */
    const secretOf = async (/** @type {string} */ clientId, /** @type {string} */ name) => {
      const created = await admin('POST', '/apps', { client_id: clientId, name, trusted: false });
      if (created.status === 201) return /** @type {string} */ (created.body.client_secret);
      expect(created, 409, `registering ${clientId}`);
      return /** @type {string} */ (expect(await admin('POST', `/apps/${clientId}/secret`), 200, `rotating the secret of ${clientId}`).client_secret);
    };
    const siteSecret = await secretOf(DEMO_APPS.site, 'Demo site');
    const forumSecret = await secretOf(DEMO_APPS.forum, 'Demo forum');

    const common = { host, tesseraUrl: tessera.url, cacheSeconds: DEMO_CACHE_SECONDS, log: appLog };
    const site = await startSite({ ...common, port: sitePort, clientId: DEMO_APPS.site, clientSecret: siteSecret });
    started.push(site);
    const forum = await startForum({ ...common, port: forumPort, clientId: DEMO_APPS.forum, clientSecret: forumSecret });
    started.push(forum);
    // Now that the ports are known: where each app's sign-in and sign-out may return, and
    // where Tessera tells it that a session ended.
    expect(await admin('PATCH', `/apps/${DEMO_APPS.site}`, { return_urls: [`${site.url}/`], backchannel_logout_uri: `${site.url}/backchannel-logout` }), 200, `configuring ${DEMO_APPS.site}`);
    // The forum is a stock OpenID Connect client: standard client metadata. It is not
    // trusted, so Tessera asks alice once whether the forum may sign her in (consent).
    expect(await admin('PATCH', `/apps/${DEMO_APPS.forum}`, {
      redirect_uris: [`${forum.url}/callback`],
      post_logout_redirect_uris: [`${forum.url}/`],
      backchannel_logout_uri: `${forum.url}/backchannel-logout`,
      backchannel_logout_session_required: true,
      // What the SDK's back-channel receiver, which the forum uses, accepts.
      id_token_signed_response_alg: 'EdDSA',
    }), 200, `configuring ${DEMO_APPS.forum}`);

    const password = `demo-${randomBytes(6).toString('base64url')}`;
    const rekeyed = await admin('PATCH', `/users/${DEMO_USER.id}`, { password });
    if (rekeyed.status === 404) {
      expect(await admin('POST', '/users', { id: DEMO_USER.id, username: DEMO_USER.username, email: DEMO_USER.email, first_name: DEMO_USER.firstName, password }), 201, 'creating the demo user');
    } else {
      expect(rekeyed, 200, 'setting the demo user\'s password');
    }

    return {
      tesseraUrl: tessera.url,
      siteUrl: `${site.url}/`,
      forumUrl: `${forum.url}/`,
      adminToken,
      user: { id: DEMO_USER.id, username: DEMO_USER.username, password },
      dataDir,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The environment variables that move the demo's three ports, and their defaults. */
export const DEMO_PORT_VARIABLES = /** @type {const} */ ({ port: ['TESSERA_PORT', 4000], sitePort: ['TESSERA_DEMO_SITE_PORT', 4001], forumPort: ['TESSERA_DEMO_FORUM_PORT', 4002] });

/**
 * The demo's three ports from the environment (`TESSERA_PORT`, `TESSERA_DEMO_SITE_PORT`,
 * `TESSERA_DEMO_FORUM_PORT`; defaults 4000, 4001, 4002). Throws an Error naming the variable
 * when one is not a port, or when two name the same port.
 *
 * @example
 * const ports = demoPortsFromEnv(process.env); // { port: 4000, sitePort: 4001, forumPort: 4002 }
 *
 * @param {Record<string, string | undefined>} env
 * @returns {{ port: number, sitePort: number, forumPort: number }}
 */
export function demoPortsFromEnv(env) {
  /** @type {Record<string, number>} */
  const ports = {};
  /** @type {Map<number, string>} */
  const taken = new Map();
  for (const [key, [name, fallback]] of Object.entries(DEMO_PORT_VARIABLES)) {
    const raw = env[name];
    const port = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} must be a port number from 1 to 65535, not ${JSON.stringify(raw)}`);
    if (taken.has(port)) throw new Error(`${name} and ${taken.get(port)} are both ${port}: the demo needs three different ports`);
    taken.set(port, name);
    ports[key] = port;
  }
  return /** @type {{ port: number, sitePort: number, forumPort: number }} */ (ports);
}

/**
 * What to print when the demo could not listen: names the busy port, what should have run
 * there, and the variable that moves it. Null when the error is not "address in use".
 *
 * @param {unknown} error what startDemo threw
 * @param {{ port: number, sitePort: number, forumPort: number }} ports the ports it was given
 * @returns {string | null}
 */
export function portInUseMessage(error, ports) {
  const { code, port } = /** @type {{ code?: string, port?: number }} */ (error ?? {});
  if (code !== 'EADDRINUSE') return null;
  const which = /** @type {const} */ ([['port', 'Tessera'], ['sitePort', 'the example site'], ['forumPort', 'the example forum']]).find(([key]) => ports[key] === port);
  if (!which) return `[tessera] a port the demo needs (${ports.port}, ${ports.sitePort} or ${ports.forumPort}) is in use: stop what runs there (an \`npm start\`?) or move the demo with ${Object.values(DEMO_PORT_VARIABLES).map(([name]) => name).join(', ')}.`;
  const [key, what] = which;
  return `[tessera] port ${port}, where ${what} should run, is in use: stop what runs there (an \`npm start\`?) or set ${DEMO_PORT_VARIABLES[key][0]} to a free port.`;
}

/**
 * What to do next, as lines to print.
 *
 * @param {Demo} demo
 * @param {{ dataDirShown?: string }} [options] how to name the data directory in commands
 * @returns {string[]}
 */
export function demoInstructions(demo, { dataDirShown = demo.dataDir } = {}) {
  const auth = `-H 'authorization: Bearer ${demo.adminToken}'`;
  return [
    '',
    'Tessera single-logout demo',
    `  Tessera        ${demo.tesseraUrl}   (data: ${dataDirShown})`,
    `  Example site   ${demo.siteUrl}`,
    `  Example forum  ${demo.forumUrl}`,
    `  Sign in as     ${demo.user.username} / ${demo.user.password}`,
    `  Admin token    ${demo.adminToken}   (valid while the demo runs)`,
    '',
    'Try it:',
    `  1. Open the site ${demo.siteUrl} and click "Sign in"; sign in as ${demo.user.username}.`,
    '     You are back on the site, signed in. Note the session handle it shows (ses_…).',
    `  2. Open the forum ${demo.forumUrl} and click "Sign in": it is a stock OpenID Connect app.`,
    '     No second password: Tessera asks once whether the forum may sign you in (consent), and',
    '     you are back at the forum, signed in to the same session (same ses_… handle).',
    '  3. On the site, click "Sign out of all apps".',
    '  4. Reload the forum: signed out. Tessera ended the session, cleared its cookie, and told',
    '     both apps by back-channel logout (see the "[site]" and "[forum]" lines below); the',
    '     forum ended its own session when its logout token arrived.',
    '  5. See that both apps confirmed it (status "delivered" for demo-site and demo-forum):',
    `       curl -s ${auth} ${demo.tesseraUrl}/admin/api/sessions/<handle>/deliveries`,
    `       TESSERA_DATA_DIR=${dataDirShown} npm run tessera -- deliveries list --session <handle>`,
    `  6. Why the back-channel matters: the apps keep a sign-in for ${DEMO_CACHE_SECONDS} s without asking Tessera.`,
    '     Sign in again at both, then sign out at the forum (OpenID Connect RP-initiated logout)',
    '     and reload the site: signed out at once, because Tessera told the site. Without the',
    '     notice, the site would show you signed in for up to a minute.',
    '',
    'Press Ctrl+C to stop.',
  ];
}
