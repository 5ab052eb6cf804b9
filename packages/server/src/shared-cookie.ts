import { SignJWT, type JWTPayload } from 'jose';
import type { Config, User } from '@tessera/core';
import type { FastifyReply } from 'fastify';

/**
 * The shared parent-domain cookie read by nodebb-plugin-session-sharing
 * (github.com/julianlam/nodebb-plugin-session-sharing, library.js), so that an unmodified
 * NodeBB on a sibling subdomain signs the user in and out with Tessera. What the plugin
 * expects, and how this file meets it:
 *
 * - It reads `req.cookies[settings.cookieName]` on the server (default name `token`), so
 *   the cookie can be, and is, HttpOnly: no script on any subdomain can read the JWT.
 * - It verifies with `jwt.verify(token, settings.secret)` (jsonwebtoken): a shared HMAC
 *   secret, so HS256; jsonwebtoken also rejects the token once `exp` has passed.
 * - `normalizePayload` takes `payload[settings.payloadParent]` when a parent key is set,
 *   then reads each field from `payload[settings['payload:' + key]]` (defaults: the key
 *   itself, e.g. `id`, `username`, `email`, `firstName`, `lastName`, `picture`); it needs
 *   `id` plus a username (or first/last name to build one). Falsy values are skipped, so
 *   unset fields are simply left out here.
 * - Its `revalidate` behaviour logs the NodeBB user out when the cookie is gone: that is
 *   why Tessera clears the cookie on every logout that reaches the browser.
 */

// HS256 key bytes: the UTF-8 bytes of the secret string, as jsonwebtoken uses a string secret.
const keyCache = new WeakMap<Config, Uint8Array>();
function keyOf(config: Config): Uint8Array {
  let key = keyCache.get(config);
  if (!key) {
    key = new TextEncoder().encode(config.sharedCookie.secret ?? '');
    keyCache.set(config, key);
  }
  return key;
}

/** The cookie attributes; the same on set and clear, or browsers keep the old cookie. */
function attributes(config: Config, maxAgeSeconds?: number) {
  const domain = config.sharedCookie.domain ?? config.cookie.domain;
  return {
    path: '/',
    // The plugin reads the cookie server side; HttpOnly keeps the JWT (the user's identity
    // for every subdomain) away from scripts, as the plugin's README recommends.
    httpOnly: true,
    // Lax: sent on top-level navigations to the forum, not on cross-site subrequests or POSTs.
    sameSite: 'lax' as const,
    secure: config.cookie.secure,
    ...(domain ? { domain } : {}),
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
  };
}

/**
 * The JWT payload of the shared cookie: the user's fields under the configured claim names
 * (unset fields left out), nested under `parentKey` when one is configured, then `iat` and
 * `exp` at the top level.
 *
 * @example
 * ```ts
 * sharedCookieClaims(config, user, { now: Date.now(), expiresAt: session.expiresAt });
 * // { id: 'usr_…', username: 'alice', email: 'alice@example.com', iat: 1767225600, exp: 1769817600 }
 * ```
 */
export function sharedCookieClaims(config: Config, user: User, times: { now: number; expiresAt: number }): JWTPayload {
  const names = config.sharedCookie.claims;
  const fields: Array<[string, string | null]> = [
    [names.id, user.id],
    [names.username, user.username],
    [names.email, user.email],
    [names.firstName, user.firstName],
    [names.lastName, user.lastName],
    [names.picture, user.picture],
  ];
  const claims: Record<string, string> = {};
  for (const [name, value] of fields) if (value !== null && value !== '') claims[name] = value;
  const parent = config.sharedCookie.parentKey;
  return { ...(parent === null ? claims : { [parent]: claims }), iat: Math.floor(times.now / 1000), exp: Math.floor(times.expiresAt / 1000) };
}

/**
 * Sets the shared cookie for a session that just started at the login page (a no-op when
 * `sharedCookie.enabled` is false). It lives until the session's absolute end.
 *
 * @example
 * ```ts
 * await setSharedCookie(reply, config, started.user, { now: clock.now(), expiresAt: started.session.expiresAt });
 * ```
 */
export async function setSharedCookie(reply: FastifyReply, config: Config, user: User, times: { now: number; expiresAt: number }): Promise<void> {
  if (!config.sharedCookie.enabled) return;
  const token = await new SignJWT(sharedCookieClaims(config, user, times)).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(keyOf(config));
  const maxAge = Math.max(0, Math.floor((times.expiresAt - times.now) / 1000));
  reply.setCookie(config.sharedCookie.name, token, attributes(config, maxAge));
}

/**
 * Clears the shared cookie (same name, path and domain, Max-Age=0); a no-op when
 * `sharedCookie.enabled` is false.
 *
 * @example
 * ```ts
 * clearSessionCookie(reply, config);
 * clearSharedCookie(reply, config);
 * ```
 */
export function clearSharedCookie(reply: FastifyReply, config: Config): void {
  if (!config.sharedCookie.enabled) return;
  reply.clearCookie(config.sharedCookie.name, attributes(config));
}
