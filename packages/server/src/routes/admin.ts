import { Type } from '@fastify/type-provider-typebox';
import { TesseraError } from '@tessera/core';
import { empty, type ServerContext, type TesseraApp } from '../context.js';
import { requireAdmin } from '../http-auth.js';
import { Cursor, PageLimit, DeliveryView, AppBody, AppPatchBody, AppView, HandleParams, Handle, IdParams, Revoked, SessionView, UserClaims, UserPatchBody, UserView, errors } from '../schemas.js';
import { appChangesOf, appJson, appNameOf, deliveryJson, oidcMetadataOf, sessionJson, userJson } from '../views.js';

const admin = { security: [{ admin: [] }] };

/**
 * The admin surface under /admin/api: its own context with its own authentication
 * (`Authorization: Bearer <admin token>`), separate from the public routes.
 */
export async function adminRoutes(app: TesseraApp, { authority, limits }: ServerContext, onDeliveriesQueued: () => void = () => {}): Promise<void> {
  app.addHook('onRequest', async (request) => requireAdmin(request, authority, limits));
  const by = 'admin' as const;

  app.post('/users', { schema: { ...admin, tags: ['admin'], body: UserClaims, response: { 201: Type.Object({ user: UserView }), ...errors(400, 401, 409) } } }, async (request, reply) => {
    const b = request.body;
    const user = await authority.users.createUser({ id: b.id, username: b.username, email: b.email, emailVerified: b.email_verified, password: b.password, firstName: b.first_name, lastName: b.last_name, picture: b.picture }, by);
    return reply.status(201).send({ user: userJson(user) });
  });

  app.get('/users', {
    schema: {
      ...admin, tags: ['admin'], description: 'Users whose username or email contains q (case-insensitive; everyone when q is empty), by username; the same search as the admin console.',
      querystring: Type.Object({ q: Type.Optional(Type.String({ maxLength: 256 })), limit: PageLimit(50) }, { additionalProperties: false }),
      response: { 200: Type.Object({ users: Type.Array(UserView) }), ...errors(400, 401) },
    },
  }, async (request) => ({
    users: (await authority.users.searchUsers(request.query.q ?? '', request.query.limit)).map(userJson),
  }));

  app.get('/users/:id', { schema: { ...admin, tags: ['admin'], params: IdParams, response: { 200: Type.Object({ user: UserView }), ...errors(401, 404) } } }, async (request) => ({
    user: userJson(await authority.users.getUser(request.params.id)),
  }));

  app.patch('/users/:id', { schema: { ...admin, tags: ['admin'], params: IdParams, body: UserPatchBody, response: { 200: Type.Object({ user: UserView, revoked: Type.Array(Type.String()) }), ...errors(400, 401, 404, 409) } } }, async (request) => {
    const b = request.body;
    const { user, revoked } = await authority.users.updateUser(request.params.id, { username: b.username, email: b.email, emailVerified: b.email_verified, password: b.password, firstName: b.first_name, lastName: b.last_name, picture: b.picture, disabled: b.disabled }, by);
    return { user: userJson(user), revoked };
  });

  app.delete('/users/:id', { schema: { ...admin, tags: ['admin'], params: IdParams, response: { 200: Revoked, ...errors(401, 404) } } }, async (request) => ({
    revoked: await authority.users.deleteUser(request.params.id, by),
  }));

  app.get('/users/:id/sessions', { schema: { ...admin, tags: ['admin'], params: IdParams, querystring: Type.Object({ include_ended: Type.Optional(Type.Boolean()) }), response: { 200: Type.Object({ sessions: Type.Array(SessionView) }), ...errors(401, 404) } } }, async (request) => {
    const user = await authority.users.getUser(request.params.id);
    const sessions = request.query.include_ended ? await authority.deps.store.listSessionsByUser(user.id, { includeEnded: true }) : await authority.sessions.listUserSessions(user.id);
    return { sessions: sessions.map((s) => sessionJson(s)) };
  });

  app.delete('/users/:id/sessions', { schema: { ...admin, tags: ['admin'], params: IdParams, querystring: Type.Object({ app: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })), except: Type.Optional(Handle) }, { additionalProperties: false }), response: { 200: Revoked, ...errors(400, 401, 404) } } }, async (request) => {
    const user = await authority.users.getUser(request.params.id);
    if (request.query.app !== undefined) await authority.apps.getApp(request.query.app);
    const revoked = await authority.sessions.revokeUserSessions(user.id, { exceptHandle: request.query.except, clientId: request.query.app }, { actor: by, reason: 'admin_revoked', ip: request.ip });
    return { revoked };
  });

  app.get('/sessions/:handle', { schema: { ...admin, tags: ['admin'], params: HandleParams, response: { 200: Type.Object({ session: SessionView }), ...errors(401, 404) } } }, async (request) => {
    const session = await authority.deps.store.findSessionByHandle(request.params.handle);
    if (!session) throw new TesseraError('SESSION_NOT_FOUND');
    return { session: sessionJson(session) };
  });

  app.delete('/sessions/:handle', { schema: { ...admin, tags: ['admin'], params: HandleParams, response: { 204: Type.Null(), ...errors(401, 404) } } }, async (request, reply) => {
    await authority.sessions.revokeSession(request.params.handle, { actor: by, reason: 'admin_revoked', ip: request.ip });
    return empty(reply, 204);
  });

  app.post('/sessions/revoke', { schema: { ...admin, tags: ['admin'], body: Type.Object({ handles: Type.Array(Handle, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }), response: { 200: Revoked, ...errors(400, 401) } } }, async (request) => ({
    revoked: await authority.sessions.revokeSessions(request.body.handles, { actor: by, reason: 'admin_revoked', ip: request.ip }),
  }));

  app.get('/sessions/:handle/deliveries', {
    schema: {
      ...admin, tags: ['admin'], params: HandleParams,
      description: 'Per-app logout delivery status of a session: every back-channel or webhook notice that covers it (including user-wide ones), and the joined apps without a push channel, which learn of the end on their next check.',
      response: { 200: Type.Object({ handle: Type.String(), active: Type.Boolean(), ended_at: Type.Union([Type.String(), Type.Null()]), deliveries: Type.Array(DeliveryView), pull_only: Type.Array(Type.String()) }), ...errors(401, 404) },
    },
  }, async (request) => {
    const status = await authority.deliveries.sessionDeliveries(request.params.handle);
    if (!status) throw new TesseraError('SESSION_NOT_FOUND');
    const { session, deliveries, pullOnly } = status;
    return { handle: session.handle, active: session.endedAt === null, ended_at: session.endedAt === null ? null : new Date(session.endedAt).toISOString(), deliveries: deliveries.map(deliveryJson), pull_only: pullOnly };
  });

  app.get('/deliveries', {
    schema: {
      ...admin, tags: ['admin'], description: 'Logout deliveries, newest first; filter by status (pending, delivered, dead) and app.',
      querystring: Type.Object({ status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')])), client_id: Type.Optional(Type.String({ maxLength: 128 })), limit: PageLimit() }, { additionalProperties: false }),
      response: { 200: Type.Object({ deliveries: Type.Array(DeliveryView), counts: Type.Object({ pending: Type.Integer(), delivered: Type.Integer(), dead: Type.Integer() }) }), ...errors(400, 401) },
    },
  }, async (request) => {
    const store = authority.deps.store;
    const deliveries = await store.listDeliveries({ status: request.query.status, clientId: request.query.client_id, limit: request.query.limit });
    return { deliveries: deliveries.map(deliveryJson), counts: await store.countDeliveries() };
  });

  app.post('/deliveries/:id/retry', {
    schema: {
      ...admin, tags: ['admin'], description: 'Sends a pending or dead delivery again now, with a fresh retry horizon.',
      params: Type.Object({ id: Cursor({ minimum: 1 }) }),
      response: { 200: Type.Object({ delivery: DeliveryView }), ...errors(401, 404) },
    },
  }, async (request) => {
    const retried = await authority.deliveries.retryDelivery(request.params.id, by, request.ip);
    onDeliveriesQueued();
    return { delivery: deliveryJson(retried) };
  });

  const WebhookSecret = { webhook_secret: Type.Optional(Type.String({ description: 'The webhook signing secret Tessera generated (shown once).' })) };

  app.post('/apps', { schema: { ...admin, tags: ['admin'], body: AppBody, response: { 201: Type.Object({ app: AppView, client_secret: Type.String(), ...WebhookSecret }), ...errors(400, 401, 409) } } }, async (request, reply) => {
    const b = request.body;
    const name = appNameOf(b);
    if (name === undefined) throw new TesseraError('INVALID_REQUEST', 'name (or client_name) is required.');
    const { app: created, clientSecret, webhookSecret } = await authority.apps.registerApp({ clientId: b.client_id, name, trusted: b.trusted, allowedOrigins: b.allowed_origins, returnUrls: b.return_urls, backchannelLogoutUri: b.backchannel_logout_uri, connectors: b.connectors as Record<string, unknown> | undefined, oidc: oidcMetadataOf(b) }, by);
    return reply.status(201).send({ app: appJson(created), client_secret: clientSecret, ...(webhookSecret ? { webhook_secret: webhookSecret } : {}) });
  });

  app.get('/apps', { schema: { ...admin, tags: ['admin'], response: { 200: Type.Object({ apps: Type.Array(AppView) }), ...errors(401) } } }, async () => ({
    apps: (await authority.apps.listApps()).map(appJson),
  }));

  app.get('/apps/:id', { schema: { ...admin, tags: ['admin'], params: IdParams, response: { 200: Type.Object({ app: AppView }), ...errors(401, 404) } } }, async (request) => {
    const { secretHash: _omit, ...found } = await authority.apps.getApp(request.params.id);
    return { app: appJson(found) };
  });

  app.patch('/apps/:id', { schema: { ...admin, tags: ['admin'], params: IdParams, body: AppPatchBody, response: { 200: Type.Object({ app: AppView, ...WebhookSecret }), ...errors(400, 401, 404) } } }, async (request) => {
    const b = request.body;
    const { app: updated, webhookSecret } = await authority.apps.updateApp(request.params.id, appChangesOf(b), by);
    return { app: appJson(updated), ...(webhookSecret ? { webhook_secret: webhookSecret } : {}) };
  });

  app.delete('/apps/:id', { schema: { ...admin, tags: ['admin'], params: IdParams, response: { 204: Type.Null(), ...errors(401, 404) } } }, async (request, reply) => {
    await authority.apps.deleteApp(request.params.id, by);
    return empty(reply, 204);
  });

  app.post('/apps/:id/secret', { schema: { ...admin, tags: ['admin'], params: IdParams, response: { 200: Type.Object({ client_secret: Type.String() }), ...errors(401, 404) } } }, async (request) => ({
    client_secret: await authority.apps.rotateSecret(request.params.id, by),
  }));

  app.get('/audit', { schema: { ...admin, tags: ['admin'], querystring: Type.Object({ user: Type.Optional(Type.String({ maxLength: 128 })), limit: PageLimit() }), response: { 200: Type.Object({ events: Type.Array(Type.Object({ id: Type.Integer(), at: Type.String(), actor: Type.String(), action: Type.String(), user_id: Type.Union([Type.String(), Type.Null()]), session_handle: Type.Union([Type.String(), Type.Null()]), client_id: Type.Union([Type.String(), Type.Null()]), ip: Type.Union([Type.String(), Type.Null()]), details: Type.Object({}, { additionalProperties: true }) })) }), ...errors(401) } } }, async (request) => {
    const events = await authority.deps.store.listAudit({ userId: request.query.user, limit: request.query.limit });
    return { events: events.map((e) => ({ id: e.id ?? 0, at: new Date(e.at).toISOString(), actor: e.actor, action: e.action, user_id: e.userId, session_handle: e.sessionHandle, client_id: e.clientId, ip: e.ip, details: e.details })) };
  });
}
