/**
 * The domain records of Tessera. Times are epoch milliseconds. Records carrying secrets'
 * hashes (`passwordHash`, `secretHash`) never leave the server: HTTP responses are built
 * from explicit views that omit them.
 */

/** A person who can hold sessions. */
export interface User {
  id: string;
  username: string;
  email: string | null;
  /**
   * True only when someone accountable said the email belongs to this user: an admin (API
   * or CLI), or a trusted app that asserted it in its claims. Never true by default, and
   * back to false when the email changes. Only a verified email leaves Tessera for another
   * app to match accounts on (shared cookie, ID tokens, connector payloads): see
   * {@link verifiedEmailOf}.
   */
  emailVerified: boolean;
  firstName: string | null;
  lastName: string | null;
  picture: string | null;
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
}

/** A user as stored: with the argon2id hash of the password, if any. */
export interface UserRecord extends User {
  passwordHash: string | null;
}

/** Fields of a user that can be changed. */
export interface UserPatch {
  username?: string;
  email?: string | null;
  emailVerified?: boolean;
  firstName?: string | null;
  lastName?: string | null;
  picture?: string | null;
  disabled?: boolean;
  passwordHash?: string | null;
  updatedAt: number;
}

/** An application that takes part in sessions. */
export interface App {
  clientId: string;
  name: string;
  /** May start sessions for users it authenticated, and create users from claims. */
  trusted: boolean;
  /** Exact origins (scheme://host[:port]) allowed to call the XHR logout with credentials. */
  allowedOrigins: string[];
  /** Exact URLs a browser may be sent back to after login or logout. */
  returnUrls: string[];
  backchannelLogoutUri: string | null;
  /** Connector settings (webhook, NodeBB…), opaque to the core for now. */
  connectors: Record<string, unknown>;
  /** OpenID Connect client metadata (standard names in the HTTP API). */
  oidc: OidcClientMetadata;
  createdAt: number;
  updatedAt: number;
}

/** How a client authenticates at the OIDC token endpoint. */
export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** An algorithm Tessera signs with (access tokens use the configured one; ID tokens the client's). */
export type SigningAlgorithm = 'EdDSA' | 'ES256' | 'RS256';

/**
 * The OpenID Connect client metadata of an app (OpenID Connect Dynamic Client Registration
 * 1.0 §2 and Back-Channel Logout 1.0 §2.2 names, camelCased). An app with no
 * `redirectUris` cannot use the authorization endpoint.
 */
export interface OidcClientMetadata {
  /** Exact redirect URIs (compared as strings, never as prefixes). */
  redirectUris: string[];
  /** Exact URIs the end-session endpoint may redirect to after logout. */
  postLogoutRedirectUris: string[];
  /**
   * `authorization_code` and/or `refresh_token`; `client_credentials` makes the app a
   * Shared Signals receiver client (access tokens with scopes ssf.manage and ssf.read).
   */
  grantTypes: Array<'authorization_code' | 'refresh_token' | 'client_credentials'>;
  /** `none` makes a public client: PKCE is then required. */
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** The client wants `sid` in every logout token: a user-wide end then sends one per session. */
  backchannelLogoutSessionRequired: boolean;
  /** The algorithm of its ID tokens; RS256 by default (OpenID Connect Core §2: the default every RP accepts). */
  idTokenSignedResponseAlg: SigningAlgorithm;
}

/** An app as stored: with the hash of its client secret. */
export interface AppRecord extends App {
  secretHash: string;
}

/** Fields of an app that can be changed. */
export type AppPatch = Partial<Omit<App, 'clientId' | 'createdAt'>> & { secretHash?: string; updatedAt: number };

/** An app's membership in a session. */
export interface SessionApp {
  clientId: string;
  joinedAt: number;
  /** Set when the app's part of the session was ended (scope `app`). */
  leftAt: number | null;
}

/** Every reason a session (or an app's part of it) can end, in a stable order (filters, charts). */
export const END_REASONS = ['logout', 'user_revoked', 'admin_revoked', 'user_disabled', 'user_deleted', 'password_changed', 'expired', 'token_theft', 'upstream_signal'] as const;

/** Why a session (or an app's part of it) ended. */
export type EndReason = (typeof END_REASONS)[number];

/**
 * Who ended it: `user`, `admin`, `app:<client_id>`, `system`, or `ssf:<name>` (a security
 * event from the upstream transmitter of that name, `ssf.upstreams`).
 */
export type Actor = 'user' | 'admin' | 'system' | `app:${string}` | `ssf:${string}`;

/** One login of one user, shared by every app that joined it. */
export interface Session {
  /** Public handle, safe to list and to put in tokens (`sid`). */
  handle: string;
  userId: string;
  ip: string | null;
  userAgent: string | null;
  createdAt: number;
  lastSeenAt: number;
  idleTimeoutMs: number;
  /** The absolute end of life. */
  expiresAt: number;
  /** lastSeenAt + idleTimeoutMs, capped at expiresAt: the moment it dies unless used. */
  idleExpiresAt: number;
  apps: SessionApp[];
  endedAt: number | null;
  endedBy: Actor | null;
  endReason: EndReason | null;
}

/** A session as stored: with the token id (lookup key) and the hash of the token secret. */
export interface SessionRecord extends Session {
  tokenId: string;
  secretHash: string;
}

/** An entry of the ordered, gapless revocation log. */
export interface RevocationEvent {
  /** Strictly increasing by one, with no gaps, in commit order. */
  cursor: number;
  /** The session handle. */
  sid: string;
  /** The user id. */
  sub: string;
  reason: EndReason;
  actor: Actor;
  at: number;
  /** Set when only this app's part of the session ended; null when the whole session ended. */
  app: string | null;
}

/** How a session end is recorded. */
export interface SessionEnd {
  at: number;
  reason: EndReason;
  actor: Actor;
}

/** One line of the audit trail. */
export interface AuditEvent {
  id?: number;
  at: number;
  actor: string;
  action: string;
  userId: string | null;
  sessionHandle: string | null;
  clientId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
}

/** An admin API token as stored (hash only). */
export interface AdminTokenRecord {
  id: string;
  secretHash: string;
  label: string;
  createdAt: number;
}

/**
 * A sign-in to the admin console (/admin): the console's own session, separate from user
 * sessions, made after an admin token was presented once. Stored as `<id>.<secret>` with
 * only the secret's hash, like every token.
 */
export interface ConsoleSessionRecord {
  id: string;
  secretHash: string;
  createdAt: number;
  expiresAt: number;
  /** Set by sign-out. */
  endedAt: number | null;
}

/** A signing key pair (JWKs); the private half never leaves the server. */
export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlgorithm;
  publicJwk: Record<string, unknown>;
  privateJwk: Record<string, unknown>;
  /** Signs tokens from this moment… */
  activatesAt: number;
  /** …until this one (then a newer key takes over)… */
  retiresAt: number;
  /** …and is published (for verification) until this one. */
  expiresAt: number;
  createdAt: number;
}

/** A refresh token as stored: single-use, bound to one session and one app. */
export interface RefreshTokenRecord {
  id: string;
  secretHash: string;
  handle: string;
  clientId: string;
  createdAt: number;
  expiresAt: number;
  /** Set when it was exchanged for a new pair; a second use is theft. */
  usedAt: number | null;
  /** The OAuth scope the pair was granted (OIDC flows); carried over on rotation. */
  scope?: string | null;
}

/** An OAuth authorization code as stored: one use, short-lived, bound to client and redirect URI. */
export interface AuthorizationCodeRecord {
  id: string;
  secretHash: string;
  clientId: string;
  /** The Tessera session the user was signed in with: the OIDC session is this session. */
  handle: string;
  userId: string;
  redirectUri: string;
  /** The PKCE S256 challenge, if the client sent one. */
  codeChallenge: string | null;
  nonce: string | null;
  scope: string;
  /** When the user authenticated (the session's login), epoch ms. */
  authTime: number;
  createdAt: number;
  expiresAt: number;
  /** Set on the first redemption; a second one is a replay. */
  usedAt: number | null;
}

/** A user's remembered consent for an app that is not trusted. */
export interface ConsentRecord {
  userId: string;
  clientId: string;
  scope: string;
  createdAt: number;
}

/** How an app is told of a logout. */
export type DeliveryChannel = 'backchannel' | 'webhook';

/** Where a delivery stands: waiting (or retrying), arrived, or given up after the horizon. */
export type DeliveryStatus = 'pending' | 'delivered' | 'dead';

/** A logout notice to one app, as planned in the revoking transaction. */
export interface NewDelivery {
  /** The revocation log cursor it tells of (the highest, for a user-wide end). */
  cursor: number;
  sub: string;
  /** The session handle; null for a user-wide end (the notice names only the user). */
  sid: string | null;
  /** Every session handle this notice covers (one, or all of a user-wide end). */
  handles: string[];
  clientId: string;
  channel: DeliveryChannel;
  reason: EndReason;
  /**
   * When it was planned: in the revoking transaction, so the revocation log entry's `at`.
   * Logout tokens carry it as `revoked_at` (docs/decisions/0006-late-logouts.md).
   */
  createdAt: number;
  /** After this moment a failing delivery is given up (status `dead`). */
  horizonAt: number;
}

/** A delivery of the durable outbox. */
/**
 * Where an outbox row stands in its attempts: the columns the logout outbox (deliveries) and
 * the SET outbox (ssf_events) share, leased and retried the same way.
 */
export interface OutboxAttemptState {
  attempts: number;
  nextAttemptAt: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  lastAttemptAt: number | null;
  lastError: string | null;
  lastStatus: number | null;
  deliveredAt: number | null;
}

export interface Delivery extends NewDelivery, OutboxAttemptState {
  id: number;
  status: DeliveryStatus;
}

/** The outcome of one delivery attempt. */
export type DeliveryOutcome =
  | { status: 'delivered'; at: number; httpStatus: number }
  | { status: 'pending' | 'dead'; at: number; nextAttemptAt: number; error: string; httpStatus: number | null };

/**
 * The user's email when it is verified, else null: what may be handed to another app that
 * matches accounts by email (the shared session cookie, ID tokens, connector payloads). An
 * unverified email is only a claim: a forum that signs in "the user with this email" would
 * otherwise sign a stranger in as whoever owns that address there.
 *
 * @example
 * ```ts
 * const email = verifiedEmailOf(user); // null unless user.emailVerified
 * ```
 */
export function verifiedEmailOf(user: Pick<User, 'email' | 'emailVerified'>): string | null {
  return user.emailVerified && user.email ? user.email : null;
}
