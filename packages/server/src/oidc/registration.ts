import { Type, type Static } from '@fastify/type-provider-typebox';
import { isTesseraError, type App } from '@tessera/core';
import Value from 'typebox/value';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext, TesseraApp } from '../context.js';
import { requireAdmin } from '../http-auth.js';
import { HttpUrl } from '../schemas.js';
import { oidcMetadataOf } from '../views.js';
import { OIDC_PATHS } from './protocol.js';

/**
 * The client metadata Tessera understands at registration (RFC 7591 §2, OpenID Connect
 * Dynamic Client Registration §2, Back-Channel Logout §2.2, RP-Initiated Logout §3.1), with
 * the limits of the admin API. Other members are ignored, as RFC 7591 §2 requires.
 */
const RegistrationMetadata = Type.Object({
  redirect_uris: Type.Array(HttpUrl, { minItems: 1, maxItems: 50 }),
  post_logout_redirect_uris: Type.Optional(Type.Array(HttpUrl, { maxItems: 50 })),
  grant_types: Type.Optional(Type.Array(Type.Union([Type.Literal('authorization_code'), Type.Literal('refresh_token')]), { minItems: 1, maxItems: 2 })),
  response_types: Type.Optional(Type.Array(Type.Literal('code'), { minItems: 1, maxItems: 1 })),
  token_endpoint_auth_method: Type.Optional(Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('none')])),
  client_name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  backchannel_logout_uri: Type.Optional(HttpUrl),
  backchannel_logout_session_required: Type.Optional(Type.Boolean()),
  id_token_signed_response_alg: Type.Optional(Type.Union([Type.Literal('RS256'), Type.Literal('EdDSA'), Type.Literal('ES256')])),
});
type Metadata = Static<typeof RegistrationMetadata>;
const KNOWN = Object.keys(RegistrationMetadata.properties) as Array<keyof Metadata>;

/** The registered metadata as RFC 7591 §3.2.1 returns it. */
function registeredJson(app: App, clientSecret: string | null): Record<string, unknown> {
  return {
    client_id: app.clientId,
    ...(clientSecret !== null ? { client_secret: clientSecret, client_secret_expires_at: 0 } : {}),
    client_id_issued_at: Math.floor(app.createdAt / 1000),
    client_name: app.name,
    redirect_uris: app.oidc.redirectUris,
    post_logout_redirect_uris: app.oidc.postLogoutRedirectUris,
    grant_types: app.oidc.grantTypes,
    response_types: ['code'],
    token_endpoint_auth_method: app.oidc.tokenEndpointAuthMethod,
    id_token_signed_response_alg: app.oidc.idTokenSignedResponseAlg,
    ...(app.backchannelLogoutUri ? { backchannel_logout_uri: app.backchannelLogoutUri } : {}),
    backchannel_logout_session_required: app.oidc.backchannelLogoutSessionRequired,
  };
}

/**
 * OAuth 2.0 Dynamic Client Registration (RFC 7591) at `POST /oidc/register`, for relying
 * parties that register themselves. Registration is protected: the initial access token
 * (RFC 7591 §3, `Authorization: Bearer`) is an admin token, so only someone who could have
 * registered the app through the admin API can do it here, and open registration (anyone
 * adding redirect URIs that carry users' codes) is never possible. A registered client is
 * never trusted (its users see the consent page) and has no Tessera-specific settings; an
 * admin changes those later with PATCH /admin/api/apps/:id. The client configuration
 * endpoint (RFC 7592) is not offered.
 */
export async function registrationRoutes(app: TesseraApp, { authority, limits }: ServerContext): Promise<void> {
  function fail(reply: FastifyReply, error: string, description: string, status = 400): FastifyReply {
    // RFC 7591 §3.2.2 (and RFC 6750 §3 for the token); Tessera's `message` beside it.
    if (status === 401) reply.header('www-authenticate', `Bearer error="${error}"`);
    return reply.status(status).header('cache-control', 'no-store').type('application/json').send({ error, error_description: description, message: description });
  }

  async function register(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    try {
      await requireAdmin(request, authority, limits);
    } catch (error) {
      // Past the failure limit: Tessera's 429 with Retry-After (the error handler).
      if (isTesseraError(error, 'RATE_LIMITED')) throw error;
      return fail(reply, 'invalid_token', 'An initial access token (an admin token) is required to register a client.', 401);
    }
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail(reply, 'invalid_client_metadata', 'The request body must be a JSON object of client metadata.');
    const given = body as Record<string, unknown>;
    const metadata: Record<string, unknown> = {};
    for (const name of KNOWN) if (given[name] !== undefined) metadata[name] = given[name];
    const first = [...Value.Errors(RegistrationMetadata, metadata)][0];
    if (first) {
      const field = first.instancePath.split('/')[1] ?? '';
      // RFC 7591 §3.2.2: a bad redirect URI has its own code.
      const error = field === 'redirect_uris' || (field === '' && metadata.redirect_uris === undefined) ? 'invalid_redirect_uri' : 'invalid_client_metadata';
      return fail(reply, error, `${field || 'redirect_uris'}: ${field ? first.message : 'is required'}.`);
    }
    const m = metadata as Metadata;
    try {
      const { app: created, clientSecret } = await authority.apps.registerApp(
        {
          // A name is required; without client_name, the host of the first redirect URI.
          name: m.client_name ?? new URL(m.redirect_uris[0]!).host,
          trusted: false,
          allowedOrigins: [],
          returnUrls: [],
          backchannelLogoutUri: m.backchannel_logout_uri ?? null,
          oidc: oidcMetadataOf(m),
        },
        'admin',
      );
      // A public client gets no secret (it could not keep one).
      return reply.status(201).header('cache-control', 'no-store').send(registeredJson(created, created.oidc.tokenEndpointAuthMethod === 'none' ? null : clientSecret));
    } catch (error) {
      // Core's rules on the metadata as a whole (e.g. a client without authorization_code).
      if (isTesseraError(error) && error.status === 400) return fail(reply, error.message.startsWith('redirect_uris:') ? 'invalid_redirect_uri' : 'invalid_client_metadata', error.message);
      throw error;
    }
  }

  app.post(OIDC_PATHS.register, {
    schema: {
      tags: ['oidc'],
      security: [{ admin: [] }],
      description: 'OAuth 2.0 Dynamic Client Registration (RFC 7591): JSON client metadata (redirect_uris required); the initial access token is an admin token. The client is registered untrusted; errors are RFC 7591 §3.2.2 bodies (invalid_redirect_uri, invalid_client_metadata).',
      consumes: ['application/json'],
    },
  }, register);
}
