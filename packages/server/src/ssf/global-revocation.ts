import { findUserByVerifiedEmail, GLOBAL_REVOCATION_SCOPE } from '@tessera/core';
import { Type } from '@fastify/type-provider-typebox';
import { empty, type ServerContext, type TesseraApp } from '../context.js';
import { errors } from '../schemas.js';
import { requireSsfCaller } from './auth.js';
import { SSF_PATHS } from './paths.js';

/**
 * OAuth 2.0 Global Token Revocation (draft-parecki-oauth-global-token-revocation): an
 * authorised client (a trusted app with the client_credentials grant and the
 * `global_token_revocation` scope, e.g. the upstream identity provider or a security tool)
 * posts an RFC 9493 subject identifier, and every session of that user ends everywhere —
 * with it every refresh token, authorization code and OIDC grant, which live in sessions —
 * with the usual propagation (revocation feed, back-channel logout, SSF session-revoked).
 *
 * The answer is 204 whether or not the subject names a user: the draft lets a server keep
 * that to itself, and a caller that names someone unknown learns nothing. Only a malformed
 * or unsupported subject (400), a bad token (401) or a missing scope (403) is told apart.
 */
export async function globalRevocationRoutes(app: TesseraApp, { authority }: ServerContext): Promise<void> {
  const { store } = authority.deps;
  app.post(SSF_PATHS.globalRevocation, {
    schema: {
      tags: ['ssf'],
      security: [{ ssfBearer: [] }],
      description: 'Global Token Revocation: {"sub_id": <RFC 9493 subject>} ends every session of the user (scope global_token_revocation, trusted clients) → 204, also when no user matches.',
      body: Type.Object({ sub_id: Type.Object({}, { additionalProperties: true, 'x-max-depth': 4, 'x-max-bytes': 4096 }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(400, 401, 403) },
    },
  }, async (request, reply) => {
    const caller = await requireSsfCaller(request, reply, authority);
    authority.ssf.requireScope(caller, GLOBAL_REVOCATION_SCOPE);
    // The same resolution as stream subjects (a 400 for a format Tessera does not resolve).
    const key = authority.ssf.subjectKeyOf(request.body.sub_id);
    let userId: string | null = null;
    if (key.startsWith('user:')) {
      userId = (await store.findUserById(key.slice(5)))?.id ?? null;
    } else {
      // By email only when that email is verified.
      userId = (await findUserByVerifiedEmail(store, key.slice(6)))?.id ?? null;
    }
    if (userId) {
      await authority.sessions.revokeUserSessions(userId, {}, { actor: `app:${caller.client.clientId}`, reason: 'admin_revoked', ip: request.ip });
    }
    request.log.info({ client: caller.client.clientId, matched: userId !== null }, 'global token revocation');
    return empty(reply, 204);
  });
}
