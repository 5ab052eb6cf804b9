import { Type, type Static } from '@fastify/type-provider-typebox';

/**
 * Request and response schemas of the HTTP API. Fastify validates requests with them,
 * serialises responses through them (so a field that is not declared here — a hash, a
 * token id — can never leak into a response), and @fastify/swagger turns them into
 * /openapi.json.
 */

const Str = (max: number, extra: object = {}) => Type.String({ minLength: 1, maxLength: max, ...extra });
const NullableStr = (max: number) => Type.Union([Type.String({ maxLength: max }), Type.Null()]);
/** An http(s) URL (the admin API's and client registration's redirect and logout URIs). */
export const HttpUrl = Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://' });
// No spaces in a username (visible ones: the schema says so, 400 INVALID_REQUEST). Control,
// bidirectional and invisible characters — some of which \s also matches (newline, BOM) —
// are left to core's one name rule (normaliseName, 400 INVALID_NAME), so every path that
// creates or renames a user answers them with the same code, whatever its schema.
const USERNAME_PATTERN = '^[^ \\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000]+$';
const Id = Str(128, { pattern: '^[A-Za-z0-9_.@:-]+$' });

/**
 * A cursor or id in a query or path: a decimal integer from 0 (or `minimum`) up to the
 * largest integer a JSON number holds exactly. Bounded so that `1e309`, `Infinity` or
 * twenty digits are a 400, never a store query with a number the database cannot hold.
 */
export const Cursor = (options: { minimum?: number; default?: number; description?: string } = {}) => Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, ...options });
/** A page size: 1 to 1000. */
export const PageLimit = (def = 100) => Type.Integer({ minimum: 1, maximum: 1000, default: def });

/**
 * A free-form JSON object field (app connector settings), bounded in depth and size: an
 * unbounded one nested 6 000 levels deep once answered 500 (the stack overflowed while
 * storing it). The bounds are checked without recursion (validation.ts).
 */
export const BoundedJsonObject = (description?: string) =>
  Type.Object({}, { additionalProperties: true, 'x-max-depth': 8, 'x-max-bytes': 16_384, ...(description ? { description } : {}) });

export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() }, { $id: 'Error' });

export const UserView = Type.Object(
  {
    id: Type.String(),
    username: Type.String(),
    email: Type.Union([Type.String(), Type.Null()]),
    email_verified: Type.Boolean({ description: 'True only when an admin, or a trusted app in its claims, said the email is verified. Only a verified email is given to other apps (shared cookie, ID tokens).' }),
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
    username: Str(64, { pattern: USERNAME_PATTERN }),
    email: Type.Optional(NullableStr(254)),
    email_verified: Type.Optional(Type.Boolean({ description: 'Say true only when you verified the email yourself; default false.' })),
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
    username: Type.Optional(Str(64, { pattern: USERNAME_PATTERN })),
    email: Type.Optional(NullableStr(254)),
    email_verified: Type.Optional(Type.Boolean({ description: 'A changed email is unverified unless this says true in the same request.' })),
    password: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
    first_name: Type.Optional(NullableStr(128)),
    last_name: Type.Optional(NullableStr(128)),
    picture: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

const Origin = Type.String({ maxLength: 512, pattern: '^https?://[^/?#\\s]+$' });
// The settings an app may be registered with and later change: Tessera's own and the
// standard OpenID Connect client metadata (RFC 7591 names). One list for POST and PATCH.
const AppSettings = {
  client_name: Type.Optional(Str(128)),
  redirect_uris: Type.Optional(Type.Array(HttpUrl, { maxItems: 50 })),
  post_logout_redirect_uris: Type.Optional(Type.Array(HttpUrl, { maxItems: 50 })),
  grant_types: Type.Optional(Type.Array(Type.Union([Type.Literal('authorization_code'), Type.Literal('refresh_token'), Type.Literal('client_credentials')]), { minItems: 1, maxItems: 3 })),
  token_endpoint_auth_method: Type.Optional(Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('none')])),
  backchannel_logout_session_required: Type.Optional(Type.Boolean()),
  id_token_signed_response_alg: Type.Optional(Type.Union([Type.Literal('RS256'), Type.Literal('EdDSA'), Type.Literal('ES256')])),
  trusted: Type.Optional(Type.Boolean()),
  allowed_origins: Type.Optional(Type.Array(Origin, { maxItems: 50 })),
  return_urls: Type.Optional(Type.Array(HttpUrl, { maxItems: 100 })),
  backchannel_logout_uri: Type.Optional(Type.Union([HttpUrl, Type.Null()])),
  connectors: Type.Optional(BoundedJsonObject('Connector settings (webhook, NodeBB); at most 8 levels deep and 16 KiB of JSON.')),
};
export const AppBody = Type.Object(
  {
    client_id: Type.Optional(Id),
    // `name` or its OIDC name `client_name` (one is required; see the route).
    name: Type.Optional(Str(128)),
    ...AppSettings,
  },
  { additionalProperties: false },
);
export const AppPatchBody = Type.Object(
  {
    name: Type.Optional(Str(128)),
    ...AppSettings,
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
