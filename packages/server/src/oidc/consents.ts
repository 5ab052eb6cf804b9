import { Type } from '@fastify/type-provider-typebox';
import { TesseraError } from '@tessera/core';
import { empty, type ServerContext, type TesseraApp } from '../context.js';
import { requireCsrfForCookie, requireSession } from '../http-auth.js';
import { errors } from '../schemas.js';

const session: { security: Array<Record<string, string[]>> } = { security: [{ sessionCookie: [] }, { sessionBearer: [] }, { sessionHeader: [] }] };
const Consent = Type.Object({ client_id: Type.String(), client_name: Type.Union([Type.String(), Type.Null()]), scope: Type.String(), granted_at: Type.String({ format: 'date-time' }) });

/**
 * Self-service for the consents given on the OpenID Provider's consent page: list them and
 * withdraw one. A withdrawn app asks again on its next authorization request; its current
 * tokens are not touched (ending a session is what ends tokens).
 */
export async function consentRoutes(app: TesseraApp, { authority, config }: ServerContext): Promise<void> {
  app.get('/v1/consents', { schema: { ...session, tags: ['oidc'], description: 'The apps I allowed on the consent page.', response: { 200: Type.Object({ consents: Type.Array(Consent) }), ...errors(401) } } }, async (request) => {
    const current = await requireSession(request, authority, config);
    const consents = await authority.oidc.listConsents(current.user.id);
    const names = new Map((await authority.apps.listApps()).map((a) => [a.clientId, a.name]));
    return { consents: consents.map((c) => ({ client_id: c.clientId, client_name: names.get(c.clientId) ?? null, scope: c.scope, granted_at: new Date(c.createdAt).toISOString() })) };
  });

  app.delete('/v1/consents/:client_id', {
    schema: { ...session, tags: ['oidc'], description: 'Withdraws my consent for an app → 204; 404 when there was none.', params: Type.Object({ client_id: Type.String({ minLength: 1, maxLength: 128 }) }), response: { 204: Type.Null(), ...errors(401, 403, 404) } },
  }, async (request, reply) => {
    const current = await requireSession(request, authority, config);
    // Cookie-authenticated state change: the custom header forces a CORS preflight.
    requireCsrfForCookie(request, current.source);
    if (!(await authority.oidc.revokeConsent(current.user.id, request.params.client_id))) throw new TesseraError('NOT_FOUND', 'No consent for this app.');
    return empty(reply, 204);
  });
}
