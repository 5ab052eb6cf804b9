import { TesseraError, type App, type Delivery, type Session, type User } from '@tessera/core';

// Session times repeat on every whoami of a session; formatting a Date each time was a
// visible share of the hot path, so recent results are kept (bounded).
const isoCache = new Map<number, string>();
export function iso(ms: number): string {
  let text = isoCache.get(ms);
  if (text === undefined) {
    if (isoCache.size >= 10_000) isoCache.clear();
    text = new Date(ms).toISOString();
    isoCache.set(ms, text);
  }
  return text;
}
export const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

/** The snake_case JSON of a user (never the password hash). */
export function userJson(u: User) {
  return {
    id: u.id,
    username: u.username,
    email: u.email,
    email_verified: u.emailVerified,
    first_name: u.firstName,
    last_name: u.lastName,
    picture: u.picture,
    disabled: u.disabled,
    created_at: iso(u.createdAt),
    updated_at: iso(u.updatedAt),
  };
}

/** The snake_case JSON of a session (never the token id or secret hash). */
export function sessionJson(s: Session, currentHandle?: string) {
  return {
    handle: s.handle,
    user_id: s.userId,
    ip: s.ip,
    user_agent: s.userAgent,
    created_at: iso(s.createdAt),
    last_seen_at: iso(s.lastSeenAt),
    idle_expires_at: iso(s.idleExpiresAt),
    expires_at: iso(s.expiresAt),
    apps: s.apps.map((a) => ({ client_id: a.clientId, joined_at: iso(a.joinedAt), left_at: isoOrNull(a.leftAt) })),
    active: s.endedAt === null,
    ...(currentHandle === undefined ? {} : { current: s.handle === currentHandle }),
    ended_at: isoOrNull(s.endedAt),
    ended_by: s.endedBy,
    end_reason: s.endReason,
  };
}

/** The snake_case JSON of an app (never the secret hash). */
export function appJson(a: App) {
  return {
    client_id: a.clientId,
    name: a.name,
    trusted: a.trusted,
    allowed_origins: a.allowedOrigins,
    return_urls: a.returnUrls,
    backchannel_logout_uri: a.backchannelLogoutUri,
    connectors: publicConnectors(a.connectors),
    client_name: a.name,
    redirect_uris: a.oidc.redirectUris,
    post_logout_redirect_uris: a.oidc.postLogoutRedirectUris,
    grant_types: a.oidc.grantTypes,
    token_endpoint_auth_method: a.oidc.tokenEndpointAuthMethod,
    backchannel_logout_session_required: a.oidc.backchannelLogoutSessionRequired,
    id_token_signed_response_alg: a.oidc.idTokenSignedResponseAlg,
    created_at: iso(a.createdAt),
    updated_at: iso(a.updatedAt),
  };
}

/** The snake_case JSON of an outbox delivery. */
export function deliveryJson(d: Delivery) {
  return {
    id: d.id,
    client_id: d.clientId,
    channel: d.channel,
    status: d.status,
    scope: d.sid === null ? 'user' : 'session',
    sub: d.sub,
    sid: d.sid,
    sessions: d.handles.length,
    reason: d.reason,
    cursor: d.cursor,
    attempts: d.attempts,
    created_at: iso(d.createdAt),
    next_attempt_at: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
    last_attempt_at: isoOrNull(d.lastAttemptAt),
    delivered_at: isoOrNull(d.deliveredAt),
    last_status: d.lastStatus,
    last_error: d.lastError,
  };
}

/** Connector settings without their secrets (a webhook signing secret is shown only once). */
function publicConnectors(connectors: Record<string, unknown>): Record<string, unknown> {
  const webhook = connectors.webhook as Record<string, unknown> | undefined;
  if (!webhook || typeof webhook !== 'object') return connectors;
  const { secret, ...rest } = webhook;
  return { ...connectors, webhook: { ...rest, has_secret: typeof secret === 'string' } };
}

/** The standard OIDC client metadata names an app body may carry (admin API, CLI, console). */
interface OidcMetadataBody {
  redirect_uris?: string[];
  post_logout_redirect_uris?: string[];
  grant_types?: Array<'authorization_code' | 'refresh_token' | 'client_credentials'>;
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'none';
  backchannel_logout_session_required?: boolean;
  id_token_signed_response_alg?: 'RS256' | 'EdDSA' | 'ES256';
}

/** The OIDC client metadata of an app body (standard names), as the core's partial metadata. */
export function oidcMetadataOf(b: OidcMetadataBody): Partial<App['oidc']> {
  const m: Partial<App['oidc']> = {};
  if (b.redirect_uris !== undefined) m.redirectUris = b.redirect_uris;
  if (b.post_logout_redirect_uris !== undefined) m.postLogoutRedirectUris = b.post_logout_redirect_uris;
  if (b.grant_types !== undefined) m.grantTypes = b.grant_types;
  if (b.token_endpoint_auth_method !== undefined) m.tokenEndpointAuthMethod = b.token_endpoint_auth_method;
  if (b.backchannel_logout_session_required !== undefined) m.backchannelLogoutSessionRequired = b.backchannel_logout_session_required;
  if (b.id_token_signed_response_alg !== undefined) m.idTokenSignedResponseAlg = b.id_token_signed_response_alg;
  return m;
}

/** The display name of an app body: `name`, or its OIDC name `client_name`; both must agree when both are given. */
export function appNameOf(b: { name?: string; client_name?: string }): string | undefined {
  if (b.name !== undefined && b.client_name !== undefined && b.name !== b.client_name) throw new TesseraError('INVALID_REQUEST', 'name and client_name differ; give one of them.');
  return b.name ?? b.client_name;
}

/** The app settings of an admin body (POST or PATCH /admin/api/apps, and the CLI built on the same schemas). */
interface AppSettingsBody extends OidcMetadataBody {
  name?: string;
  client_name?: string;
  trusted?: boolean;
  allowed_origins?: string[];
  return_urls?: string[];
  backchannel_logout_uri?: string | null;
  connectors?: unknown;
}

/**
 * The changes of an app body, as core's updateApp takes them: one mapping for PATCH
 * /admin/api/apps/:id and `tessera apps update`, so both change exactly the same things
 * under the same rules (core checks the merged OIDC metadata either way).
 */
export function appChangesOf(b: AppSettingsBody) {
  return {
    name: appNameOf(b),
    trusted: b.trusted,
    allowedOrigins: b.allowed_origins,
    returnUrls: b.return_urls,
    backchannelLogoutUri: b.backchannel_logout_uri,
    connectors: b.connectors as Record<string, unknown> | undefined,
    oidc: oidcMetadataOf(b),
  };
}
