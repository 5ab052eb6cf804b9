import { Type } from '@fastify/type-provider-typebox';
import { isTesseraError, verifyPassword, type Authenticated } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext, TesseraApp } from '../context.js';
import { clearSessionCookie } from '../cookies.js';
import { clearSharedCookie } from '../shared-cookie.js';
import { readSessionToken } from '../http-auth.js';
import { accountKey, limitedFor, recordFailures, type LimitKey } from '../failure-limits.js';
import { renderAccountPage, type AccountDone, type PasswordErrors } from './account.js';
import { renderMessagePage } from './render.js';
import { sendPage } from './send-page.js';
import { createFormCsrf } from './form-csrf.js';

/** The path of the devices page; the login page's return_to accepts `${issuer}${ACCOUNT_PATH}`. */
export const ACCOUNT_PATH = '/account';

const CSRF_COOKIE = 'tessera_account_csrf';
const MIN_PASSWORD_LENGTH = 8;

const DoneSchema = Type.Union([Type.Literal('device'), Type.Literal('others'), Type.Literal('password'), Type.Literal('gone'), Type.Literal('consent'), Type.Literal('no_consent')]);
const AccountQuery = Type.Object({ done: Type.Optional(DoneSchema) });
// csrf is optional in every schema so that a missing token reaches the CSRF check (the 403
// page) instead of failing validation as a generic 400; the same for the password fields,
// whose errors are shown next to the field.
const Csrf = Type.Optional(Type.String({ maxLength: 128 }));
const SignOutForm = Type.Object({ csrf: Csrf, handle: Type.String({ minLength: 1, maxLength: 128 }) });
const SignOutOthersForm = Type.Object({ csrf: Csrf });
const WithdrawForm = Type.Object({ csrf: Csrf, client_id: Type.String({ minLength: 1, maxLength: 128 }) });
const PasswordForm = Type.Object({ csrf: Csrf, current_password: Type.Optional(Type.String({ maxLength: 1024 })), new_password: Type.Optional(Type.String({ maxLength: 1024 })) });

const browser = { tags: ['browser'], consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] };

/**
 * "Your devices" (`GET /account`): the signed-in user's sessions, with forms to sign out one
 * device, every other device, and to change the password. Only the session cookie counts
 * here (it is a page for a browser); without a live session the browser goes to the hosted
 * login page, which brings it back.
 */
export async function accountRoutes(app: TesseraApp, { authority, config, limits }: ServerContext): Promise<void> {
  // The page's forms: a double-submit token scoped to /account (createFormCsrf says why), kept
  // across page loads so that two open tabs both keep working.
  const csrf = createFormCsrf({ cookie: CSRF_COOKIE, path: ACCOUNT_PATH, config, keepExisting: true });
  const loginRedirect = (reply: FastifyReply) =>
    reply.status(303).header('location', `/login?return_to=${encodeURIComponent(`${config.issuer}${ACCOUNT_PATH}`)}`).send();

  async function currentSession(request: FastifyRequest): Promise<Authenticated | null> {
    const presented = readSessionToken(request, config);
    // Bearer and header tokens are for apps; a page acts only for the browser's own cookie.
    return presented?.source === 'cookie' ? authority.sessions.authenticate(presented.token) : null;
  }

  async function renderFor(request: FastifyRequest, reply: FastifyReply, current: Authenticated, extra: { done?: AccountDone; passwordErrors?: PasswordErrors }): Promise<string> {
    const [sessions, apps, granted] = await Promise.all([authority.sessions.listUserSessions(current.user.id), authority.apps.listApps(), authority.oidc.listConsents(current.user.id)]);
    const names = new Map(apps.map((a) => [a.clientId, a.name]));
    const devices = sessions.map((session) => ({
      session,
      appNames: session.apps.filter((a) => a.leftAt === null).map((a) => names.get(a.clientId) ?? a.clientId),
    }));
    // The same list as GET /v1/consents.
    const consents = granted.map((c) => ({ clientId: c.clientId, appName: names.get(c.clientId) ?? c.clientId, scope: c.scope, grantedAt: c.createdAt }));
    // "2 minutes ago" is measured on the clock the sessions' times were written with (the
    // authority's), so a server run on another clock (tests, a manual clock) shows true ages.
    const now = authority.deps.clock.now();
    return renderAccountPage({ username: current.user.username, csrf: csrf.issue(request, reply), currentHandle: current.session.handle, devices, consents, now, ...extra });
  }

  const refused = (reply: FastifyReply) =>
    sendPage(reply, 403, renderMessagePage('Please try again', 'This form expired or was not opened from this site. Reload the page and try again.', ACCOUNT_PATH));

  app.get(ACCOUNT_PATH, { schema: { tags: ['browser'], querystring: AccountQuery, produces: ['text/html'] } }, async (request, reply) => {
    const current = await currentSession(request);
    if (!current) return loginRedirect(reply);
    return sendPage(reply, 200, await renderFor(request, reply, current, { done: request.query.done }));
  });

  // Sign out one device. Never rate limited: a logout is never refused.
  app.post(`${ACCOUNT_PATH}/sign-out`, { schema: { ...browser, body: SignOutForm } }, async (request, reply) => {
    if (!csrf.matches(request, request.body.csrf)) return refused(reply);
    const current = await currentSession(request);
    if (!current) return loginRedirect(reply);
    if (request.body.handle === current.session.handle) {
      // This browser's own session: it ends like a logout, and its cookies go.
      await authority.sessions.revokeSessions([current.session.handle], { actor: 'user', reason: 'logout', ip: request.ip });
      clearSessionCookie(reply, config);
      clearSharedCookie(reply, config);
      return reply.status(303).header('location', '/login?signed_out=device').send();
    }
    try {
      // ownerId: a handle of another user's session is refused as unknown (never ended).
      const ended = await authority.sessions.revokeSession(request.body.handle, { actor: 'user', reason: 'user_revoked', ownerId: current.user.id, ip: request.ip });
      return reply.status(303).header('location', `${ACCOUNT_PATH}?done=${ended ? 'device' : 'gone'}`).send();
    } catch (error) {
      if (isTesseraError(error, 'SESSION_NOT_FOUND')) return reply.status(303).header('location', `${ACCOUNT_PATH}?done=gone`).send();
      throw error;
    }
  });

  app.post(`${ACCOUNT_PATH}/sign-out-others`, { schema: { ...browser, body: SignOutOthersForm } }, async (request, reply) => {
    if (!csrf.matches(request, request.body.csrf)) return refused(reply);
    const current = await currentSession(request);
    if (!current) return loginRedirect(reply);
    // The same call as DELETE /v1/sessions.
    await authority.sessions.revokeUserSessions(current.user.id, { exceptHandle: current.session.handle }, { actor: 'user', reason: 'user_revoked', ip: request.ip });
    return reply.status(303).header('location', `${ACCOUNT_PATH}?done=others`).send();
  });

  // Withdraw a consent given on the OpenID Provider's consent page: the same call as
  // DELETE /v1/consents/:client_id. It signs nobody out; the app asks again next time.
  app.post(`${ACCOUNT_PATH}/consents/withdraw`, { schema: { ...browser, body: WithdrawForm } }, async (request, reply) => {
    if (!csrf.matches(request, request.body.csrf)) return refused(reply);
    const current = await currentSession(request);
    if (!current) return loginRedirect(reply);
    const withdrawn = await authority.oidc.revokeConsent(current.user.id, request.body.client_id);
    return reply.status(303).header('location', `${ACCOUNT_PATH}?done=${withdrawn ? 'consent' : 'no_consent'}`).send();
  });

  app.post(`${ACCOUNT_PATH}/password`, { schema: { ...browser, body: PasswordForm } }, async (request, reply) => {
    const form = request.body;
    if (!csrf.matches(request, form.csrf)) return refused(reply);
    const current = await currentSession(request);
    if (!current) return loginRedirect(reply);
    const errors: PasswordErrors = {};
    if (!form.current_password) errors.current = 'Enter your current password.';
    if (!form.new_password || form.new_password.length < MIN_PASSWORD_LENGTH) errors.next = `The new password needs at least ${MIN_PASSWORD_LENGTH} characters.`;
    if (errors.current || errors.next) return sendPage(reply, 400, await renderFor(request, reply, current, { passwordErrors: errors }));
    // The current password is a password: a stolen session cookie must not make guessing it
    // unlimited. The same limits as sign-in and POST /v1/password (address and account),
    // checked before the hash; only failures count.
    const keys: LimitKey[] = [[limits.loginByAddress, request.ip], [limits.loginByAccount, accountKey(current.user.username)]];
    const wait = limitedFor(keys);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      return sendPage(reply, 429, await renderFor(request, reply, current, { passwordErrors: { form: `Too many wrong passwords. Try again in ${wait} seconds.` } }));
    }
    if (!(await verifyPassword(form.current_password!, current.user.passwordHash))) {
      recordFailures(keys);
      return sendPage(reply, 401, await renderFor(request, reply, current, { passwordErrors: { current: 'That is not your current password.' } }));
    }
    // The same call as POST /v1/password: the new hash, and every other session ends.
    await authority.users.updateUser(current.user.id, { password: form.new_password! }, 'user', current.session.handle);
    return reply.status(303).header('location', `${ACCOUNT_PATH}?done=password`).send();
  });
}
