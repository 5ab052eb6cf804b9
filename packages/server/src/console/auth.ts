import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '@tessera/core';

/** The path every console page lives under; the console cookies are scoped to it. */
export const CONSOLE_PATH = '/admin';
/** The console's sign-in cookie: a console session token (`acs…`), never the admin token itself. */
export const CONSOLE_COOKIE = 'tessera_admin';
/** The console forms' CSRF cookie. */
export const CONSOLE_CSRF_COOKIE = 'tessera_admin_csrf';

/**
 * Sets the console cookie. Why each attribute:
 * - Path=/admin: the browser sends it to the console only, never to the user pages (/account,
 *   /login) or the apps' routes, and the user session cookie is never read here.
 * - HttpOnly: no script can read it.
 * - SameSite=Strict: no cross-site request (link, form, image) carries it, so a page
 *   elsewhere cannot act in the console even before the CSRF check.
 * - Secure unless cookie.secure=false (local http only).
 * - No Domain: the console's cookie stays on Tessera's own host, even when the session
 *   cookie is shared with a parent domain.
 */
export function setConsoleCookie(reply: FastifyReply, config: Config, token: string): void {
  reply.setCookie(CONSOLE_COOKIE, token, { path: CONSOLE_PATH, httpOnly: true, sameSite: 'strict', secure: config.cookie.secure, maxAge: config.adminConsole.sessionSeconds });
}

/** Clears the console cookie (same name and path). */
export function clearConsoleCookie(reply: FastifyReply, config: Config): void {
  reply.clearCookie(CONSOLE_COOKIE, { path: CONSOLE_PATH, httpOnly: true, sameSite: 'strict', secure: config.cookie.secure });
}

/** The console token the browser presented, if any. */
export function readConsoleToken(request: FastifyRequest): string | null {
  const token = request.cookies[CONSOLE_COOKIE];
  return typeof token === 'string' && token !== '' ? token : null;
}
