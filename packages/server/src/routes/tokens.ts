import { Type } from '@fastify/type-provider-typebox';
import { TesseraError } from '@tessera/core';
import type { ServerContext, TesseraApp } from '../context.js';
import { clientOf } from '../http-auth.js';
import { errors } from '../schemas.js';

const client = { security: [{ client: [] }] };
const Token = Type.String({ minLength: 1, maxLength: 8192 });

const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  refresh_token: Type.String(),
  sid: Type.String(),
});

/** The token endpoint and introspection (app context: the app is already authenticated). */
export async function tokenRoutes(app: TesseraApp, { authority }: ServerContext): Promise<void> {
  app.post('/v1/token', {
    schema: {
      ...client, tags: ['tokens'],
      description: 'Form-encoded like OAuth 2.0 token endpoints. grant_type=session_token (with session_token) joins the session and returns an access + refresh token; grant_type=refresh_token (with refresh_token) rotates the pair. A refresh token used twice ends the session (REFRESH_TOKEN_REUSED).',
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: Type.Object({ grant_type: Type.String({ maxLength: 64 }), session_token: Type.Optional(Token), refresh_token: Type.Optional(Token) }, { additionalProperties: false }),
      response: { 200: TokenResponse, ...errors(400, 401) },
    },
  }, async (request) => {
    const caller = clientOf(request);
    const { grant_type: grant, session_token: sessionToken, refresh_token: refreshToken } = request.body;
    let pair;
    if (grant === 'session_token') {
      if (!sessionToken) throw new TesseraError('INVALID_REQUEST', 'session_token is required.');
      pair = await authority.tokens.exchange(caller, sessionToken);
    } else if (grant === 'refresh_token') {
      if (!refreshToken) throw new TesseraError('INVALID_REQUEST', 'refresh_token is required.');
      pair = await authority.tokens.refresh(caller, refreshToken);
    } else {
      throw new TesseraError('UNSUPPORTED_GRANT_TYPE');
    }
    return { access_token: pair.accessToken, token_type: 'Bearer' as const, expires_in: pair.expiresIn, refresh_token: pair.refreshToken, sid: pair.sid };
  });

  app.post('/v1/introspect', {
    schema: {
      ...client, tags: ['tokens'],
      description: 'RFC 7662 token introspection of the calling app\'s access and refresh tokens, and of session tokens. Reflects revocation at once.',
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: Type.Object({ token: Token, token_type_hint: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          active: Type.Boolean(),
          token_type: Type.Optional(Type.String()),
          sub: Type.Optional(Type.String()),
          sid: Type.Optional(Type.String()),
          client_id: Type.Optional(Type.String()),
          aud: Type.Optional(Type.String()),
          iss: Type.Optional(Type.String()),
          exp: Type.Optional(Type.Integer()),
          iat: Type.Optional(Type.Integer()),
          username: Type.Optional(Type.String()),
        }),
        ...errors(400, 401),
      },
    },
  }, async (request) => {
    const caller = clientOf(request);
    const result = await authority.tokens.introspect(caller, request.body.token, request.body.token_type_hint);
    if (!result.active) return { active: false };
    return {
      active: true,
      token_type: result.tokenType,
      sub: result.sub,
      sid: result.sid,
      ...(result.clientId ? { client_id: result.clientId, aud: result.clientId } : {}),
      iss: authority.deps.config.issuer,
      exp: result.exp,
      iat: result.iat,
      username: result.username,
    };
  });
}
