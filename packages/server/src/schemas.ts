import { Type, type Static } from '@fastify/type-provider-typebox';

/**
 * Request and response schemas of the HTTP API. Fastify validates requests with them,
 * serialises responses through them (so a field that is not declared here — a hash, a
 * token id — can never leak into a response), and @fastify/swagger turns them into
 * /openapi.json.
 */

const Str = (max: number, extra: object = {}) => Type.String({ minLength: 1, maxLength: max, ...extra });
const NullableStr = (max: number) => Type.Union([Type.String({ maxLength: max }), Type.Null()]);
const HttpUrl = Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://' });
const Id = Str(128, { pattern: '^[A-Za-z0-9_.@:-]+$' });

export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() }, { $id: 'Error' });

export const UserView = Type.Object(
  {
    id: Type.String(),
    username: Type.String(),
    email: Type.Union([Type.String(), Type.Null()]),
    first_name: Type.Union([Type.String(), Type.Null()]),
    last_name: Type.Union([Type.String(), Type.Null()]),
    picture: Type.Union([Type.String(), Type.Null()]),
    disabled: Type.Boolean(),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'User' },
);

export const SessionAppView = Type.Object({
  client_id: Type.String(),
  joined_at: Type.String({ format: 'date-time' }),
  left_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const SessionView = Type.Object(
  {
    handle: Type.String(),
    user_id: Type.String(),
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    last_seen_at: Type.String({ format: 'date-time' }),
    idle_expires_at: Type.String({ format: 'date-time' }),
    expires_at: Type.String({ format: 'date-time' }),
    apps: Type.Array(SessionAppView),
    active: Type.Boolean(),
    current: Type.Optional(Type.Boolean()),
    ended_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    ended_by: Type.Union([Type.String(), Type.Null()]),
    end_reason: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'Session' },
);

export const AppView = Type.Object(
  {
    client_id: Type.String(),
    name: Type.String(),
    trusted: Type.Boolean(),
    allowed_origins: Type.Array(Type.String()),
    return_urls: Type.Array(Type.String()),
    backchannel_logout_uri: Type.Union([Type.String(), Type.Null()]),
    connectors: Type.Object({}, { additionalProperties: true }),
    // OpenID Connect client metadata, with the standard names (OpenID Connect Dynamic
    // Client Registration 1.0 §2, Back-Channel Logout 1.0 §2.2).
    client_name: Type.String(),
    redirect_uris: Type.Array(Type.String()),
    post_logout_redirect_uris: Type.Array(Type.String()),
    grant_types: Type.Array(Type.String()),
    token_endpoint_auth_method: Type.String(),
    backchannel_logout_session_required: Type.Boolean(),
    id_token_signed_response_alg: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'App' },
);

export const UserClaims = Type.Object(
  {
    id: Type.Optional(Id),
    username: Str(64, { pattern: '^[^\\s]+$' }),
    email: Type.Optional(NullableStr(254)),
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
    first_name: Type.Optional(NullableStr(128)),
    last_name: Type.Optional(NullableStr(128)),
    picture: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
  },
  { additionalProperties: false },
);
export type UserClaimsBody = Static<typeof UserClaims>;

export const UserPatchBody = Type.Object(
  {
    username: Type.Optional(Str(64, { pattern: '^[^\\s]+$' })),
    email: Type.Optional(NullableStr(254)),
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
    first_name: Type.Optional(NullableStr(128)),
    last_name: Type.Optional(NullableStr(128)),
    picture: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

const Origin = Type.String({ maxLength: 512, pattern: '^https?://[^/?#\\s]+$' });
export const AppBody = Type.Object(
  {
    client_id: Type.Optional(Id),
    // `name` or its OIDC name `client_name` (one is required; see the route).
    name: Type.Optional(Str(128)),
    client_name: Type.Optional(Str(128)),
    redirect_uris: Type.Optional(Type.Array(HttpUrl, { maxItems: 50 })),
    post_logout_redirect_uris: Type.Optional(Type.Array(HttpUrl, { maxItems: 50 })),
    grant_types: Type.Optional(Type.Array(Type.Union([Type.Literal('authorization_code'), Type.Literal('refresh_token')]), { minItems: 1, maxItems: 2 })),
    token_endpoint_auth_method: Type.Optional(Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('none')])),
    backchannel_logout_session_required: Type.Optional(Type.Boolean()),
    id_token_signed_response_alg: Type.Optional(Type.Union([Type.Literal('RS256'), Type.Literal('EdDSA'), Type.Literal('ES256')])),
    trusted: Type.Optional(Type.Boolean()),
    allowed_origins: Type.Optional(Type.Array(Origin, { maxItems: 50 })),
    return_urls: Type.Optional(Type.Array(HttpUrl, { maxItems: 100 })),
    backchannel_logout_uri: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
    connectors: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
);
export const AppPatchBody = Type.Object(
  {
    name: Type.Optional(Str(128)),
    trusted: Type.Optional(Type.Boolean()),
    allowed_origins: Type.Optional(Type.Array(Origin, { maxItems: 50 })),
    return_urls: Type.Optional(Type.Array(HttpUrl, { maxItems: 100 })),
    backchannel_logout_uri: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
    connectors: Type.Optional(Type.Object({}, { additionalProperties: true })),
    client_name: Type.Optional(Str(128)),
    redirect_uris: Type.Optional(Type.Array(HttpUrl, { maxItems: 50 })),
    post_logout_redirect_uris: Type.Optional(Type.Array(HttpUrl, { maxItems: 50 })),
    grant_types: Type.Optional(Type.Array(Type.Union([Type.Literal('authorization_code'), Type.Literal('refresh_token')]), { minItems: 1, maxItems: 2 })),
    token_endpoint_auth_method: Type.Optional(Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('none')])),
    backchannel_logout_session_required: Type.Optional(Type.Boolean()),
    id_token_signed_response_alg: Type.Optional(Type.Union([Type.Literal('RS256'), Type.Literal('EdDSA'), Type.Literal('ES256')])),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const Handle = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
export const HandleParams = Type.Object({ handle: Handle });
export const IdParams = Type.Object({ id: Id });
export const Revoked = Type.Object({ revoked: Type.Array(Type.String()) });
export const SessionToken = Type.String({ minLength: 1, maxLength: 300 });

export const Device = Type.Object(
  {
    ip: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
    user_agent: Type.Optional(Type.Union([Type.String({ maxLength: 512 }), Type.Null()])),
  },
  { additionalProperties: false },
);

/** Common error responses, attached to every route so the OpenAPI document shows them. */
export const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorBody]));

const NullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
export const DeliveryView = Type.Object(
  {
    id: Type.Integer(),
    client_id: Type.String(),
    channel: Type.String(),
    status: Type.String(),
    scope: Type.String({ description: '`session` (names the session) or `user` (a user-wide end: names only the user).' }),
    sub: Type.String(),
    sid: Type.Union([Type.String(), Type.Null()]),
    sessions: Type.Integer({ description: 'How many sessions this notice covers.' }),
    reason: Type.String(),
    cursor: Type.Integer(),
    attempts: Type.Integer(),
    created_at: Type.String({ format: 'date-time' }),
    next_attempt_at: NullableTime,
    last_attempt_at: NullableTime,
    delivered_at: NullableTime,
    last_status: Type.Union([Type.Integer(), Type.Null()]),
    last_error: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'Delivery' },
);
