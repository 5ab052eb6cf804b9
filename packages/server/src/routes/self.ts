import { Type } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { empty, type ServerContext, type TesseraApp } from '../context.js';
import { readBasicCredentials, requireApp, requireCsrfForCookie, requireSession } from '../http-auth.js';
import { HandleParams, Revoked, SessionView, UserView, errors } from '../schemas.js';
import { TesseraError, toPublicUser, verifyPassword, type SessionRecord, type UserRecord } from '@tessera/core';
import { sessionJson, userJson } from '../views.js';
import { accountKey, countFailure, refuseIfLimited, type LimitKey } from '../failure-limits.js';

/** The content type of a whoami answer, on both paths. */
export const WHOAMI_CONTENT_TYPE = 'application/json; charset=utf-8';

const session: { security: Array<Record<string, string[]>> } = { security: [{ sessionCookie: [] }, { sessionBearer: [] }, { sessionHeader: [] }] };

// The whoami body of a session, kept while the session object, its last-seen time, its app
// list and its user are the same ones: a session served from the session cache is asked for
// again and again with nothing changed, and rebuilding the same JSON was most of the route's
// own work. (A WeakMap: entries go with the session objects.)
const bodies = new WeakMap<SessionRecord, { lastSeenAt: number; apps: SessionRecord['apps']; user: UserRecord; body: string }>();

/** The whoami body of a session (see above); the lean path (whoami-lean.ts) sends the same text. */
export function whoamiBody(session: SessionRecord, user: UserRecord): string {
  const known = bodies.get(session);
  if (known && known.lastSeenAt === session.lastSeenAt && known.apps === session.apps && known.user === user) return known.body;
  // The views hold exactly the fields of the response schema, so JSON.stringify gives what
  // the schema serializer would.
  const body = JSON.stringify({ session: sessionJson(session, session.handle), user: userJson(toPublicUser(user)) });
  bodies.set(session, { lastSeenAt: session.lastSeenAt, apps: session.apps, user, body });
  return body;
}

/** Self-service: who am I, my sessions, end one or all others, change my password. */
export async function selfRoutes(app: TesseraApp, { authority, config, limits }: ServerContext): Promise<void> {
  app.get('/v1/whoami', {
    schema: {
      ...session, tags: ['session'],
      description: 'The current session and user. An app asking server-side with its client credentials (HTTP Basic) and the user\'s token in X-Session-Token (or the cookie) is recorded as having joined the session.',
      response: { 200: Type.Object({ session: SessionView, user: UserView }), ...errors(401) },
    },
  }, async (request, reply) => {
    // Basic credentials are checked first: a wrong secret must fail even for a valid session.
    const caller = readBasicCredentials(request) ? await requireApp(request, reply, authority, limits) : null;
    const current = await requireSession(request, authority, config);
    if (caller) await authority.sessions.joinSession(current.session, caller.clientId);
    // Sent as ready JSON text (no re-serialisation); see whoamiBody.
    return (reply as FastifyReply).type(WHOAMI_CONTENT_TYPE).send(whoamiBody(current.session, current.user));
  });

  app.get('/v1/sessions', { schema: { ...session, tags: ['session'], response: { 200: Type.Object({ sessions: Type.Array(SessionView) }), ...errors(401) } } }, async (request) => {
    const current = await requireSession(request, authority, config);
    const sessions = await authority.sessions.listUserSessions(current.user.id);
    return { sessions: sessions.map((s) => sessionJson(s, current.session.handle)) };
  });

  app.delete('/v1/sessions', { schema: { ...session, tags: ['session'], description: 'Ends all of my sessions except the current one.', response: { 200: Revoked, ...errors(401, 403) } } }, async (request) => {
    const current = await requireSession(request, authority, config);
    requireCsrfForCookie(request, current.source);
    const revoked = await authority.sessions.revokeUserSessions(current.user.id, { exceptHandle: current.session.handle }, { actor: 'user', reason: 'user_revoked', ip: request.ip });
    return { revoked };
  });

  app.delete('/v1/sessions/:handle', { schema: { ...session, tags: ['session'], params: HandleParams, response: { 204: Type.Null(), ...errors(401, 403, 404) } } }, async (request, reply) => {
    const current = await requireSession(request, authority, config);
    requireCsrfForCookie(request, current.source);
    await authority.sessions.revokeSession(request.params.handle, { actor: 'user', reason: 'user_revoked', ownerId: current.user.id, ip: request.ip });
    return empty(reply, 204);
  });

  app.post('/v1/password', {
    schema: {
      ...session, tags: ['session'], description: 'Changes my password and ends all my other sessions.',
      body: Type.Object({ current_password: Type.String({ minLength: 1, maxLength: 1024 }), new_password: Type.String({ minLength: 8, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 200: Revoked, ...errors(400, 401, 403, 429) },
    },
  }, async (request) => {
    const current = await requireSession(request, authority, config);
    requireCsrfForCookie(request, current.source);
    // The current password is a password: a stolen session must not make guessing it
    // unlimited. Same limits as sign-in (address and account), checked before the hash.
    const keys: LimitKey[] = [[limits.loginByAddress, request.ip], [limits.loginByAccount, accountKey(current.user.username)]];
    refuseIfLimited(keys);
    if (!(await verifyPassword(request.body.current_password, current.user.passwordHash))) throw countFailure(keys, new TesseraError('INVALID_CREDENTIALS'));
    const { revoked } = await authority.users.updateUser(current.user.id, { password: request.body.new_password }, 'user', current.session.handle);
    return { revoked };
  });
}
