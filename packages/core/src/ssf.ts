import { createHash } from 'node:crypto';
import type { AppService } from './apps.js';
import { signCompactJwsForRequest, signCompactJwsInPool } from './compact-jws.js';
import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import type { AppRecord, Actor } from './model.js';
import { randomToken } from './secrets.js';
import { audClaim, newJti, setClaims, SSF_EVENTS, SSF_SUPPORTED_EVENTS, streamSubject } from './ssf-events.js';
import type { SsfDeliveryMethod, SsfEvent, SsfStream, SsfStreamDeliveryState, SsfStreamStatus, SsfSubjectFormat } from './ssf-model.js';
import type { KeyManager } from './signing-keys.js';
import type { TokenService } from './tokens.js';

/** The scopes of receiver clients' access tokens. */
export const SSF_SCOPES = ['ssf.manage', 'ssf.read'] as const;
/** The scope of the OAuth Global Token Revocation endpoint (trusted clients only). */
export const GLOBAL_REVOCATION_SCOPE = 'global_token_revocation';

/** The delivery method URNs (SSF §8.1.1, RFC 8935 and RFC 8936). */
export const DELIVERY_URNS = Object.freeze({ push: 'urn:ietf:rfc:8935', poll: 'urn:ietf:rfc:8936' } as const);

/** The path of a poll stream's own endpoint, under the issuer. */
export const SSF_POLL_PATH = '/ssf/poll';

/** What a receiver asks for when it creates or replaces a stream (SSF §8.1.1). */
export interface StreamInput {
  eventsRequested?: string[];
  delivery?: { method: SsfDeliveryMethod; endpointUrl?: string; authorizationHeader?: string | null } | null;
  description?: string | null;
  subjectFormat?: SsfSubjectFormat;
}

/** A verified access token of a receiver client. */
export interface SsfCaller {
  client: AppRecord;
  scopes: Set<string>;
}

/** The RS256 signature the CAEP Interoperability Profile requires of every SET (2048-bit keys). */
const SET_ALG = 'RS256' as const;

/** A short fingerprint of a client's secret hash: a rotated secret retires its access tokens. */
const secretVersion = (app: AppRecord): string => createHash('sha256').update(app.secretHash).digest('base64url').slice(0, 16);

/**
 * The Shared Signals (SSF 1.0) transmitter's domain rules: client-credentials access tokens
 * for receiver clients, streams (create, read, update, replace, delete, status, subjects,
 * verification) and the signing of SETs. The events themselves are planned where their
 * causes commit ({@link commitRevocation}); their delivery is the server's workers.
 *
 * @example
 * ```ts
 * const { accessToken } = await authority.ssf.issueAccessToken(client, 'ssf.manage ssf.read');
 * const caller = await authority.ssf.authenticate(accessToken);
 * const stream = await authority.ssf.createStream(caller!, { delivery: { method: 'poll' } });
 * ```
 */
export function createSsfService(deps: CoreDeps, keys: KeyManager, apps: AppService, tokens: Pick<TokenService, 'verifyAccessToken'>) {
  const { store, clock, config } = deps;
  const audience = `${config.issuer}/ssf`;

  /**
   * May this client use the client_credentials grant? Only a confidential client (it proves
   * a secret) that an admin registered with the grant: a stream hands out signals about
   * every user, so it must be someone the operator chose.
   */
  function mayUseClientCredentials(client: AppRecord): boolean {
    return client.oidc.tokenEndpointAuthMethod !== 'none' && client.oidc.grantTypes.includes('client_credentials');
  }

  /** The scopes a client may hold: both SSF scopes, and global token revocation for trusted clients. */
  function allowedScopes(client: AppRecord): string[] {
    return [...SSF_SCOPES, ...(client.trusted ? [GLOBAL_REVOCATION_SCOPE] : [])];
  }

  /**
   * `grant_type=client_credentials` (RFC 6749 §4.4) for an authenticated client. Without a
   * `scope` the client gets every scope it may hold; asking for one it may not hold is
   * `invalid_scope` (returned as null here). The token is a JWT (RFC 9068 `at+jwt`) whose
   * audience is the transmitter, so it can never pass for a session access token.
   */
  async function issueAccessToken(client: AppRecord, scope: string | undefined): Promise<{ accessToken: string; expiresIn: number; scope: string } | 'unauthorized_client' | 'invalid_scope'> {
    if (!mayUseClientCredentials(client)) return 'unauthorized_client';
    const allowed = allowedScopes(client);
    const asked = scope === undefined ? allowed : [...new Set(scope.split(' ').filter(Boolean))];
    if (asked.length === 0 || asked.some((s) => !allowed.includes(s))) return 'invalid_scope';
    const granted = allowed.filter((s) => asked.includes(s)).join(' ');
    const key = await keys.signingKey();
    const now = Math.floor(clock.now() / 1000);
    const ttl = config.ssf.accessTokenTtlSeconds;
    // Signed like every token a request waits for (compact-jws.ts).
    const accessToken = await signCompactJwsForRequest(key, 'at+jwt', {
      client_id: client.clientId,
      scope: granted,
      sv: secretVersion(client),
      iss: config.issuer,
      sub: client.clientId,
      aud: audience,
      iat: now,
      exp: now + ttl,
      jti: randomToken(16),
    });
    return { accessToken, expiresIn: ttl, scope: granted };
  }

  /**
   * The caller behind a bearer token: signature, issuer, audience, expiry, and the client
   * still registered with the grant and the same secret. Null otherwise.
   */
  async function authenticate(token: string): Promise<SsfCaller | null> {
    const payload = await tokens.verifyAccessToken(token, audience);
    if (!payload) return null;
    try {
      if (typeof payload.client_id !== 'string' || typeof payload.scope !== 'string') return null;
      const client = await apps.findClient(payload.client_id);
      if (!client || !mayUseClientCredentials(client) || payload.sv !== secretVersion(client)) return null;
      const scopes = new Set(payload.scope.split(' ').filter((s) => allowedScopes(client).includes(s)));
      return { client, scopes };
    } catch {
      return null;
    }
  }

  function requireScope(caller: SsfCaller, scope: 'ssf.manage' | 'ssf.read' | typeof GLOBAL_REVOCATION_SCOPE): void {
    // ssf.manage includes reading: a receiver that may change a stream may see it.
    if (caller.scopes.has(scope) || (scope === 'ssf.read' && caller.scopes.has('ssf.manage'))) return;
    throw new TesseraError('SSF_INSUFFICIENT_SCOPE');
  }

  /** The caller's own stream; another client's is not found (ids of others cannot be probed). */
  async function ownStream(caller: SsfCaller, id: string): Promise<SsfStream> {
    const stream = id.length <= 128 ? await store.findSsfStream(id) : null;
    if (!stream || stream.clientId !== caller.client.clientId) throw new TesseraError('SSF_STREAM_NOT_FOUND');
    return stream;
  }

  /** Checks a push endpoint: an absolute http(s) URL without credentials or fragment. */
  function checkEndpoint(url: string): string {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TesseraError('INVALID_REQUEST', 'delivery.endpoint_url must be an absolute URL.');
    }
    if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || parsed.username || parsed.password || parsed.hash) {
      throw new TesseraError('INVALID_REQUEST', 'delivery.endpoint_url must be an http(s) URL without credentials or fragment.');
    }
    return url;
  }

  /** The stream fields a create or a replace sets, from what the receiver asked. */
  function fieldsOf(id: string, input: StreamInput): Pick<SsfStream, 'eventsRequested' | 'eventsDelivered' | 'deliveryMethod' | 'endpointUrl' | 'authorizationHeader' | 'description' | 'subjectFormat'> {
    const requested = [...new Set(input.eventsRequested ?? [])];
    // No `delivery` means poll (SSF §8.1.1): Tessera then supplies a URL unique to the stream.
    const method = input.delivery?.method ?? 'poll';
    const endpointUrl = method === 'push'
      ? checkEndpoint(input.delivery?.endpointUrl ?? (() => { throw new TesseraError('INVALID_REQUEST', 'Push delivery needs delivery.endpoint_url.'); })())
      : `${config.issuer}${SSF_POLL_PATH}/${id}`;
    if (method === 'poll' && input.delivery?.endpointUrl !== undefined && input.delivery.endpointUrl !== endpointUrl) {
      throw new TesseraError('INVALID_REQUEST', 'For poll delivery the transmitter supplies endpoint_url; leave it out.');
    }
    return {
      eventsRequested: requested,
      eventsDelivered: SSF_SUPPORTED_EVENTS.filter((e) => requested.includes(e)),
      deliveryMethod: method,
      endpointUrl,
      authorizationHeader: method === 'push' ? (input.delivery?.authorizationHeader ?? null) : null,
      description: input.description ?? null,
      subjectFormat: input.subjectFormat ?? 'iss_sub',
    };
  }

  async function createStream(caller: SsfCaller, input: StreamInput): Promise<SsfStream> {
    requireScope(caller, 'ssf.manage');
    if ((await store.listSsfStreams({ clientId: caller.client.clientId })).length >= config.ssf.maxStreamsPerClient) throw new TesseraError('SSF_STREAM_LIMIT');
    const now = clock.now();
    const id = `st_${randomToken(16)}`;
    const stream: SsfStream = {
      id,
      clientId: caller.client.clientId,
      audience: [caller.client.clientId],
      ...fieldsOf(id, input),
      status: 'enabled',
      statusReason: null,
      minVerificationInterval: config.ssf.minVerificationIntervalSeconds,
      lastVerificationAt: null,
      createdAt: now,
      updatedAt: now,
    };
    // The SETs' key series is published from the first stream on, before any SET is signed.
    await keys.ensureAlgorithm(SET_ALG);
    await store.transaction(async (tx) => {
      await tx.createSsfStream(stream);
      await tx.appendAudit({ at: now, actor: `app:${caller.client.clientId}`, action: 'ssf.stream_created', userId: null, sessionHandle: null, clientId: caller.client.clientId, ip: null, details: { stream: id, method: stream.deliveryMethod } });
    });
    return stream;
  }

  async function getStream(caller: SsfCaller, id: string): Promise<SsfStream> {
    requireScope(caller, 'ssf.read');
    return ownStream(caller, id);
  }

  async function listStreams(caller: SsfCaller): Promise<SsfStream[]> {
    requireScope(caller, 'ssf.read');
    return store.listSsfStreams({ clientId: caller.client.clientId });
  }

  /**
   * PATCH (`replace` false: only what is given changes) or PUT (`replace` true: what is left
   * out goes back to its default) of the receiver-supplied fields (SSF §8.1.1.3, §8.1.1.4).
   */
  async function updateStream(caller: SsfCaller, id: string, input: StreamInput, replace: boolean): Promise<SsfStream> {
    requireScope(caller, 'ssf.manage');
    const current = await ownStream(caller, id);
    const merged: StreamInput = replace ? input : {
      eventsRequested: input.eventsRequested ?? current.eventsRequested,
      delivery: input.delivery === undefined
        ? { method: current.deliveryMethod, ...(current.deliveryMethod === 'push' ? { endpointUrl: current.endpointUrl, authorizationHeader: current.authorizationHeader } : {}) }
        : input.delivery,
      description: input.description === undefined ? current.description : input.description,
      subjectFormat: input.subjectFormat ?? current.subjectFormat,
    };
    const updated = await store.updateSsfStream(id, { ...fieldsOf(id, merged), updatedAt: clock.now() });
    if (!updated) throw new TesseraError('SSF_STREAM_NOT_FOUND');
    return updated;
  }

  async function deleteStream(caller: SsfCaller, id: string): Promise<void> {
    requireScope(caller, 'ssf.manage');
    await ownStream(caller, id);
    await store.deleteSsfStream(id);
    await store.appendAudit({ at: clock.now(), actor: `app:${caller.client.clientId}`, action: 'ssf.stream_deleted', userId: null, sessionHandle: null, clientId: caller.client.clientId, ip: null, details: { stream: id } });
  }

  async function getStatus(caller: SsfCaller, id: string): Promise<SsfStream> {
    requireScope(caller, 'ssf.read');
    return ownStream(caller, id);
  }

  /**
   * Sets a stream's status. `paused` holds new events (up to `ssf.horizonSeconds`),
   * `disabled` drops the pending ones and stops planning new ones, `enabled` delivers what a
   * pause held, in order. When Tessera (an admin) changes it rather than the receiver, the
   * receiver hears of it by an SSF `stream-updated` event (SSF §8.1.5).
   */
  async function changeStatus(stream: SsfStream, status: SsfStreamStatus, reason: string | null, actor: Actor): Promise<SsfStream> {
    const now = clock.now();
    const updated = await store.transaction(async (tx) => {
      const result = await tx.updateSsfStream(stream.id, { status, statusReason: reason, updatedAt: now });
      if (!result) throw new TesseraError('SSF_STREAM_NOT_FOUND');
      if (status === 'disabled') await tx.dropPendingSsfEvents(stream.id);
      if (actor === 'admin' && status !== 'disabled' && stream.status !== status) {
        await tx.enqueueSsfEvents([streamEvent(result, SSF_EVENTS.streamUpdated, { status, ...(reason ? { reason } : {}) }, now)]);
      }
      await tx.appendAudit({ at: now, actor, action: 'ssf.stream_status', userId: null, sessionHandle: null, clientId: stream.clientId, ip: null, details: { stream: stream.id, status, reason } });
      return result;
    });
    deps.onSecurityEvents?.();
    return updated;
  }

  async function updateStatus(caller: SsfCaller, id: string, status: SsfStreamStatus, reason: string | null): Promise<SsfStream> {
    requireScope(caller, 'ssf.manage');
    return changeStatus(await ownStream(caller, id), status, reason, `app:${caller.client.clientId}`);
  }

  /** An admin sets a stream's status (the receiver is told by `stream-updated`). */
  async function setStatusAsAdmin(id: string, status: SsfStreamStatus, reason: string | null): Promise<SsfStream> {
    const stream = await store.findSsfStream(id);
    if (!stream) throw new TesseraError('SSF_STREAM_NOT_FOUND');
    return changeStatus(stream, status, reason, 'admin');
  }

  /**
   * An operator sets the `aud` of a stream's SETs. In SSF the audience is the transmitter's to
   * supply (§8.1.1: a receiver's `aud` in a create or update is ignored); it defaults to the
   * receiver client's id. A receiver that does not manage streams at the transmitter checks
   * another value: Okta's SET endpoint expects its own org URL. Every SET signed from then on
   * carries it (signSet), those already waiting (held by a pause, retried, sent again by an
   * operator) included; their other claims and their jti stay as planned. Values are
   * StringOrURI (RFC 7519 §2): one with a colon must be a URI, and none may hold white space
   * or control characters (a receiver compares them byte for byte). Duplicates are dropped,
   * the order kept.
   */
  async function setAudienceAsAdmin(id: string, values: string[]): Promise<SsfStream> {
    const audience = [...new Set(values)];
    for (const value of audience) {
      if (value.length === 0 || /[\s\p{Cc}]/u.test(value)) throw new TesseraError('INVALID_REQUEST', 'aud: a value is empty or holds white space or control characters.');
      if (value.includes(':') && !URL.canParse(value)) throw new TesseraError('INVALID_REQUEST', 'aud: a value with a colon must be a URI (RFC 7519 StringOrURI).');
    }
    if (audience.length === 0) throw new TesseraError('INVALID_REQUEST', 'aud: at least one value.');
    const now = clock.now();
    return store.transaction(async (tx) => {
      const current = await tx.findSsfStream(id);
      if (!current) throw new TesseraError('SSF_STREAM_NOT_FOUND');
      const updated = await tx.updateSsfStream(id, { audience, updatedAt: now });
      if (!updated) throw new TesseraError('SSF_STREAM_NOT_FOUND');
      await tx.appendAudit({ at: now, actor: 'admin', action: 'ssf.stream_audience', userId: null, sessionHandle: null, clientId: current.clientId, ip: null, details: { stream: id, audience, previous: current.audience } });
      return updated;
    });
  }

  /** A SET about the stream itself. */
  function streamEvent(stream: SsfStream, eventType: string, event: Record<string, unknown>, now: number) {
    const jti = newJti();
    return {
      streamId: stream.id,
      jti,
      subjectKey: `stream:${stream.id}`,
      eventType,
      claims: setClaims({ issuer: config.issuer, stream, jti, iat: now, txn: jti, subject: streamSubject(stream.id), eventType, event }),
      createdAt: now,
      horizonAt: now + config.ssf.horizonSeconds * 1000,
    };
  }

  /**
   * SSF §8.1.4.2: queues a verification event echoing `state`. Sooner than
   * `min_verification_interval` after the previous request is SSF_VERIFICATION_TOO_SOON (429,
   * with the seconds to wait). A disabled stream sends nothing, so it cannot be verified.
   */
  async function requestVerification(caller: SsfCaller, id: string, state: string | undefined): Promise<void> {
    requireScope(caller, 'ssf.manage');
    const now = clock.now();
    await store.transaction(async (tx) => {
      const stream = await tx.findSsfStream(id);
      if (!stream || stream.clientId !== caller.client.clientId) throw new TesseraError('SSF_STREAM_NOT_FOUND');
      if (stream.status === 'disabled') throw new TesseraError('INVALID_REQUEST', 'The stream is disabled; enable it first.');
      const wait = stream.lastVerificationAt === null ? 0 : stream.lastVerificationAt + stream.minVerificationInterval * 1000 - now;
      if (wait > 0) throw Object.assign(new TesseraError('SSF_VERIFICATION_TOO_SOON'), { retryAfterSeconds: Math.ceil(wait / 1000) });
      await tx.updateSsfStream(id, { lastVerificationAt: now, updatedAt: stream.updatedAt });
      await tx.enqueueSsfEvents([streamEvent(stream, SSF_EVENTS.verification, state === undefined ? {} : { state }, now)]);
    });
    deps.onSecurityEvents?.();
  }

  /**
   * The subject rule key of an RFC 9493 subject identifier: `user:<id>` (iss_sub with this
   * issuer, opaque, or complex with such a user) or `email:<address>`. Nothing is looked up,
   * so the answer never tells whether such a user exists.
   */
  function subjectKeyOf(subject: unknown): string {
    const s = (typeof subject === 'object' && subject !== null ? subject : {}) as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 320 ? v : null);
    switch (s.format) {
      case 'iss_sub':
        if (s.iss === config.issuer && str(s.sub)) return `user:${s.sub as string}`;
        break;
      case 'opaque':
        if (str(s.id)) return `user:${s.id as string}`;
        break;
      case 'email':
        if (str(s.email)) return `email:${(s.email as string).toLowerCase()}`;
        break;
      case 'complex':
        if (s.user !== undefined) return subjectKeyOf(s.user);
        break;
    }
    throw new TesseraError('SSF_SUBJECT_UNSUPPORTED');
  }

  /** SSF §8.1.3.2 and §8.1.3.3: add (include) or remove (exclude) a subject. */
  async function setSubject(caller: SsfCaller, id: string, subject: unknown, included: boolean): Promise<void> {
    requireScope(caller, 'ssf.manage');
    await ownStream(caller, id);
    await store.saveSsfSubject({ streamId: id, key: subjectKeyOf(subject), included, createdAt: clock.now() });
  }

  /** An SET's compact JWS: RS256 with the transmitter's RSA key, `typ: secevent+jwt` (SSF §4.1.1). */
  async function signSet(event: Pick<SsfEvent, 'claims'>, stream: Pick<SsfStream, 'audience'>): Promise<string> {
    // node:crypto signs RS256 about twice as fast as WebCrypto (what jose uses), and in the
    // thread pool: a push stream signs one SET per event per stream, and the RSA private-key
    // operation (most of a SET's cost) runs beside the event loop, on another core, instead
    // of holding up every request (logouts among them) while a burst of SETs is signed.
    // The stream's `aud` as it is now, which an operator may have changed since the SET was
    // planned (setAudienceAsAdmin): every other claim, the jti among them, is as planned.
    const claims = { ...event.claims, aud: audClaim(stream) };
    return signCompactJwsInPool(await keys.signingKey(SET_ALG), 'secevent+jwt', claims);
  }

  /**
   * An operator sends a dead SET again (admin API, console): pending again, due now, with a
   * fresh horizon (`ssf.horizonSeconds`); the same `jti`, claims and `event_timestamp`, so a
   * receiver deduplicates it and never reads it as a newer event. It still goes out before
   * any younger event about the same subject. A paused stream holds it until it is enabled;
   * a disabled stream sends nothing (SSF_STREAM_DISABLED). Anything but a dead SET of this
   * stream is SSF_EVENT_NOT_FOUND.
   *
   * @example
   * ```ts
   * await authority.ssf.retryEvent('st_…', 42, 'admin'); // pending again, sent at once
   * ```
   */
  async function retryEvent(streamId: string, eventId: number, actor: Actor, ip: string | null = null): Promise<SsfEvent> {
    const stream = streamId.length <= 128 ? await store.findSsfStream(streamId) : null;
    if (!stream) throw new TesseraError('SSF_STREAM_NOT_FOUND');
    if (stream.status === 'disabled') throw new TesseraError('SSF_STREAM_DISABLED');
    const now = clock.now();
    const retried = await store.retrySsfEvent(stream.id, eventId, now, now + config.ssf.horizonSeconds * 1000);
    if (!retried) throw new TesseraError('SSF_EVENT_NOT_FOUND');
    await store.appendAudit({ at: now, actor, action: 'ssf.event_retried', userId: null, sessionHandle: null, clientId: stream.clientId, ip, details: { stream: stream.id, event: retried.id, jti: retried.jti } });
    // Wakes this node's push worker and long polls (other nodes: the store's notification).
    deps.onSecurityEvents?.();
    return retried;
  }

  /** Every stream with its delivery figures (admin API, CLI, console). */
  async function listAllStreams(): Promise<Array<SsfStream & { delivery: SsfStreamDeliveryState }>> {
    const streams = await store.listSsfStreams();
    return Promise.all(streams.map(async (s) => ({ ...s, delivery: await store.ssfDeliveryState(s.id) })));
  }

  /**
   * Makes sure the RS256 key series exists once there is a stream, so its keys are published
   * before the first SET (and a deployment without receivers publishes no RSA keys).
   */
  async function ready(): Promise<void> {
    if ((await store.listSsfStreams()).length > 0) await keys.ensureAlgorithm(SET_ALG);
  }

  return {
    issueAccessToken, authenticate, requireScope, subjectKeyOf, createStream, getStream, listStreams, updateStream, deleteStream,
    getStatus, updateStatus, setStatusAsAdmin, setAudienceAsAdmin, retryEvent, requestVerification, setSubject, signSet, listAllStreams, ready, ownStream,
  };
}

/** The SSF service returned by {@link createSsfService}. */
export type SsfService = ReturnType<typeof createSsfService>;
