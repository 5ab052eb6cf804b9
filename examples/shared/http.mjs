// @ts-check
// What the two example apps share: cookies, forms, CSRF, pages and serving. Plain node:http.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

/** HTTP Basic client credentials as in RFC 6749 §2.3.1: id and secret are form-encoded before base64. */
export function basicAuth(/** @type {string} */ clientId, /** @type {string} */ clientSecret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

/**
 * Serves `handle` on host:port. If the handler fails (Tessera unreachable), the page says so
 * and nobody is shown as signed in: fail closed.
 *
 * @param {{ name: string, port: number, host: string, publicUrl?: string, handle: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => Promise<unknown> }} options
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function serve({ name, port, host, publicUrl, handle }) {
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      console.error(`${name}:`, error);
      send(res, 502, page('Tessera unavailable', { status: 'Could not ask Tessera who is signed in. Try again shortly.', body: '' }));
    });
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve(undefined)));
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  const url = (publicUrl ?? `http://${host}:${address.port}`).replace(/\/$/, '');
  return {
    url,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** HMAC of the session token: only a page rendered for this session can carry it. */
export function csrfFor(/** @type {Buffer} */ key, /** @type {string} */ token) {
  return createHmac('sha256', key).update(token).digest('base64url');
}

/**
 * Our own check of a sign-out form. SameSite=Lax keeps other *sites* out, but every app on
 * this host is the same site, so a sibling app's page could still post here: the form must
 * carry the token we derived from this very session, and the Origin (sent by browsers on
 * POST) must be ours.
 */
export function isOwnSignOutForm(/** @type {import('node:http').IncomingMessage} */ req, /** @type {URLSearchParams} */ form, /** @type {{ home: string, csrfKey: Buffer, token: string }} */ { home, csrfKey, token }) {
  const origin = req.headers.origin;
  return (origin === undefined || origin === new URL(home).origin) && csrfMatches(csrfKey, token, form.get('csrf'));
}

/**
 * Starts an example app from the environment when its file is run directly
 * (`TESSERA_CLIENT_ID=… TESSERA_CLIENT_SECRET=… node server.mjs`).
 *
 * @param {{ name: string, defaultPort: number, start: (options: any) => Promise<{ url: string }> }} app
 */
export async function startFromEnv({ name, defaultPort, start }) {
  const env = process.env;
  const port = Number(env.PORT ?? defaultPort);
  if (!env.TESSERA_CLIENT_ID || !env.TESSERA_CLIENT_SECRET) throw new Error(`Set TESSERA_CLIENT_ID and TESSERA_CLIENT_SECRET (register the app: POST /admin/api/apps with return_urls ["http://127.0.0.1:${port}/"]; with backchannel_logout_uri "http://127.0.0.1:${port}/backchannel-logout", CACHE_SECONDS=60 caches sign-ins safely)`);
  const started = await start({ port, tesseraUrl: env.TESSERA_URL ?? 'http://127.0.0.1:4000', tesseraApiUrl: env.TESSERA_API_URL, clientId: env.TESSERA_CLIENT_ID, clientSecret: env.TESSERA_CLIENT_SECRET, publicUrl: env.PUBLIC_URL, cacheSeconds: Number(env.CACHE_SECONDS ?? 0) });
  console.log(`Example ${name} at ${started.url}/`);
}

export function csrfMatches(/** @type {Buffer} */ key, /** @type {string} */ token, /** @type {string | null} */ given) {
  const expected = Buffer.from(csrfFor(key, token));
  const actual = Buffer.from(given ?? '');
  return expected.length === actual.length && timingSafeEqual(expected, actual); // constant time
}

/** @returns {string | null} */
export function readCookie(/** @type {string | undefined} */ header, /** @type {string} */ name) {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/** Reads a small url-encoded form body (a sign-out form has one field). */
export async function readForm(/** @type {import('node:http').IncomingMessage} */ req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 4096) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

export function esc(/** @type {string} */ text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// A small real-looking app: a header with the app's name and the account area (the user's
// name and a sign-out button, or "Sign in"), a line saying what just happened, the content.
const STYLE = `*{box-sizing:border-box}body{margin:0;font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d2330}
header{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;justify-content:space-between;padding:.8rem 1.2rem;background:#1d2330;color:#fff}
header strong{font-size:1.1rem}.account{display:flex;gap:.6rem;align-items:center;flex-wrap:wrap}.account form{margin:0}
button,a.button{padding:.45rem .9rem;border:0;border-radius:6px;background:#2d5bd7;color:#fff;font-size:.95rem;text-decoration:none;cursor:pointer}
main{max-width:40rem;margin:1.2rem auto;padding:0 1.2rem;overflow-wrap:anywhere}
.status{padding:.6rem .8rem;border-radius:6px;background:#e8eefc;border:1px solid #c5d3f6}`;

/**
 * An app page.
 * @param {string} title
 * @param {{ account?: string, status: string, body: string }} parts `account` and `body` are HTML; `status` is text
 */
export function page(title, { account = '', status, body }) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head>
<body><header><strong>${esc(title)}</strong><div class="account">${account}</div></header>
<main><p class="status" role="status">${esc(status)}</p>${body}</main></body></html>`;
}

export function send(/** @type {import('node:http').ServerResponse} */ res, /** @type {number} */ status, /** @type {string} */ html, /** @type {string[]} */ cookies = []) {
  // Pages depend on the session: never cached; never framed (clickjacking of the sign-out button).
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-frame-options': 'DENY', ...(cookies.length ? { 'set-cookie': cookies } : {}) }).end(html);
}

export function redirect(/** @type {import('node:http').ServerResponse} */ res, /** @type {string} */ location, /** @type {string[]} */ cookies = []) {
  // 303: the next request is a GET.
  res.writeHead(303, { location, 'cache-control': 'no-store', ...(cookies.length ? { 'set-cookie': cookies } : {}) }).end();
}
