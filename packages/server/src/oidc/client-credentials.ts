import type { AppRecord, Authority } from '@tessera/core';
import type { FastifyReply } from 'fastify';
import { OAuthError, type readParams } from './protocol.js';

/**
 * `grant_type=client_credentials` (RFC 6749 §4.4) at the token endpoint, for Shared Signals
 * receiver clients: a confidential client registered with the `client_credentials` grant
 * gets an access token for the SSF routes (scopes `ssf.manage`, `ssf.read`, and
 * `global_token_revocation` for trusted clients). No refresh token (§4.4.3) and no ID token:
 * the client acts in its own name, there is no user.
 */
export async function clientCredentialsGrant(client: AppRecord, params: ReturnType<typeof readParams>, authority: Authority, reply: FastifyReply): Promise<FastifyReply> {
  const issued = await authority.ssf.issueAccessToken(client, params.get('scope'));
  if (issued === 'unauthorized_client') throw new OAuthError('unauthorized_client', 'This client may not use the client_credentials grant (a confidential client registered with it).');
  if (issued === 'invalid_scope') throw new OAuthError('invalid_scope', 'scope must be among ssf.manage, ssf.read (and global_token_revocation for trusted clients).');
  // RFC 6749 §5.1: token responses are never cached.
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send({
    access_token: issued.accessToken,
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
    scope: issued.scope,
  });
}
