import { Type } from '@fastify/type-provider-typebox';
import { TesseraError, requireAppMay, toPublicUser, type LogoutScope } from '@tessera/core';
import { empty, type ServerContext, type TesseraApp } from '../context.js';
import { clientOf, deviceOf } from '../http-auth.js';
import { Device, Handle, HandleParams, IdParams, Revoked, SessionView, UserClaims, UserView, errors } from '../schemas.js';
import { sessionJson, userJson } from '../views.js';
import { LOGOUT_FAILURES, limitFailures } from '../failure-limits.js';

const client = { security: [{ client: [] }] };

/**
 * Server-to-server routes. They run in the app context, whose onRequest hook has already
 * authenticated the app's client id and secret (HTTP Basic) — before any body validation,
 * so an unauthenticated caller learns nothing about what a valid body looks like.
 */
export async function appApiRoutes(app: TesseraApp, { authority, limits }: ServerContext): Promise<void> {
  app.post('/v1/sessions', {
    schema: {
      ...client, tags: ['app'], description: 'A trusted app starts a session for a user it has authenticated.',
      body: Type.Object({ user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })), user: Type.Optional(UserClaims), device: Type.Optional(Device) }, { additionalProperties: false }),
      response: { 201: Type.Object({ session: SessionView, session_token: Type.String(), user: UserView }), ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request, reply) => {
    const caller = clientOf(request);
    const b = request.body;
    if ((b.user_id === undefined) === (b.user === undefined)) throw new TesseraError('INVALID_REQUEST', 'Give exactly one of user_id or user.');
    const fallback = deviceOf(request);
    const device = { ip: b.device?.ip ?? fallback.ip, userAgent: b.device?.user_agent ?? null };
    // email_verified only when the trusted app says so: it is then the app's word, as an admin's would be.
    const claims = b.user && { id: b.user.id, username: b.user.username, email: b.user.email, emailVerified: b.user.email_verified === true, firstName: b.user.first_name, lastName: b.user.last_name, picture: b.user.picture };
    const started = await authority.startSessionForApp(caller, { userId: b.user_id, user: claims }, device);
    return reply.status(201).send({ session: sessionJson(started.session), session_token: started.token, user: userJson(toPublicUser(started.user)) });
  });

  // The session token, or (for the app that reads the shared cookie) that cookie's JWT,
  // which is longer: it carries the user's names, email and picture URL.
  const LogoutToken = Type.String({ minLength: 1, maxLength: 4096 });
  app.post('/api/v1/logout', {
    schema: {
      ...client, tags: ['logout'],
      description: 'Server-to-server logout. Body: the session token as text/plain, or JSON {"token", "scope"} with scope app (this app only), session (default: everywhere) or user (every session of the user). The app named by sharedCookie.clientId may instead send the shared cookie it received (scope app or session; user only if trusted), for a session it joined.',
      consumes: ['text/plain', 'application/json'],
      body: Type.Union([LogoutToken, Type.Object({ token: LogoutToken, scope: Type.Optional(Type.Union([Type.Literal('app'), Type.Literal('session'), Type.Literal('user')])) }, { additionalProperties: false })]),
      response: { 200: Type.Null({ description: 'Logged out (also when the session had already ended: a dead token, or a valid shared cookie of a dead session, is a no-op for every scope); empty body. Scope user needs a trusted app: an untrusted one gets 403 APP_NOT_TRUSTED after the session of the token (or cookie) was ended.' }), ...errors(400, 401, 403, 415, 429) },
    },
  }, async (request, reply) => {
    const caller = clientOf(request);
    const body = request.body;
    const token = typeof body === 'string' ? body.trim() : body.token;
    const scope: LogoutScope = typeof body === 'string' ? 'session' : (body.scope ?? 'session');
    // A valid token always ends what it names; unknown tokens count per address (logoutMax).
    await limitFailures([[limits.logoutByAddress, request.ip]], LOGOUT_FAILURES, () => authority.logout.logoutForApp(caller, token, scope, request.ip));
    return empty(reply, 200);
  });

  app.post('/api/v1/sessions/:handle/activity', {
    schema: {
      ...client, tags: ['app'],
      description: 'The session is in use in this app: moves its idle deadline as a use of the session token would (written at most once per session.touchIntervalSeconds). For apps that never hold the session token, such as a forum signed in by the shared cookie. 404 unless the session is active and this app is a member.',
      params: HandleParams, response: { 204: Type.Null(), ...errors(401, 404) },
    },
  }, async (request, reply) => {
    // Decided in core (requireAppMay 'report_activity'): a live session this app is a member of.
    await authority.sessions.recordAppActivity(clientOf(request), request.params.handle);
    return empty(reply, 204);
  });

  app.delete('/api/v1/sessions/:handle', {
    schema: { ...client, tags: ['app'], description: 'Ends one session. A trusted app may end any session; another app only sessions it has joined and not left (404 otherwise).', params: HandleParams, response: { 204: Type.Null(), ...errors(401, 404) } },
  }, async (request, reply) => {
    const caller = clientOf(request);
    const session = await authority.deps.store.findSessionByHandle(request.params.handle);
    if (!session) throw new TesseraError('SESSION_NOT_FOUND');
    // Decided in core for every route: a trusted app, or a current member (joined and not
    // left). An app that never joined, or has left, cannot even learn that the session exists.
    requireAppMay(caller, 'end_session_by_handle', session);
    await authority.sessions.revokeSession(session.handle, { actor: `app:${caller.clientId}`, reason: 'admin_revoked', ip: request.ip });
    return empty(reply, 204);
  });

  app.delete('/api/v1/users/:id/sessions', {
    schema: {
      ...client, tags: ['app'], description: 'Trusted apps only: ends a user\'s sessions (all; `app`: only that app\'s part; `except`: keep one).',
      params: IdParams,
      querystring: Type.Object({ app: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })), except: Type.Optional(Handle) }, { additionalProperties: false }),
      response: { 200: Revoked, ...errors(400, 401, 403, 404) },
    },
  }, async (request) => {
    const caller = clientOf(request);
    requireAppMay(caller, 'end_user_sessions');
    const user = await authority.users.getUser(request.params.id);
    if (request.query.app !== undefined) await authority.apps.getApp(request.query.app);
    const revoked = await authority.sessions.revokeUserSessions(user.id, { exceptHandle: request.query.except, clientId: request.query.app }, { actor: `app:${caller.clientId}`, reason: 'admin_revoked', ip: request.ip });
    return { revoked };
  });
}
