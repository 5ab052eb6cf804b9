import { SignJWT, type JWTPayload } from 'jose';
import { verifiedEmailOf, type Authority, type Config, type SessionRecord, type User } from '@tessera/core';
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
 * - It looks the payload's `email` up in the forum's `email:uid` index and, on a hit, signs
 *   the bearer in as that forum user (library.js, `findOrCreateUser` → `User.getUidByEmail`).
 *   So only a verified email (`emailVerified`) is ever put in the payload; an unverified
 *   one is left out, and the plugin then matches by the `id` it stored for the user.
 * - It ignores claims it does not map, so the token also carries `sid` (the session handle)
 *   at the top level: nodebb-plugin-tessera (integrations/) reads it to refuse the cookie of
 *   a session that ended without the browser (an admin, expiry), which the cookie outlives.
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

/** The session a shared cookie is issued for. */
export type SharedCookieSession = Pick<SessionRecord, 'handle' | 'expiresAt'>;

/**
 * The JWT payload of the shared cookie: the user's fields under the configured claim names
 * (unset fields left out), nested under `parentKey` when one is configured, then `sid`,
 * `iat` and `exp` (the session's absolute end) at the top level.
 *
 * @example
 * ```ts
 * sharedCookieClaims(config, user, session, Date.now());
 * // { id: 'usr_…', username: 'alice', email: 'alice@example.com', sid: 'ses_…', iat: 1767225600, exp: 1769817600 }
 * ```
 */
export function sharedCookieClaims(config: Config, user: User, session: SharedCookieSession, now: number): JWTPayload {
  const names = config.sharedCookie.claims;
  const fields: Array<[string, string | null]> = [
    [names.id, user.id],
    [names.username, user.username],
    // Only a verified email: the plugin signs the bearer in as the forum user who has this
    // email, so an unverified one would hand over someone else's forum account.
    [names.email, verifiedEmailOf(user)],
    [names.firstName, user.firstName],
    [names.lastName, user.lastName],
    [names.picture, user.picture],
  ];
  const claims: Record<string, string> = {};
  for (const [name, value] of fields) if (value !== null && value !== '') claims[name] = value;
  const parent = config.sharedCookie.parentKey;
  return { ...(parent === null ? claims : { [parent]: claims }), sid: session.handle, iat: Math.floor(now / 1000), exp: Math.floor(session.expiresAt / 1000) };
}

/**
 * Sets the shared cookie for a session (a no-op when `sharedCookie.enabled` is false). It
 * lives until the session's absolute end.
 *
 * @example
 * ```ts
 * await setSharedCookie(reply, config, user, started.session, clock.now());
 * ```
 */
export async function setSharedCookie(reply: FastifyReply, config: Config, user: User, session: SharedCookieSession, now: number): Promise<void> {
  if (!config.sharedCookie.enabled) return;
  const token = await new SignJWT(sharedCookieClaims(config, user, session, now)).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(keyOf(config));
  const maxAge = Math.max(0, Math.floor((session.expiresAt - now) / 1000));
  reply.setCookie(config.sharedCookie.name, token, attributes(config, maxAge));
}

/**
 * What the login page does for a new session when the shared cookie is on: records the
 * cookie's reader app (`sharedCookie.clientId`) as joined — it never calls Tessera itself,
 * so nothing else would, and the session's back-channel logout would never reach it — then
 * sets the cookie. A no-op when `sharedCookie.enabled` is false.
 *
 * @example
 * ```ts
 * await issueSharedCookie(reply, authority, config, started);
 * ```
 */
export async function issueSharedCookie(reply: FastifyReply, authority: Authority, config: Config, started: { session: SessionRecord; user: User }): Promise<void> {
  if (!config.sharedCookie.enabled) return;
  const reader = config.sharedCookie.clientId;
  if (reader !== null) {
    if (await authority.deps.store.findApp(reader)) await authority.sessions.joinSession(started.session, reader);
    // The login goes on: a missing app is an operator's mistake, not the user's.
    else reply.log.warn({ app: reader }, 'sharedCookie.clientId names no registered app: its sessions are not joined, so it gets no back-channel logout');
  }
  await setSharedCookie(reply, config, started.user, started.session, authority.deps.clock.now());
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
