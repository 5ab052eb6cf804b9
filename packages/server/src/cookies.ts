import type { FastifyReply } from 'fastify';
import type { Config } from '@tessera/core';

/**
 * The session cookie: HttpOnly (no script can read the token), SameSite=Lax (not sent on
 * cross-site subresource or POST requests), Secure unless explicitly disabled for local
 * http, and the parent Domain when sessions are shared across subdomains.
 */
function options(config: Config, maxAgeSeconds?: number) {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: config.cookie.secure,
    ...(config.cookie.domain ? { domain: config.cookie.domain } : {}),
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
  };
}

/** Sets the session cookie to live as long as the session can. */
export function setSessionCookie(reply: FastifyReply, config: Config, token: string): void {
  reply.setCookie(config.cookie.name, token, options(config, config.session.absoluteLifetimeSeconds));
}

/** Clears the session cookie (same name, path and domain, so the browser drops it). */
export function clearSessionCookie(reply: FastifyReply, config: Config): void {
  reply.clearCookie(config.cookie.name, options(config));
}
