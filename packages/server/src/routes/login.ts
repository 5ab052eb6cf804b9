import { Type } from '@fastify/type-provider-typebox';
import { isTesseraError, originOf } from '@tessera/core';
import type { ServerContext, TesseraApp } from '../context.js';
import { clearSessionCookie, setSessionCookie } from '../cookies.js';
import { clearSharedCookie, issueSharedCookie } from '../shared-cookie.js';
import { deviceOf, readSessionToken } from '../http-auth.js';
import { ACCOUNT_PATH, createFormCsrf, renderLoginPage, renderMessagePage, renderSignedInPage, sendPage, type SignOutScope } from '../pages/index.js';
import { accountKey, limitedFor, recordFailures, type LimitKey } from '../failure-limits.js';
import { authorizeRedirectOrigin, isOwnAuthorizeUrl, loginHintOf } from '../oidc/index.js';

const CSRF_COOKIE = 'tessera_csrf';

const SignOutScopeSchema = Type.Union([Type.Literal('device'), Type.Literal('all')]);
const LoginQuery = Type.Object({
  // OIDC (issue 10): return_to may be the issuer's own authorize URL, which carries the whole
  // authorization request, hence the longer limit.
  return_to: Type.Optional(Type.String({ maxLength: 8192 })),
  client_id: Type.Optional(Type.String({ maxLength: 128 })),
  // Set by the redirect after a sign-out from the signed-in page: which notice to show.
  signed_out: Type.Optional(SignOutScopeSchema),
  // OIDC (issue 10): prompt=login shows the form to a browser that is already signed in
  // (the OpenID Provider's prompt=login / max_age).
  prompt: Type.Optional(Type.Literal('login')),
});
const LoginForm = Type.Object({
  // Optional so that a missing field is shown next to the field on the form (400), not a
  // generic JSON error.
  username: Type.Optional(Type.String({ maxLength: 254 })),
  password: Type.Optional(Type.String({ maxLength: 1024 })),
  // Optional in the schema so that a missing token reaches the CSRF check (403 page)
  // instead of failing validation as a generic 400.
  csrf: Type.Optional(Type.String({ maxLength: 128 })),
  return_to: Type.Optional(Type.String({ maxLength: 8192 })),
  client_id: Type.Optional(Type.String({ maxLength: 128 })),
});
const SignOutForm = Type.Object({
  // Optional for the same reason as in LoginForm: a missing token gets the 403 page.
  csrf: Type.Optional(Type.String({ maxLength: 128 })),
  scope: SignOutScopeSchema,
});

const SIGNED_OUT_NOTICES: Record<SignOutScope, string> = {
  device: 'You are signed out of all apps on this device.',
  all: 'You are signed out on all your devices.',
};

/** The hosted password login page. */
export async function loginRoutes(app: TesseraApp, { authority, config, limits }: ServerContext): Promise<void> {
  // The login form and the signed-in page's sign-out forms (the cookie's path /login covers
  // /login/sign-out): see createFormCsrf for why a double-submit token stops login CSRF.
  const csrf = createFormCsrf({ cookie: CSRF_COOKIE, path: '/login', config });
  /**
   * The page with the login form must let that form's POST be answered by a 303 to the app:
   * Chromium applies the page's CSP `form-action` to the redirect too, so with `'self'` alone
   * the way back to an app on another origin is blocked (the user is signed in but stranded on
   * the form). Only the origin of the return_to validated against the allow-list for this
   * response is added; with no return_to, the POST redirects to Tessera itself.
   * OIDC (issue 10): an authorize return_to is on Tessera's own origin but ends, after one
   * more 303, at the client's redirect_uri: its origin is added only when that client and
   * redirect_uri are registered (see authorizeRedirectOrigin).
   */
  async function formActionsFor(returnTo: string | undefined): Promise<{ formActionOrigins: string[] }> {
    // Tessera's own devices page: form-action 'self' already covers it.
    if (returnTo !== undefined && isOwnAccountUrl(returnTo)) return { formActionOrigins: [] };
    if (returnTo !== undefined && isOwnAuthorizeUrl(returnTo, config)) {
      const origin = await authorizeRedirectOrigin(returnTo, config, (id) => authority.oidc.findClient(id));
      return { formActionOrigins: origin === undefined ? [] : [origin] };
    }
    const origin = returnTo === undefined ? null : originOf(returnTo);
    return { formActionOrigins: origin === null ? [] : [origin] };
  }

  async function checkedReturnTo(returnTo: string | undefined): Promise<string | undefined> {
    if (returnTo === undefined || returnTo === '') return undefined;
    // OIDC (issue 10): the OpenID Provider's authorization endpoint re-checks everything.
    if (isOwnAuthorizeUrl(returnTo, config)) return returnTo;
    // Issue 11: Tessera's own "your devices" page sends a browser without a session here and
    // asks to come back. Only that exact URL (no query, no fragment, same issuer) is added:
    // it is on Tessera's origin, so it opens no redirect to elsewhere.
    if (isOwnAccountUrl(returnTo)) return returnTo;
    return authority.logout.resolveReturnUrl(returnTo);
  }

  function isOwnAccountUrl(url: string): boolean {
    return url === `${config.issuer}${ACCOUNT_PATH}`;
  }

  app.get('/login', { schema: { tags: ['browser'], querystring: LoginQuery, produces: ['text/html'] } }, async (request, reply) => {
    let returnTo: string | undefined;
    try {
      returnTo = await checkedReturnTo(request.query.return_to);
    } catch (error) {
      if (isTesseraError(error, 'RETURN_URL_NOT_ALLOWED')) return sendPage(reply, 400, renderMessagePage('Sign-in link not allowed', 'The return address in this link is not registered with Tessera.'));
      throw error;
    }
    const presented = readSessionToken(request, config);
    const current = presented?.source === 'cookie' ? await authority.sessions.authenticate(presented.token) : null;
    // A session cookie naming an ended session (expired, revoked elsewhere): the shared
    // cookie may still hold a valid JWT for it, which a forum would go on trusting.
    if (presented?.source === 'cookie' && !current) clearSharedCookie(reply, config);
    if (current && request.query.prompt !== 'login') {
      // Signing in again with a live session sets again whatever per-app state a sign-in
      // sets: an app may have dropped its part alone (a NodeBB logout clears the shared
      // cookie, and may leave the session), and would otherwise stay signed out for good
      // while this page sends the browser straight back to it.
      await issueSharedCookie(reply, authority, config, current);
      if (returnTo) return reply.status(303).header('location', returnTo).send();
      return sendPage(reply, 200, renderSignedInPage({ username: current.user.username, csrf: csrf.issue(request, reply) }));
    }
    const notice = request.query.signed_out === undefined ? undefined : SIGNED_OUT_NOTICES[request.query.signed_out];
    // OIDC (issue 10): the login_hint of the authorization request pre-fills the username
    // (validated, else dropped; escaped by the page like every value).
    const username = returnTo === undefined ? undefined : loginHintOf(returnTo, config);
    return sendPage(reply, 200, renderLoginPage({ csrf: csrf.issue(request, reply), returnTo, clientId: request.query.client_id, notice, ...(username !== undefined ? { username } : {}) }), await formActionsFor(returnTo));
  });

  app.post('/login', { schema: { tags: ['browser'], body: LoginForm, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] } }, async (request, reply) => {
    const form = request.body;
    if (!csrf.matches(request, form.csrf)) {
      return sendPage(reply, 403, renderMessagePage('Please try again', 'This sign-in form expired or was not opened from this site. Reload the page and sign in again.', '/login'));
    }
    let returnTo: string | undefined;
    try {
      returnTo = await checkedReturnTo(form.return_to);
      if (form.client_id) await authority.apps.getApp(form.client_id);
    } catch (error) {
      if (isTesseraError(error)) return sendPage(reply, 400, renderMessagePage('Sign-in link not allowed', 'The return address or app in this link is not registered with Tessera.'));
      throw error;
    }
    // An empty field is a form error shown next to it, not a failed sign-in (not counted).
    const username = form.username ?? '';
    const password = form.password ?? '';
    if (username.trim() === '' || password === '') {
      const fieldErrors = { ...(username.trim() === '' ? { username: 'Enter your username or email.' } : {}), ...(password === '' ? { password: 'Enter your password.' } : {}) };
      return sendPage(reply, 400, renderLoginPage({ csrf: csrf.issue(request, reply), returnTo, clientId: form.client_id, username, fieldErrors }), await formActionsFor(returnTo));
    }
    // Brute force is slowed per address AND per account, counting only failures: past either
    // limit the attempt is refused before the password is even checked (failure-limits.ts).
    const account = accountKey(username);
    const keys: LimitKey[] = [[limits.loginByAddress, request.ip], [limits.loginByAccount, account]];
    const wait = limitedFor(keys);
    if (wait > 0) {
      // The hosted form answers with its page (as for every other sign-in error), status 429.
      reply.header('retry-after', String(wait));
      return sendPage(reply, 429, renderLoginPage({ csrf: csrf.issue(request, reply), returnTo, clientId: form.client_id, error: `Too many failed sign-ins. Try again in ${wait} seconds.`, username }), await formActionsFor(returnTo));
    }
    try {
      const started = await authority.signIn(username, password, deviceOf(request), form.client_id || undefined);
      // The account proved itself: its earlier typos no longer count against it (the
      // address's failures still do, so successes cannot launder an address's guesses).
      limits.loginByAccount.clear(account);
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
      csrf.clear(reply);
      return reply.status(303).header('location', returnTo ?? `${config.issuer}/login`).send();
    } catch (error) {
      if (isTesseraError(error, 'INVALID_CREDENTIALS')) recordFailures(keys);
      if (isTesseraError(error, 'INVALID_CREDENTIALS') || isTesseraError(error, 'USER_DISABLED')) {
        const message = error.code === 'USER_DISABLED' ? 'This account is disabled.' : 'Wrong username or password.';
        return sendPage(reply, error.status, renderLoginPage({ csrf: csrf.issue(request, reply), returnTo, clientId: form.client_id, error: message, username }), await formActionsFor(returnTo));
      }
      throw error;
    }
  });

  // The two buttons of the signed-in page. A form post protected like the login form (the
  // double-submit token; the CSRF cookie's path /login covers /login/sign-out), so another
  // site cannot sign the user out. Never rate limited: a logout is never refused.
  app.post('/login/sign-out', { schema: { tags: ['browser'], body: SignOutForm, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] } }, async (request, reply) => {
    const form = request.body;
    if (!csrf.matches(request, form.csrf)) {
      return sendPage(reply, 403, renderMessagePage('Please try again', 'This sign-out form expired or was not opened from this site. Reload the page and sign out again.', '/login'));
    }
    const presented = readSessionToken(request, config);
    const current = presented?.source === 'cookie' ? await authority.sessions.authenticate(presented.token) : null;
    if (current) {
      if (form.scope === 'all') {
        // Every session of the user, this one included: what the button says.
        await authority.sessions.revokeUserSessions(current.user.id, {}, { actor: 'user', reason: 'user_revoked', ip: request.ip });
      } else {
        // This browser's one session, at every app that joined it.
        await authority.sessions.revokeSessions([current.session.handle], { actor: 'user', reason: 'logout', ip: request.ip });
      }
    }
    // Also when the session had already ended: the browser's cookies must go either way.
    clearSessionCookie(reply, config);
    clearSharedCookie(reply, config);
    csrf.clear(reply);
    // Relative: the same origin as the page that posted, so form-action 'self' covers it.
    return reply.status(303).header('location', `/login?signed_out=${form.scope}`).send();
  });
}
