import { isTesseraError, type AppRecord, type Authority, type TokenPair } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext, TesseraApp } from '../context.js';
import { countFailure, type FailureLimits, type LimitKey } from '../failure-limits.js';
import { readBasicCredentials } from '../http-auth.js';
import { clientCredentialsGrant } from './client-credentials.js';
import { OAuthError, OIDC_PATHS, readParams, sendOAuthError, toOAuthError } from './protocol.js';

/**
 * Client authentication at the token endpoint (RFC 6749 §2.3, OpenID Connect Core §9):
 * `client_secret_basic`, `client_secret_post`, or `none` for a public client, which then
 * identifies itself by `client_id` alone and is held to PKCE at the authorization endpoint.
 *
 * A confidential client may use either secret method, whichever it registered: both prove
 * the same secret, and stock clients differ in which one they send. A public client can
 * never authenticate with a secret, and a confidential one never without.
 *
 * A wrong secret counts under the same failure limits as the app API's Basic credentials
 * (per address and per client id, failure-limits.ts): a right secret is never refused,
 * failures past the limit get 429 RATE_LIMITED.
 */
export async function authenticateClient(request: FastifyRequest, params: ReturnType<typeof readParams>, authority: Authority, limits: FailureLimits): Promise<AppRecord> {
  const basic = readBasicCredentials(request);
  const bodyId = params.get('client_id');
  const bodySecret = params.get('client_secret');
  if (basic && bodySecret !== undefined) throw new OAuthError('invalid_request', 'Use one client authentication method, not two.');
  if (basic && bodyId !== undefined && bodyId !== basic.clientId) throw new OAuthError('invalid_request', 'client_id differs from the authenticated client.');
  // Made only on failure: an Error captures a stack trace, a cost every token request paid.
  const invalid = () => new OAuthError('invalid_client', 'Client authentication failed.', 401);
  if (basic || bodySecret !== undefined) {
    const clientId = basic ? basic.clientId : bodyId;
    const secret = basic ? basic.clientSecret : bodySecret!;
    if (!clientId) throw invalid();
    // Constant time in the secret, and the same cost for unknown clients (apps.authenticateApp).
    const client = await authority.apps.authenticateApp(clientId, secret);
    if (!client || client.oidc.tokenEndpointAuthMethod === 'none') {
      const keys: LimitKey[] = [[limits.credentialByAddress, request.ip], [limits.credentialByClient, clientId.slice(0, 128)]];
      throw countFailure(keys, invalid());
    }
    return client;
  }
  if (!bodyId) throw invalid();
  const client = await authority.oidc.findClient(bodyId);
  if (!client || client.oidc.tokenEndpointAuthMethod !== 'none') throw invalid();
  return client;
}

/** The token endpoint of the OpenID Provider: authorization_code and refresh_token grants. */
export async function tokenEndpointRoutes(app: TesseraApp, { authority, limits }: ServerContext): Promise<void> {
  async function respond(client: AppRecord, pair: TokenPair, idToken: string, reply: FastifyReply): Promise<FastifyReply> {
    // RFC 6749 §5.1: token responses are never cached.
    return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send({
      access_token: pair.accessToken,
      token_type: 'Bearer',
      expires_in: pair.expiresIn,
      ...(client.oidc.grantTypes.includes('refresh_token') ? { refresh_token: pair.refreshToken } : {}),
      id_token: idToken,
      scope: pair.scope ?? 'openid',
    });
  }

  async function grant(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const p = readParams(request.body);
    if (p.repeated) throw new OAuthError('invalid_request', `The parameter ${p.repeated} was given more than once.`);
    const client = await authenticateClient(request, p, authority, limits);
    const grantType = p.get('grant_type');
    if (!grantType) throw new OAuthError('invalid_request', 'grant_type is required.');
    if (grantType === 'authorization_code') {
      if (!client.oidc.grantTypes.includes('authorization_code')) throw new OAuthError('unauthorized_client', 'This client may not use the authorization code grant.');
      const code = p.get('code');
      if (!code) throw new OAuthError('invalid_request', 'code is required.');
      const redeemed = await authority.oidc.redeemCode(client, code, { redirectUri: p.get('redirect_uri'), codeVerifier: p.get('code_verifier') });
      const idToken = await authority.oidc.signIdToken({ app: client, session: redeemed.session, user: redeemed.user, nonce: redeemed.nonce, scope: redeemed.scope, accessToken: redeemed.pair.accessToken });
      return respond(client, redeemed.pair, idToken, reply);
    }
    if (grantType === 'refresh_token') {
      if (!client.oidc.grantTypes.includes('refresh_token')) throw new OAuthError('unauthorized_client', 'This client may not use refresh tokens.');
      const refreshToken = p.get('refresh_token');
      if (!refreshToken) throw new OAuthError('invalid_request', 'refresh_token is required.');
      // The existing rotation: a spent refresh token presented again ends the session. Only
      // refresh tokens of OIDC grants (they carry a scope) are refreshed here ('oidc'); a pair
      // of grant_type=session_token belongs to POST /v1/token and is refused before the
      // rotation, so it is not spent by a call that fails.
      const { pair, session, user } = await authority.tokens.refreshGrant(client, refreshToken, 'oidc');
      const idToken = await authority.oidc.signIdToken({ app: client, session, user, nonce: null, scope: pair.scope ?? 'openid', accessToken: pair.accessToken });
      return respond(client, pair, idToken, reply);
    }
    if (grantType === 'client_credentials') return clientCredentialsGrant(client, p, authority, reply);
    throw new OAuthError('unsupported_grant_type', 'grant_type must be authorization_code, refresh_token or client_credentials.');
  }

  app.post(OIDC_PATHS.token, {
    schema: {
      tags: ['oidc'],
      description: 'OpenID Connect token endpoint (form-encoded): grant_type=authorization_code (with code, redirect_uri, code_verifier), refresh_token, or client_credentials (Shared Signals receiver clients; scope ssf.manage, ssf.read). Client authentication: client_secret_basic, client_secret_post, or none (public clients). Errors are RFC 6749 §5.2 bodies.',
      consumes: ['application/x-www-form-urlencoded'],
    },
  }, async (request, reply) => {
    try {
      return await grant(request, reply);
    } catch (error) {
      // Past the failure limit: Tessera's 429 with Retry-After (the error handler), which
      // RFC 6749 has no code for; every other failure in OAuth's format.
      if (isTesseraError(error, 'RATE_LIMITED')) throw error;
      return sendOAuthError(reply, toOAuthError(error));
    }
  });
}
