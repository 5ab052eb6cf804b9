import { timingSafeEqual } from 'node:crypto';
import { randomToken, type Config } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The double-submit CSRF token of one family of hosted forms (see {@link createFormCsrf}). */
export interface FormCsrf {
  /** Sets the cookie and returns the value to put in the form's hidden `csrf` field. */
  issue(request: FastifyRequest, reply: FastifyReply): string;
  /** True when the posted field equals the cookie (constant time); false when either is missing. */
  matches(request: FastifyRequest, field: string | undefined): boolean;
  /** Removes the cookie (after the form has done its work). */
  clear(reply: FastifyReply): void;
}

/**
 * A double-submit token for hosted forms: a random value in a SameSite=Strict, HttpOnly
 * cookie scoped to the forms' path, and the same value in a hidden field. A cross-site page
 * can make the browser POST the form but can neither read nor set the cookie, so it cannot
 * make the two match (login CSRF, forged sign-outs, forged consent). The comparison is
 * constant-time so the cookie cannot be learned a byte at a time.
 *
 * `keepExisting`: a well-formed token already in the cookie is reused rather than replaced,
 * so several open tabs of the same page all keep working (the devices page).
 *
 * @example
 * ```ts
 * const csrf = createFormCsrf({ cookie: 'tessera_csrf', path: '/login', config });
 * const token = csrf.issue(request, reply); // into <input type="hidden" name="csrf">
 * if (!csrf.matches(request, request.body.csrf)) return refused(reply);
 * ```
 */
export function createFormCsrf(options: { cookie: string; path: string; config: Config; keepExisting?: boolean }): FormCsrf {
  const { cookie, path, config } = options;
  return {
    issue(request, reply) {
      const existing = options.keepExisting ? request.cookies[cookie] : undefined;
      const token = existing && /^[A-Za-z0-9_-]{32,64}$/.test(existing) ? existing : randomToken(24);
      reply.setCookie(cookie, token, { path, httpOnly: true, sameSite: 'strict', secure: config.cookie.secure, maxAge: 3600 });
      return token;
    },
    matches(request, field) {
      const stored = request.cookies[cookie];
      if (!stored || !field) return false;
      const a = Buffer.from(stored);
      const b = Buffer.from(field);
      return a.length === b.length && timingSafeEqual(a, b);
    },
    clear(reply) {
      reply.clearCookie(cookie, { path });
    },
  };
}
