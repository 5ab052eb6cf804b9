import { timingSafeEqual } from 'node:crypto';
import { Type } from '@fastify/type-provider-typebox';
import { isTesseraError, randomToken, type Config } from '@tessera/core';
import type { FastifyReply } from 'fastify';
import type { ServerContext, TesseraApp } from '../context.js';
import { setSessionCookie } from '../cookies.js';
import { clearSharedCookie, issueSharedCookie } from '../shared-cookie.js';
import { deviceOf, readSessionToken } from '../http-auth.js';
import { renderLoginPage, renderMessagePage, renderSignedInPage } from '../pages.js';
import { authorizeRedirectOrigin, isOwnAuthorizeUrl } from '../oidc/index.js';

const CSRF_COOKIE = 'tessera_csrf';

/**
 * The login form is protected by a double-submit token: a random value in a
 * SameSite=Strict, HttpOnly cookie scoped to /login and the same value in a hidden field.
 * A cross-site page can make the browser POST the form but can neither read nor set the
 * cookie, so it cannot make the two match (login CSRF).
 */
function issueCsrf(reply: FastifyReply, config: Config): string {
  const token = randomToken(24);
  reply.setCookie(CSRF_COOKIE, token, { path: '/login', httpOnly: true, sameSite: 'strict', secure: config.cookie.secure, maxAge: 3600 });
  return token;
}

function csrfMatches(cookie: string | undefined, field: string | undefined): boolean {
  if (!cookie || !field) return false;
  const a = Buffer.from(cookie);
  const b = Buffer.from(field);
  return a.length === b.length && timingSafeEqual(a, b);
}

// OIDC (issue 10): return_to may be the issuer's own authorize URL, which carries the whole
// authorization request, hence the longer limit; prompt=login shows the form to a browser
// that is already signed in (the OpenID Provider's prompt=login / max_age).
const LoginQuery = Type.Object({ return_to: Type.Optional(Type.String({ maxLength: 8192 })), client_id: Type.Optional(Type.String({ maxLength: 128 })), prompt: Type.Optional(Type.Literal('login')) });
const LoginForm = Type.Object({
  username: Type.String({ maxLength: 254 }),
  password: Type.String({ maxLength: 1024 }),
  // Optional in the schema so that a missing token reaches the CSRF check (403 page)
  // instead of failing validation as a generic 400.
  csrf: Type.Optional(Type.String({ maxLength: 128 })),
  return_to: Type.Optional(Type.String({ maxLength: 8192 })),
  client_id: Type.Optional(Type.String({ maxLength: 128 })),
});

/** The hosted password login page. */
export async function loginRoutes(app: TesseraApp, { authority, config, rateLimits }: ServerContext): Promise<void> {
  // OIDC (issue 10): `formOrigin` is the verified redirect_uri origin an authorize return_to
  // ends at (see authorizeRedirectOrigin: Chromium applies form-action to the redirects that
  // follow the form's POST).
  const html = (reply: FastifyReply, status: number, body: string, formOrigin?: string) =>
    reply.status(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').header('x-frame-options', 'DENY').header('content-security-policy', `default-src 'none'; style-src 'unsafe-inline'; form-action 'self'${formOrigin ? ` ${formOrigin}` : ''}; frame-ancestors 'none'`).send(body);
  const formOriginOf = (returnTo: string | undefined) => (returnTo ? authorizeRedirectOrigin(returnTo, config, (id) => authority.oidc.findClient(id)) : Promise.resolve(undefined));

  async function checkedReturnTo(returnTo: string | undefined): Promise<string | undefined> {
    if (returnTo === undefined || returnTo === '') return undefined;
    // OIDC (issue 10): the OpenID Provider's authorization endpoint re-checks everything.
    if (isOwnAuthorizeUrl(returnTo, config)) return returnTo;
    return authority.logout.resolveReturnUrl(returnTo);
  }

  app.get('/login', { schema: { tags: ['browser'], querystring: LoginQuery, produces: ['text/html'] } }, async (request, reply) => {
    let returnTo: string | undefined;
    try {
      returnTo = await checkedReturnTo(request.query.return_to);
    } catch (error) {
      if (isTesseraError(error, 'RETURN_URL_NOT_ALLOWED')) return html(reply, 400, renderMessagePage('Sign-in link not allowed', 'The return address in this link is not registered with Tessera.'));
      throw error;
    }
    const presented = readSessionToken(request, config);
    const current = presented?.source === 'cookie' ? await authority.sessions.authenticate(presented.token) : null;
    // A session cookie naming an ended session (expired, revoked elsewhere): the shared
    // cookie may still hold a valid JWT for it, which a forum would go on trusting.
    if (presented?.source === 'cookie' && !current) clearSharedCookie(reply, config);
    if (current && request.query.prompt !== 'login') {
      if (returnTo) return reply.status(303).header('location', returnTo).send();
      const { logoutUrl } = await authority.logout.issueLogoutToken(current.session);
      return html(reply, 200, renderSignedInPage(current.user.username, logoutUrl));
    }
    return html(reply, 200, renderLoginPage({ csrf: issueCsrf(reply, config), returnTo, clientId: request.query.client_id }), await formOriginOf(returnTo));
  });

  app.post('/login', { schema: { tags: ['browser'], body: LoginForm, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] }, config: { rateLimit: rateLimits.login } }, async (request, reply) => {
    const form = request.body;
    if (!csrfMatches(request.cookies[CSRF_COOKIE], form.csrf)) {
      return html(reply, 403, renderMessagePage('Please try again', 'This sign-in form expired or was not opened from this site. Reload the page and sign in again.', '/login'));
    }
    let returnTo: string | undefined;
    try {
      returnTo = await checkedReturnTo(form.return_to);
      if (form.client_id) await authority.apps.getApp(form.client_id);
    } catch (error) {
      if (isTesseraError(error)) return html(reply, 400, renderMessagePage('Sign-in link not allowed', 'The return address or app in this link is not registered with Tessera.'));
      throw error;
    }
    try {
      const started = await authority.signIn(form.username, form.password, deviceOf(request), form.client_id || undefined);
      // Signing in again in the same browser replaces the previous session rather than
      // leaving it orphaned (and never reuses its id).
      const previous = readSessionToken(request, config);
      if (previous?.source === 'cookie') {
        const old = await authority.sessions.findActive(previous.token);
        if (old) await authority.sessions.revokeSessions([old.handle], { actor: 'user', reason: 'logout', ip: request.ip });
      }
      setSessionCookie(reply, config, started.token);
      // Overwrites (same name, domain and path) any shared cookie of the replaced session.
      await issueSharedCookie(reply, authority, config, started);
      reply.clearCookie(CSRF_COOKIE, { path: '/login' });
      return reply.status(303).header('location', returnTo ?? `${config.issuer}/login`).send();
    } catch (error) {
      if (isTesseraError(error, 'INVALID_CREDENTIALS') || isTesseraError(error, 'USER_DISABLED')) {
        const message = error.code === 'USER_DISABLED' ? 'This account is disabled.' : 'Wrong username or password.';
        return html(reply, error.status, renderLoginPage({ csrf: issueCsrf(reply, config), returnTo, clientId: form.client_id, error: message, username: form.username }), await formOriginOf(returnTo));
      }
      throw error;
    }
  });

}
