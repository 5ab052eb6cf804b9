import { ID_TOKEN_ALGORITHMS } from '@tessera/core';
import type { ServerContext, TesseraApp } from '../context.js';
import { OIDC_PATHS } from './protocol.js';

/**
 * OpenID Connect Discovery 1.0: the provider metadata. Everything listed is implemented;
 * what is not implemented is either absent or stated as false.
 */
export function providerMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}${OIDC_PATHS.authorize}`,
    token_endpoint: `${issuer}${OIDC_PATHS.token}`,
    userinfo_endpoint: `${issuer}${OIDC_PATHS.userinfo}`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    end_session_endpoint: `${issuer}${OIDC_PATHS.endSession}`,
    introspection_endpoint: `${issuer}/v1/introspect`,
    // RFC 7591, protected: the initial access token is an admin token (registration.ts).
    registration_endpoint: `${issuer}${OIDC_PATHS.register}`,
    introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
    scopes_supported: ['openid', 'profile', 'email'],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    subject_types_supported: ['public'],
    // Each has a key series from the first start (core's signing keys).
    id_token_signing_alg_values_supported: [...ID_TOKEN_ALGORITHMS],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    code_challenge_methods_supported: ['S256'],
    prompt_values_supported: ['none', 'login', 'consent'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'sid', 'at_hash', 'preferred_username', 'name', 'given_name', 'family_name', 'picture', 'updated_at', 'email', 'email_verified'],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    authorization_response_iss_parameter_supported: true,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    frontchannel_logout_supported: false,
  };
}

/** `GET /.well-known/openid-configuration`. */
export async function discoveryRoutes(app: TesseraApp, { config }: ServerContext): Promise<void> {
  const metadata = providerMetadata(config.issuer);
  app.get('/.well-known/openid-configuration', { schema: { tags: ['oidc'], description: 'OpenID Connect Discovery 1.0 provider metadata.' } }, async (_request, reply) => {
    // Static for the life of the process: safe to cache briefly.
    reply.header('cache-control', 'public, max-age=300');
    return metadata;
  });
}
