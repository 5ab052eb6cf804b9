import { createHash } from 'node:crypto';
import { isMember } from './app-access.js';
import { signCompactJwsForRequest } from './compact-jws.js';
import type { AppService } from './apps.js';
import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import { verifiedEmailOf, type AppRecord, type AuthorizationCodeRecord, type ConsentRecord, type SessionRecord, type SigningAlgorithm, type UserRecord } from './model.js';
import { createSplitToken, randomToken, splitToken, verifySecret } from './secrets.js';
import type { SessionService } from './sessions.js';
import type { KeyManager } from './signing-keys.js';
import type { TokenPair, TokenService } from './tokens.js';

/** The scopes Tessera's OpenID Provider knows; others are ignored (RFC 6749 §3.3 lets the server narrow a request). */
export const OIDC_SCOPES = ['openid', 'profile', 'email'] as const;

/** What a redeemed code gives: the token pair and what the ID token is made of. */
export interface RedeemedCode {
  pair: TokenPair;
  session: SessionRecord;
  user: UserRecord;
  nonce: string | null;
  scope: string;
}

// RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

/** The RFC 7636 S256 challenge of a code verifier. */
export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** The scope a request may get: the known scopes it asked for, in a fixed order. */
export function narrowScope(requested: string): string {
  const asked = new Set(requested.split(' ').filter(Boolean));
  return OIDC_SCOPES.filter((s) => asked.has(s)).join(' ');
}

/**
 * Whether a `login_hint` or `logout_hint` names `user`: its user id, or its username or
 * email compared case-insensitively (both are looked up that way at sign-in), or one of
 * `handles` (session ids the request is about: a logout_hint may name the session).
 *
 * @example
 * ```ts
 * hintNamesUser('Alice', user); // true when user.username is 'alice'
 * hintNamesUser('ses_x', user, ['ses_x']); // true
 * ```
 */
export function hintNamesUser(hint: string, user: Pick<UserRecord, 'id' | 'username' | 'email'>, handles: readonly string[] = []): boolean {
  const lower = hint.normalize('NFC').toLowerCase();
  return hint === user.id || handles.includes(hint) || lower === user.username.toLowerCase() || (user.email !== null && lower === user.email.toLowerCase());
}

/**
 * The OpenID Provider's domain rules on Tessera's own sessions: one-use authorization codes
 * bound to the session the user signed in with, their redemption (which joins the client
 * to that session, exactly like `grant_type=session_token`), ID tokens and the claims of a
 * user, and remembered consents. There is no OIDC session apart from the Tessera session:
 * ending it in any way ends every grant made here.
 *
 * @example
 * ```ts
 * const code = await authority.oidc.issueCode({ app, session, redirectUri, codeChallenge, nonce, scope: 'openid' });
 * const { pair, session, user } = await authority.oidc.redeemCode(app, code, { redirectUri, codeVerifier });
 * const idToken = await authority.oidc.signIdToken({ app, session, user, nonce, scope, accessToken: pair.accessToken });
 * ```
 */
export function createOidcService(deps: CoreDeps, sessions: SessionService, tokens: TokenService, keys: KeyManager, apps: AppService) {
  const { store, clock, config } = deps;

  async function activeUser(userId: string): Promise<UserRecord | null> {
    const user = await store.findUserById(userId);
    return user && !user.disabled ? user : null;
  }

  /** A one-use code for `app`, bound to the session, the exact redirect URI and the PKCE challenge. */
  async function issueCode(input: { app: AppRecord; session: SessionRecord; redirectUri: string; codeChallenge: string | null; nonce: string | null; scope: string }): Promise<string> {
    const code = createSplitToken('ac');
    const now = clock.now();
    await store.createAuthorizationCode({
      id: code.id,
      secretHash: code.secretHash,
      clientId: input.app.clientId,
      handle: input.session.handle,
      userId: input.session.userId,
      redirectUri: input.redirectUri,
      codeChallenge: input.codeChallenge,
      nonce: input.nonce,
      scope: input.scope,
      authTime: input.session.createdAt,
      createdAt: now,
      expiresAt: now + config.oidc.codeTtlSeconds * 1000,
      usedAt: null,
    });
    return code.token;
  }

  /**
   * RFC 6749 §4.1.3 / §10.5: a code used a second time means someone else holds it. The
   * request is refused, and what the first redemption issued is revoked (§4.1.2: "SHOULD
   * revoke … all tokens previously issued based on that authorization code"): the client
   * leaves the session, so its refresh tokens, access tokens (introspection) and userinfo
   * stop working; the rest of the session goes on. The client hears of it back-channel.
   */
  async function replayed(record: AuthorizationCodeRecord): Promise<TesseraError> {
    await sessions.leaveSession(record.handle, record.clientId, { actor: `app:${record.clientId}`, reason: 'token_theft' });
    return new TesseraError('INVALID_GRANT', 'The authorization code was already used; the tokens issued for it are revoked.');
  }

  /** `grant_type=authorization_code` for an authenticated (or public) client. */
  async function redeemCode(app: AppRecord, code: string, input: { redirectUri: string | undefined; codeVerifier: string | undefined }): Promise<RedeemedCode> {
    const parts = splitToken(code);
    const record = parts && parts.id.startsWith('ac') ? await store.findAuthorizationCode(parts.id) : null;
    if (!parts || !record || !verifySecret(parts.secret, record.secretHash)) throw new TesseraError('INVALID_GRANT', 'The authorization code is unknown.');
    // A code issued to another client is refused without being spent: the client it was
    // issued to may still redeem it (RFC 6749 §4.1.3 "ensure that the authorization code
    // was issued to the authenticated confidential client").
    if (record.clientId !== app.clientId) throw new TesseraError('INVALID_GRANT', 'The authorization code was issued to another client.');
    if (record.usedAt !== null) throw await replayed(record);
    const now = clock.now();
    if (now >= record.expiresAt) throw new TesseraError('INVALID_GRANT', 'The authorization code has expired.');
    // §4.1.3: redirect_uri must be present and identical when it was in the request.
    if (input.redirectUri !== record.redirectUri) throw new TesseraError('INVALID_GRANT', 'redirect_uri does not match the authorization request.');
    if (record.codeChallenge !== null) {
      if (input.codeVerifier === undefined || !VERIFIER.test(input.codeVerifier) || s256(input.codeVerifier) !== record.codeChallenge) {
        throw new TesseraError('INVALID_GRANT', 'The PKCE code_verifier is missing or does not match.');
      }
    } else if (input.codeVerifier !== undefined) {
      // RFC 9700 §2.1.1: a code_verifier for a code requested without a challenge is a
      // downgrade attempt (an attacker injecting a code obtained without PKCE).
      throw new TesseraError('INVALID_GRANT', 'code_verifier was sent but the authorization request had no code_challenge.');
    }
    // Of two concurrent redemptions exactly one spends the code, and the same transaction
    // makes the client a member of the session (from now on every end of it reaches this
    // client). The other is a replay: it only gets here once that join has committed, so
    // its revocation (replayed) always reaches what the winner is given, even when the
    // winner's tokens are issued after it (refresh and userinfo check the membership).
    if (!(await store.redeemAuthorizationCode(record.id, now))) throw await replayed(record);
    // Cached copies of this session still list the old apps.
    deps.cache?.dropSessions([record.handle]);
    const session = await tokens.activeSession(record.handle);
    const user = session ? await activeUser(session.userId) : null;
    if (!session || !user) throw new TesseraError('INVALID_GRANT', 'The session this code was issued in has ended.');
    const pair = await tokens.issuePair(session, app.clientId, record.scope);
    return { pair, session, user, nonce: record.nonce, scope: record.scope };
  }

  /** The standard claims of a user for a scope (OpenID Connect Core §5.4). */
  function claimsFor(user: UserRecord, scope: string): Record<string, unknown> {
    const scopes = new Set(scope.split(' '));
    const claims: Record<string, unknown> = {};
    if (scopes.has('profile')) {
      const name = [user.firstName, user.lastName].filter(Boolean).join(' ');
      Object.assign(claims, {
        preferred_username: user.username,
        name: name || user.username,
        ...(user.firstName ? { given_name: user.firstName } : {}),
        ...(user.lastName ? { family_name: user.lastName } : {}),
        ...(user.picture ? { picture: user.picture } : {}),
        updated_at: Math.floor(user.updatedAt / 1000),
      });
    }
    // An RP may link accounts by email, so an address nobody proved must not be presented
    // as the user's: `email` is released only when verified, always with email_verified true.
    const email = scopes.has('email') ? verifiedEmailOf(user) : null;
    if (email) Object.assign(claims, { email, email_verified: true });
    return claims;
  }

  /** OpenID Connect Core §3.3.2.11: the left half of the hash of the access token, base64url. */
  function halfHash(value: string, alg: SigningAlgorithm): string {
    // SHA-512 for Ed25519 (the hash EdDSA uses), SHA-256 for RS256 and ES256.
    const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256').update(value, 'ascii').digest();
    return digest.subarray(0, digest.length / 2).toString('base64url');
  }

  /** An ID token for `app`, signed with the algorithm it registered (published in the JWKS). */
  async function signIdToken(input: { app: AppRecord; session: SessionRecord; user: UserRecord; nonce: string | null; scope: string; accessToken: string }): Promise<string> {
    const key = await keys.signingKey(input.app.oidc.idTokenSignedResponseAlg);
    const now = Math.floor(clock.now() / 1000);
    // node:crypto (compact-jws.ts says where and why); the claims in the order jose's SignJWT
    // wrote them.
    return signCompactJwsForRequest(key, 'JWT', {
      ...claimsFor(input.user, input.scope),
      sid: input.session.handle,
      auth_time: Math.floor(input.session.createdAt / 1000),
      at_hash: halfHash(input.accessToken, key.alg),
      ...(input.nonce !== null ? { nonce: input.nonce } : {}),
      iss: config.issuer,
      sub: input.user.id,
      aud: input.app.clientId,
      iat: now,
      exp: now + config.oidc.idTokenTtlSeconds,
      jti: randomToken(16),
    });
  }

  /**
   * The user and session behind an OIDC access token, for userinfo: the signature, the
   * session (active now, read from the store), the client still a member since the token
   * was issued, the user enabled. Null otherwise.
   */
  async function userinfoSubject(accessToken: string): Promise<{ user: UserRecord; scope: string; clientId: string } | null> {
    const claims = await tokens.verifyAccessToken(accessToken);
    if (!claims || typeof claims.sid !== 'string' || typeof claims.client_id !== 'string' || typeof claims.scope !== 'string') return null;
    const session = await tokens.activeSession(claims.sid);
    if (!session || !isMember(session, claims.client_id, claims.iat)) return null;
    const user = await activeUser(session.userId);
    if (!user || user.id !== claims.sub) return null;
    return { user, scope: claims.scope, clientId: claims.client_id };
  }

  /** True when the user has consented to this app for every scope asked (trusted apps need no consent). */
  async function hasConsent(app: AppRecord, userId: string, scope: string): Promise<boolean> {
    if (app.trusted) return true;
    const found = await store.findConsent(userId, app.clientId);
    if (!found) return false;
    const given = new Set(found.scope.split(' '));
    return scope.split(' ').every((s) => given.has(s));
  }

  async function grantConsent(app: AppRecord, userId: string, scope: string): Promise<void> {
    const found = await store.findConsent(userId, app.clientId);
    const merged = narrowScope(`${found?.scope ?? ''} ${scope}`);
    await store.saveConsent({ userId, clientId: app.clientId, scope: merged, createdAt: clock.now() });
    await store.appendAudit({ at: clock.now(), actor: 'user', action: 'consent.granted', userId, sessionHandle: null, clientId: app.clientId, ip: null, details: { scope: merged } });
  }

  async function listConsents(userId: string): Promise<ConsentRecord[]> {
    return store.listConsents(userId);
  }

  /** Withdraws a consent: the app asks again on its next authorization request. */
  async function revokeConsent(userId: string, clientId: string): Promise<boolean> {
    const removed = await store.deleteConsent(userId, clientId);
    if (removed) await store.appendAudit({ at: clock.now(), actor: 'user', action: 'consent.revoked', userId, sessionHandle: null, clientId, ip: null, details: {} });
    return removed;
  }

  /** The client of an authorization or logout request, read through the apps cache. */
  async function findClient(clientId: string): Promise<AppRecord | null> {
    return apps.findClient(clientId);
  }

  return { issueCode, redeemCode, signIdToken, claimsFor, userinfoSubject, hasConsent, grantConsent, listConsents, revokeConsent, findClient };
}

/** The OIDC service returned by {@link createOidcService}. */
export type OidcService = ReturnType<typeof createOidcService>;
