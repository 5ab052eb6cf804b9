import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from './config.js';
import type { CoreDeps } from './deps.js';
import type { SessionService } from './sessions.js';
import { findUserByVerifiedEmail } from './users.js';
import { SSF_EVENTS } from './ssf-events.js';

/** One upstream transmitter of `ssf.upstreams`. */
export type SsfUpstream = Config['ssf']['upstreams'][number];

/** The events a received SET acts on; every other event type is accepted and ignored (SSF §4). */
const ACTED_ON = new Set<string>([SSF_EVENTS.sessionRevoked, SSF_EVENTS.credentialChange]);
// Asymmetric algorithms only: a shared-secret MAC would let anyone holding the secret forge SETs.
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];
// Clocks of two servers differ a little; beyond this an event "from the future" is refused.
const SKEW_SECONDS = 60;

/**
 * Why a pushed SET was not accepted: the HTTP status and the RFC 8935 §2.4 error code the
 * receiver answers with (`{"err": …, "description": …}`). 400 tells the transmitter the SET
 * itself is refused (with `invalid_key` and `authentication_failed` it may succeed later, once
 * keys or credentials are mended); 404 names no upstream; 503 asks it to retry (the upstream's
 * keys could not be fetched just now).
 */
export class SetRefusal extends Error {
  override readonly name = 'SetRefusal';
  constructor(
    readonly status: 400 | 404 | 503,
    readonly err: 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed' | 'access_denied',
    description: string,
  ) {
    super(description);
  }
}

/** What an accepted SET came to. */
export interface ReceivedSet {
  jti: string;
  eventType: string;
  /** The Tessera user its subject names (null: none, or a subject this upstream may not name). */
  userId: string | null;
  /** The sessions it ended (created before the event; none for an event Tessera only notes). */
  ended: string[];
}

/** The `aud` an upstream's SETs must carry: its own setting, or this endpoint's URL. */
export function upstreamAudience(config: Config, upstream: SsfUpstream): string {
  return upstream.audience ?? `${config.issuer}/ssf/receive/${upstream.name}`;
}

// Compared as SHA-256 digests in constant time: the lengths differ freely and nothing about the
// configured header leaks through the time a wrong one takes.
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function refusalOf(error: unknown): SetRefusal {
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new SetRefusal(400, 'invalid_key', 'The SET is not signed by a key of the upstream transmitter (its JWKS), with an allowed algorithm.');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (error as { claim?: unknown }).claim;
      if (claim === 'iss') return new SetRefusal(400, 'invalid_issuer', 'The SET\'s iss is not the upstream transmitter\'s issuer.');
      if (claim === 'aud') return new SetRefusal(400, 'invalid_audience', 'The SET\'s aud is not this receiver.');
      return new SetRefusal(400, 'invalid_request', `The SET's ${typeof claim === 'string' ? claim : 'claims'} failed validation.`);
    }
    case 'ERR_JWT_EXPIRED':
      return new SetRefusal(400, 'invalid_request', 'The SET has expired.');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return new SetRefusal(400, 'invalid_request', 'The body is not a signed JWT this receiver reads (compact JWS, application/secevent+jwt).');
    default:
      // The keys could not be fetched (timeout, network, a JWKS that is not one): the SET may
      // be fine, so the transmitter is asked to try again.
      return new SetRefusal(503, 'invalid_key', 'The upstream transmitter\'s keys could not be fetched; try again later.');
  }
}

const object = (value: unknown): Record<string, unknown> | null => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null);

/**
 * Tessera as a Shared Signals receiver (RFC 8935 push) of upstream transmitters (an identity
 * provider, a security tool): a CAEP `session-revoked` or `credential-change` about a user ends
 * that user's sessions here, with the usual propagation (the revocation feed, back-channel
 * logout, webhooks, and Tessera's own SETs to its receivers).
 *
 * Each SET is checked as a careful receiver checks it: the push's Authorization header (when
 * the upstream has one configured), the signature against the upstream's JWKS (asymmetric
 * algorithms only), `typ` `secevent+jwt`, `iss`, `aud`, `jti`, `iat`, exactly one event, and
 * no `sub` claim (SSF §4: the subject is `sub_id`). A subject names a user by email only when
 * that email is verified here; by `iss_sub` only when the upstream is configured to use
 * Tessera's user ids (`issSubIsUserId`) and the `iss` is the upstream's own.
 *
 * A SET only ends sessions created before its event (`event_timestamp`): a late delivery or a
 * retried push of the same SET (same `jti`) can never end a session the user started after the
 * event, so receiving the same SET twice changes nothing the second time. An upstream session
 * cannot be told apart among Tessera's, so a `session-revoked` ends every such session of the
 * user. A subject that names nobody here is accepted (202) and does nothing, as RFC 8935 asks
 * of a SET that was valid.
 *
 * @example
 * ```ts
 * const receiver = createSsfReceiver(deps, sessions);
 * const outcome = await receiver.receive('idp', setJwt, request.headers.authorization);
 * ```
 */
export function createSsfReceiver(deps: CoreDeps, sessions: SessionService) {
  const { config, clock, store } = deps;
  const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  function keysOf(upstream: SsfUpstream): ReturnType<typeof createRemoteJWKSet> {
    let keys = keySets.get(upstream.name);
    if (!keys) {
      // Cached, refetched when a SET names an unknown kid (at most every 30 s): a key rotation
      // upstream is picked up without a restart.
      keys = createRemoteJWKSet(new URL(upstream.jwksUri), { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
      keySets.set(upstream.name, keys);
    }
    return keys;
  }

  async function userOf(upstream: SsfUpstream, subject: Record<string, unknown> | null, depth = 0): Promise<string | null> {
    if (!subject || depth > 1) return null;
    switch (subject.format) {
      case 'email': {
        if (typeof subject.email !== 'string') return null;
        return (await findUserByVerifiedEmail(store, subject.email.trim()))?.id ?? null;
      }
      case 'iss_sub': {
        if (!upstream.issSubIsUserId || subject.iss !== upstream.issuer || typeof subject.sub !== 'string') return null;
        return (await store.findUserById(subject.sub))?.id ?? null;
      }
      case 'complex':
        return userOf(upstream, object(subject.user), depth + 1);
      case 'aliases': {
        if (!Array.isArray(subject.identifiers)) return null;
        for (const identifier of subject.identifiers.slice(0, 8)) {
          const found = await userOf(upstream, object(identifier), depth + 1);
          if (found) return found;
        }
        return null;
      }
      default:
        return null;
    }
  }

  /** Checks, then acts on, one SET pushed by the upstream `name`; throws {@link SetRefusal}. */
  async function receive(name: string, jwt: string, authorization: string | undefined): Promise<ReceivedSet> {
    const upstream = config.ssf.upstreams.find((u) => u.name === name);
    if (!upstream) throw new SetRefusal(404, 'invalid_request', 'No upstream transmitter of this name is configured here.');
    if (upstream.authorizationHeader !== undefined && !sameSecret(authorization ?? '', upstream.authorizationHeader)) {
      throw new SetRefusal(400, 'authentication_failed', 'The push did not carry the Authorization header agreed with this receiver.');
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, keysOf(upstream), { issuer: upstream.issuer, audience: upstreamAudience(config, upstream), typ: 'secevent+jwt', algorithms: ALGORITHMS, clockTolerance: SKEW_SECONDS }));
    } catch (error) {
      throw refusalOf(error);
    }
    const events = object(payload.events);
    const types = events ? Object.keys(events) : [];
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || typeof payload.iat !== 'number') throw new SetRefusal(400, 'invalid_request', 'A SET has a jti and an iat.');
    if (types.length !== 1) throw new SetRefusal(400, 'invalid_request', 'A SET carries exactly one event.');
    if (payload.sub !== undefined) throw new SetRefusal(400, 'invalid_request', 'A SET names its subject in sub_id, never in sub (SSF §4).');
    const eventType = types[0]!;
    const event = object(events![eventType]) ?? {};
    const nowMs = clock.now();
    // When it happened (CAEP event_timestamp), else when the SET was made.
    const happened = typeof event.event_timestamp === 'number' ? event.event_timestamp : payload.iat;
    if (happened > nowMs / 1000 + SKEW_SECONDS) throw new SetRefusal(400, 'invalid_request', 'The event_timestamp is in the future.');
    // The subject: sub_id (SSF 1.0), or the event's own subject (CAEP drafts before it).
    const userId = ACTED_ON.has(eventType) ? await userOf(upstream, object(payload.sub_id) ?? object(event.subject)) : null;
    let ended: string[] = [];
    if (userId) {
      // Sessions begun after the event are not its business (a late or repeated SET must not
      // end them); those begun within its second are ended with it (the safe side).
      const cutoff = Math.min((Math.floor(happened) + 1) * 1000, nowMs);
      const before = (await sessions.listUserSessions(userId)).filter((s) => s.createdAt < cutoff).map((s) => s.handle);
      if (before.length > 0) ended = await sessions.revokeSessions(before, { actor: `ssf:${upstream.name}`, reason: 'upstream_signal' });
    }
    await store.appendAudit({ at: nowMs, actor: `ssf:${upstream.name}`, action: 'ssf.received', userId, sessionHandle: null, clientId: null, ip: null, details: { jti: payload.jti.slice(0, 256), event: eventType.slice(0, 256), matched: userId !== null, ended: ended.length } });
    return { jti: payload.jti, eventType, userId, ended };
  }

  return { receive };
}

/** The receiver returned by {@link createSsfReceiver}. */
export type SsfReceiver = ReturnType<typeof createSsfReceiver>;
