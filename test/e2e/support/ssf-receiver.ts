// An independent Shared Signals receiver, written from the specifications and apart from
// Tessera's transmitter code (it imports nothing of Tessera): it discovers the transmitter,
// gets an access token, and validates every SET it receives — by push (an HTTP server of its
// own) or by poll — with jose and the rules of SSF 1.0, CAEP 1.0, RISC 1.0, the CAEP
// Interoperability Profile and RFC 8417 / 8935 / 8936 / 9493, each written out below.
// No SSF receiver library is on the npm registry here, so this is the receiver.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';

// The event types, spelled out from the specifications (not imported from Tessera).
export const EVENT = {
  sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  credentialChange: 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  accountDisabled: 'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
  accountEnabled: 'https://schemas.openid.net/secevent/risc/event-type/account-enabled',
  accountPurged: 'https://schemas.openid.net/secevent/risc/event-type/account-purged',
  verification: 'https://schemas.openid.net/secevent/ssf/event-type/verification',
  streamUpdated: 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated',
} as const;
export const PUSH_URN = 'urn:ietf:rfc:8935';
export const POLL_URN = 'urn:ietf:rfc:8936';

/** One SET as received and validated. */
export interface ReceivedSet {
  jwt: string;
  header: { alg: string; kid: string; typ: string };
  claims: JWTPayload & { sub_id: Record<string, unknown>; events: Record<string, Record<string, unknown>>; txn: string; jti: string; iat: number };
  type: string;
  event: Record<string, unknown>;
  at: number;
}

/** The transmitter as the receiver knows it: discovered metadata and its keys. */
export interface Transmitter {
  issuer: string;
  metadata: Record<string, unknown>;
  jwks: JSONWebKeySet;
}

/** SSF §7.1 and CAEP Interoperability Profile §2.3: what a transmitter's metadata must hold. */
export async function discover(issuer: string): Promise<Transmitter> {
  const response = await fetch(`${issuer}/.well-known/ssf-configuration`);
  if (response.status !== 200) throw new Error(`ssf-configuration: HTTP ${response.status}`);
  const metadata = (await response.json()) as Record<string, unknown>;
  const must = (ok: boolean, rule: string) => {
    if (!ok) throw new Error(`transmitter metadata: ${rule}`);
  };
  must(metadata.spec_version === '1_0', 'spec_version is 1_0');
  must(metadata.issuer === issuer, 'issuer is the URL it was fetched under');
  for (const key of ['jwks_uri', 'configuration_endpoint', 'status_endpoint', 'verification_endpoint', 'add_subject_endpoint', 'remove_subject_endpoint']) {
    must(typeof metadata[key] === 'string' && String(metadata[key]).startsWith(issuer), `${key} is a URL of the issuer`);
  }
  const methods = metadata.delivery_methods_supported as unknown[];
  must(Array.isArray(methods) && methods.includes(PUSH_URN) && methods.includes(POLL_URN), 'delivery_methods_supported has push and poll');
  const schemes = metadata.authorization_schemes as Array<{ spec_urn?: unknown }>;
  must(Array.isArray(schemes) && schemes.some((s) => s.spec_urn === 'urn:ietf:rfc:6749'), 'authorization_schemes has urn:ietf:rfc:6749');
  must(metadata.default_subjects === 'ALL' || metadata.default_subjects === 'NONE', 'default_subjects is ALL or NONE');
  const jwks = (await (await fetch(String(metadata.jwks_uri))).json()) as JSONWebKeySet;
  return { issuer, metadata, jwks };
}

/** An access token by client credentials at the transmitter's OAuth token endpoint. */
export async function clientCredentialsToken(tokenEndpoint: string, clientId: string, clientSecret: string, scope?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A JSON call with a bearer token; the body parsed when there is one. */
export async function call(token: string | null, method: string, url: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(url, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
}

/** SSF §8.1.1: the members a stream configuration must carry. */
export function checkStreamConfig(config: Record<string, any>, transmitter: Transmitter, expect: { audience: string; method: string }): void {
  const must = (ok: boolean, rule: string) => {
    if (!ok) throw new Error(`stream configuration: ${rule} (${JSON.stringify(config)})`);
  };
  must(typeof config.stream_id === 'string' && config.stream_id.length > 0, 'stream_id');
  must(config.iss === transmitter.issuer, 'iss is the transmitter issuer');
  must(config.aud === expect.audience || (Array.isArray(config.aud) && config.aud.includes(expect.audience)), 'aud names the receiver');
  must(Array.isArray(config.events_supported) && Array.isArray(config.events_requested) && Array.isArray(config.events_delivered), 'events_supported, events_requested and events_delivered are arrays');
  must(config.events_delivered.every((e: string) => config.events_supported.includes(e) && config.events_requested.includes(e)), 'events_delivered is within events_supported and events_requested');
  must(config.delivery?.method === expect.method, 'delivery.method');
  must(typeof config.delivery?.endpoint_url === 'string', 'delivery.endpoint_url');
  must(config.delivery?.authorization_header === undefined, 'the push authorization_header is never echoed back');
  must(Number.isInteger(config.min_verification_interval), 'min_verification_interval');
}

/**
 * Validates one SET, rule by rule; throws naming the first rule it breaks. `jwks` is the
 * transmitter's published key set, `audience` what the stream's `aud` is.
 */
export async function validateSet(jwt: string, transmitter: Transmitter, audience: string, now = Date.now()): Promise<ReceivedSet> {
  const fail = (rule: string): never => {
    throw new Error(`SET rejected: ${rule}`);
  };
  const header = decodeProtectedHeader(jwt) as { alg?: string; kid?: string; typ?: string };
  // SSF §4.1.1 / RFC 8417 §2.3: explicit typing.
  if (header.typ !== 'secevent+jwt') fail(`typ is secevent+jwt, not ${header.typ}`);
  // CAEP Interoperability Profile: RS256 with a key of at least 2048 bits.
  if (header.alg !== 'RS256') fail(`alg is RS256, not ${header.alg}`);
  if (typeof header.kid !== 'string') fail('kid is present');
  let jwk = transmitter.jwks.keys.find((k) => k.kid === header.kid) as { kty?: string; n?: string } | undefined;
  if (!jwk) {
    // An unknown kid: the transmitter may have added a key since; fetch its JWKS again once.
    transmitter.jwks = (await (await fetch(String(transmitter.metadata.jwks_uri))).json()) as JSONWebKeySet;
    jwk = transmitter.jwks.keys.find((k) => k.kid === header.kid) as { kty?: string; n?: string } | undefined;
  }
  if (!jwk) fail(`kid ${header.kid} is published at jwks_uri`);
  if (jwk!.kty !== 'RSA' || Buffer.from(jwk!.n!, 'base64url').length * 8 < 2048) fail('the signing key is RSA of at least 2048 bits');
  let claims: ReceivedSet['claims'];
  try {
    ({ payload: claims } = (await jwtVerify(jwt, createLocalJWKSet(transmitter.jwks), { algorithms: ['RS256'], typ: 'secevent+jwt', issuer: transmitter.issuer, audience, currentDate: new Date(now) })) as unknown as { payload: ReceivedSet['claims'] });
  } catch (error) {
    return fail(`signature, iss or aud: ${(error as Error).message}`);
  }
  // RFC 8417 §2.2 and SSF §4.1: the members of a SET.
  if (typeof claims.jti !== 'string' || claims.jti.length < 8) fail('jti is a unique string');
  if (typeof claims.iat !== 'number') fail('iat is a NumericDate');
  if (claims.iat > Math.floor(now / 1000) + 60) fail('iat is not in the future');
  // SSF §4.1.2 / §4.1.9: the subject is sub_id, never sub; SETs do not expire (no exp).
  if ('sub' in claims) fail('no sub claim (SSF uses sub_id)');
  if ('exp' in claims) fail('no exp claim');
  if (typeof claims.sub_id !== 'object' || claims.sub_id === null || typeof claims.sub_id.format !== 'string') fail('sub_id is a subject identifier with a format');
  // SSF §4.1.8: txn.
  if (typeof claims.txn !== 'string' || claims.txn.length === 0) fail('txn is present');
  // SSF §4.1.3: exactly one event.
  const types = Object.keys(claims.events ?? {});
  if (types.length !== 1) fail(`exactly one event (got ${types.length})`);
  const type = types[0]!;
  const event = claims.events[type]!;
  if (typeof event !== 'object' || event === null) fail('the event is an object');
  checkSubject(claims.sub_id, transmitter.issuer);
  checkEvent(type, event, claims.sub_id);
  return { jwt, header: header as ReceivedSet['header'], claims, type, event, at: now };
}

/** RFC 9493: the subject identifier formats a receiver of this transmitter expects. */
function checkSubject(subject: Record<string, unknown>, issuer: string): void {
  const fail = (rule: string): never => {
    throw new Error(`SET rejected: sub_id ${rule} (${JSON.stringify(subject)})`);
  };
  switch (subject.format) {
    case 'iss_sub':
      if (subject.iss !== issuer || typeof subject.sub !== 'string') fail('iss_sub has the transmitter iss and a sub');
      break;
    case 'email':
      if (typeof subject.email !== 'string' || !subject.email.includes('@')) fail('email has an address');
      break;
    case 'opaque':
      if (typeof subject.id !== 'string') fail('opaque has an id');
      break;
    case 'complex':
      if (typeof subject.user !== 'object' || subject.user === null) fail('complex has a user');
      checkSubject(subject.user as Record<string, unknown>, issuer);
      if (subject.session !== undefined) checkSubject(subject.session as Record<string, unknown>, issuer);
      break;
    default:
      fail('has a known format');
  }
}

const INITIATING = new Set(['admin', 'user', 'policy', 'system']);

/** CAEP 1.0 §2 and §3, RISC 1.0 §2, SSF §8.1.4 / §8.1.5: the members of each event. */
function checkEvent(type: string, event: Record<string, any>, subject: Record<string, unknown>): void {
  const fail = (rule: string): never => {
    throw new Error(`SET rejected: ${type}: ${rule} (${JSON.stringify(event)})`);
  };
  const caepCommon = () => {
    if (!Number.isInteger(event.event_timestamp)) fail('event_timestamp is a NumericDate');
    if (event.initiating_entity !== undefined && !INITIATING.has(event.initiating_entity)) fail('initiating_entity is admin, user, policy or system');
    for (const key of ['reason_admin', 'reason_user']) {
      const value = event[key];
      if (value === undefined) continue;
      if (typeof value !== 'object' || value === null || Object.keys(value).length === 0) fail(`${key} maps language tags to text`);
      for (const text of Object.values(value)) if (typeof text !== 'string' || text.length === 0) fail(`${key} texts are non-empty`);
    }
  };
  switch (type) {
    case EVENT.sessionRevoked:
      caepCommon();
      if (subject.format !== 'iss_sub' && subject.format !== 'email' && subject.format !== 'complex') fail('the subject is a user or a complex subject');
      break;
    case EVENT.credentialChange:
      caepCommon();
      if (!['password', 'pin', 'x509', 'fido2-platform', 'fido2-roaming', 'fido-u2f', 'verifiable-credential', 'phone-voice', 'phone-sms', 'app'].includes(event.credential_type)) fail('credential_type is a CAEP value');
      if (!['create', 'revoke', 'update', 'delete'].includes(event.change_type)) fail('change_type is create, revoke, update or delete');
      break;
    case EVENT.accountDisabled:
      if (event.reason !== undefined && event.reason !== 'hijacking' && event.reason !== 'bulk-account') fail('reason is hijacking or bulk-account');
      break;
    case EVENT.accountEnabled:
    case EVENT.accountPurged:
      break;
    case EVENT.verification:
      if (subject.format !== 'opaque') fail('the subject of a verification is the stream (opaque)');
      if (event.state !== undefined && typeof event.state !== 'string') fail('state is a string');
      break;
    case EVENT.streamUpdated:
      if (!['enabled', 'paused', 'disabled'].includes(event.status)) fail('status is enabled, paused or disabled');
      break;
    default:
      fail('is an event type this receiver knows');
  }
}

/** How the push receiver answers the next request (scripted by a test). */
export type PushAnswer = { status: 202 } | { status: 400; err: string } | { status: number } | 'hang';

/** A push receiver (RFC 8935) on 127.0.0.1: validates and records every SET. */
export interface PushReceiver {
  url: string;
  received: ReceivedSet[];
  rejected: string[];
  /** Every request's Authorization header. */
  authorizations: Array<string | undefined>;
  /** Answers for the next requests, in order; then 202. */
  script: PushAnswer[];
  /** How many requests arrived (also the refused ones). */
  requests: number;
  close(): Promise<void>;
  /** Stops listening (connections refused) until {@link reopen}. */
  down(): Promise<void>;
  /** Listens again on the same port; nothing when it is listening. */
  reopen(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

export async function startPushReceiver(transmitter: () => Transmitter, audience: () => string, options: { expectAuthorization?: string; answerAfterMs?: number; now?: () => number } = {}): Promise<PushReceiver> {
  let server: Server;
  let port = 0;
  const hung: Array<() => void> = [];
  const receiver: PushReceiver = {
    url: '',
    received: [],
    rejected: [],
    authorizations: [],
    script: [],
    requests: 0,
    async close() {
      for (const release of hung) release();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    async down() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    async reopen() {
      if (!server.listening) await listen();
    },
  };
  const handler = async (request: IncomingMessage, response: import('node:http').ServerResponse) => {
    receiver.requests += 1;
    receiver.authorizations.push(request.headers.authorization);
    const body = await readBody(request);
    const answer = receiver.script.shift() ?? { status: 202 };
    if (answer === 'hang') {
      hung.push(() => response.destroy());
      return;
    }
    // RFC 8935 §2: a POST of application/secevent+jwt.
    if (request.method !== 'POST' || request.headers['content-type'] !== 'application/secevent+jwt') {
      receiver.rejected.push(`not a POST of application/secevent+jwt: ${request.method} ${request.headers['content-type']}`);
      response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ err: 'invalid_request', description: 'content type' }));
      return;
    }
    if (options.expectAuthorization !== undefined && request.headers.authorization !== options.expectAuthorization) {
      receiver.rejected.push('wrong authorization header');
      response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ err: 'authentication_failed' }));
      return;
    }
    if (answer.status !== 202) {
      response.writeHead(answer.status, { 'content-type': 'application/json' }).end('err' in answer ? JSON.stringify({ err: answer.err, description: 'scripted' }) : '');
      return;
    }
    try {
      receiver.received.push(await validateSet(body, transmitter(), audience(), options.now?.() ?? Date.now()));
      // A slow receiver: it has the SET, but the transmitter does not know yet.
      if (options.answerAfterMs) await new Promise((resolve) => setTimeout(resolve, options.answerAfterMs));
      response.writeHead(202).end();
    } catch (error) {
      receiver.rejected.push((error as Error).message);
      response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ err: 'invalid_request', description: (error as Error).message }));
    }
  };
  const listen = () => new Promise<void>((resolve) => {
    server = createServer((request, response) => void handler(request, response));
    server.listen(port, '127.0.0.1', () => {
      port = (server.address() as { port: number }).port;
      receiver.url = `http://127.0.0.1:${port}/events`;
      resolve();
    });
  });
  await listen();
  return receiver;
}

/** One RFC 8936 poll: validates every SET returned. */
export async function poll(url: string, token: string, body: Record<string, unknown>, transmitter: Transmitter, audience: string): Promise<{ status: number; sets: ReceivedSet[]; moreAvailable: boolean; raw: any }> {
  const response = await call(token, 'POST', url, body);
  if (response.status !== 200) return { status: response.status, sets: [], moreAvailable: false, raw: response.body };
  const raw = response.body as { sets?: Record<string, string>; moreAvailable?: unknown };
  if (typeof raw.sets !== 'object' || raw.sets === null) throw new Error('poll response: sets is an object');
  if (typeof raw.moreAvailable !== 'boolean') throw new Error('poll response: moreAvailable is a boolean');
  const sets: ReceivedSet[] = [];
  for (const [jti, jwt] of Object.entries(raw.sets)) {
    const set = await validateSet(jwt, transmitter, audience);
    // RFC 8936 §2.3: each member's name is the jti of its SET.
    if (set.claims.jti !== jti) throw new Error('poll response: a key is not the jti of its SET');
    sets.push(set);
  }
  return { status: 200, sets, moreAvailable: raw.moreAvailable, raw };
}

/** Waits until `check` returns a value, polling; fails naming `what`. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
