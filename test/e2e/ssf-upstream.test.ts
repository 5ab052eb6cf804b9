// Tessera as a Shared Signals receiver of upstream transmitters (ssf.upstreams), over real
// HTTP. The upstream is first a real SSF transmitter: another Tessera node (A) whose push
// stream, created by a receiver client as any receiver does it, pushes to B's
// POST /ssf/receive/idp with the agreed Authorization header, its aud set by A's operator to
// what B expects. Then SETs made by hand with jose (a key of the test's own, its JWKS served
// over HTTP) walk what a careful receiver refuses: a foreign key, a wrong iss, aud or typ, two
// events, a `sub` claim, an event from the future, a missing or wrong Authorization header, an
// unknown upstream, keys that cannot be fetched; and what it must not do: end a session begun
// after the event (a late or repeated SET), or take an unverified email for a person.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig, startServer, type RunningServer } from '../../packages/server/src/index.js';
import { testNodeEnv } from './support/node-env.js';
import { call, clientCredentialsToken, discover, EVENT, PUSH_URN, until } from './support/ssf-receiver.js';

const ADMIN = `ssf-upstream-admin-${'u'.repeat(40)}`;
const PUSH_SECRET = `Bearer upstream-push-${randomBytes(16).toString('hex')}`;
const TOOL_SECRET = `Bearer tool-push-${randomBytes(16).toString('hex')}`;
const B_AUDIENCE = 'urn:tessera:test:receiver-b';
const TOOL_ISSUER = 'https://security-tool.example.test';

interface Node {
  url: string;
  close(): Promise<void>;
}

async function startNode(file: Record<string, unknown> = {}): Promise<Node> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-ssf-up-'));
  const configFile = join(dataDir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ outbox: { backoffBaseMs: 50, backoffMaxMs: 200, pollIntervalMs: 50, timeoutMs: 2_000, leaseSeconds: 5 }, ...file }));
  const running: RunningServer = await startServer(readConfig(testNodeEnv({ dataDir, configFile, adminToken: ADMIN })), { print: () => undefined });
  return {
    url: running.url,
    async close() {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A JWKS endpoint on 127.0.0.1 serving `keys`. */
async function serveJwks(keys: () => JWK[]): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: keys() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

describe('Tessera as an SSF receiver of upstream transmitters', () => {
  let a: Node;
  let b: Node;
  let jwks: Awaited<ReturnType<typeof serveJwks>>;
  let toolKey: { privateKey: CryptoKey; kid: string };
  const adminOf = (node: Node) => (method: string, path: string, body?: unknown) => call(ADMIN, method, `${node.url}/admin/api${path}`, body);

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    toolKey = { privateKey, kid: 'tool-key-1' };
    const publicJwk = { ...(await exportJWK(publicKey)), kid: toolKey.kid, alg: 'RS256', use: 'sig' };
    jwks = await serveJwks(() => [publicJwk]);
    a = await startNode();
    const transmitter = await discover(a.url);
    b = await startNode({
      ssf: {
        upstreams: [
          { name: 'idp', issuer: a.url, jwksUri: String(transmitter.metadata.jwks_uri), audience: B_AUDIENCE, authorizationHeader: PUSH_SECRET },
          { name: 'tool', issuer: TOOL_ISSUER, jwksUri: jwks.url, audience: B_AUDIENCE, authorizationHeader: TOOL_SECRET, issSubIsUserId: true },
          // Its keys cannot be fetched (nothing listens there).
          { name: 'unreachable', issuer: TOOL_ISSUER, jwksUri: 'http://127.0.0.1:9/jwks', audience: B_AUDIENCE },
        ],
      },
    });
  }, 60_000);

  afterAll(async () => {
    await b?.close();
    await a?.close();
    await jwks?.close();
  });

  async function createUser(node: Node, username: string, email: string, verified: boolean): Promise<string> {
    const created = await adminOf(node)('POST', '/users', { username, email, email_verified: verified, password: 'a long enough password' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.user.id as string;
  }

  async function trustedApp(node: Node): Promise<{ clientId: string; secret: string }> {
    const created = await adminOf(node)('POST', '/apps', { name: `site-${randomUUID().slice(0, 8)}`, trusted: true });
    expect(created.status).toBe(201);
    return { clientId: created.body.app.client_id, secret: created.body.client_secret };
  }

  async function startSession(node: Node, app: { clientId: string; secret: string }, userId: string): Promise<{ handle: string; token: string; createdAt: number }> {
    const response = await fetch(`${node.url}/v1/sessions`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${app.clientId}:${app.secret}`).toString('base64')}`, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: userId }) });
    const body = (await response.json()) as { session: { handle: string; created_at: string }; session_token: string };
    expect(response.status).toBe(201);
    return { handle: body.session.handle, token: body.session_token, createdAt: Date.parse(body.session.created_at) };
  }

  async function sessionsOf(node: Node, userId: string): Promise<Array<{ handle: string; active: boolean; ended_by: string | null; end_reason: string | null }>> {
    const listed = await adminOf(node)('GET', `/users/${userId}/sessions?include_ended=true`);
    expect(listed.status).toBe(200);
    return listed.body.sessions;
  }

  /** POSTs a SET to B's receiver endpoint `name`. */
  async function push(name: string, set: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(`${b.url}/ssf/receive/${name}`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt', ...headers }, body: set });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  /** A SET of the hand-made "security tool" transmitter, with what each case changes. */
  async function toolSet(input: { subject?: Record<string, unknown>; eventType?: string; event?: Record<string, unknown>; claims?: Record<string, unknown>; typ?: string; key?: CryptoKey; kid?: string; events?: Record<string, unknown> }): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const eventType = input.eventType ?? EVENT.sessionRevoked;
    const payload = {
      iss: TOOL_ISSUER,
      aud: B_AUDIENCE,
      jti: randomUUID(),
      iat: now,
      sub_id: input.subject ?? { format: 'email', email: 'carol@example.test' },
      events: input.events ?? { [eventType]: { event_timestamp: now, initiating_entity: 'policy', ...input.event } },
      ...input.claims,
    };
    return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: input.kid ?? toolKey.kid, typ: input.typ ?? 'secevent+jwt' }).sign(input.key ?? toolKey.privateKey);
  }

  it('a real transmitter (another Tessera) ends the sessions of the user it names, by verified email, begun before the event', async () => {
    // Upstream A: the receiver client's push stream to B, with the agreed credential; A's
    // operator sets the aud B expects.
    const receiverApp = await adminOf(a)('POST', '/apps', { name: 'tessera-b', grant_types: ['client_credentials'] });
    expect(receiverApp.status).toBe(201);
    const issued = await clientCredentialsToken(`${a.url}/oidc/token`, receiverApp.body.app.client_id, receiverApp.body.client_secret, 'ssf.manage ssf.read');
    const token = String(issued.body.access_token);
    const created = await call(token, 'POST', `${a.url}/ssf/streams`, { events_requested: [EVENT.sessionRevoked, EVENT.credentialChange], format: 'email', delivery: { method: PUSH_URN, endpoint_url: `${b.url}/ssf/receive/idp`, authorization_header: PUSH_SECRET } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const streamId = created.body.stream_id as string;
    expect((await adminOf(a)('PUT', `/ssf/streams/${streamId}/audience`, { aud: B_AUDIENCE })).status).toBe(200);

    // The same people on both: alice verified on both, bob verified on A only.
    const [aliceA, bobA] = [await createUser(a, 'alice', 'alice@example.test', true), await createUser(a, 'bob', 'bob@example.test', true)];
    const [aliceB, bobB] = [await createUser(b, 'alice', 'Alice@Example.test', true), await createUser(b, 'bob', 'bob@example.test', false)];
    const [siteA, siteB] = [await trustedApp(a), await trustedApp(b)];
    const aliceOnB = [await startSession(b, siteB, aliceB), await startSession(b, siteB, aliceB)];
    const bobOnB = await startSession(b, siteB, bobB);

    // Alice signs out on A: A's session-revoked reaches B, which ends her sessions there.
    const onA = await startSession(a, siteA, aliceA);
    expect((await fetch(`${a.url}/v1/logout/api`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_token: onA.token }) })).status).toBe(204);
    await until('alice\'s sessions on B ended', async () => ((await sessionsOf(b, aliceB)).every((s) => !s.active) ? true : undefined));
    for (const s of await sessionsOf(b, aliceB)) expect([s.ended_by, s.end_reason]).toEqual(['ssf:idp', 'upstream_signal']);
    expect(new Set((await sessionsOf(b, aliceB)).map((s) => s.handle))).toEqual(new Set(aliceOnB.map((s) => s.handle)));
    const whoami = await fetch(`${b.url}/v1/whoami`, { headers: { authorization: `Bearer ${aliceOnB[0]!.token}` } });
    expect(whoami.status).toBe(401);
    // A's stream shows it delivered (B answered 202).
    await until('the SET delivered on A', async () => ((await adminOf(a)('GET', `/ssf/streams/${streamId}/events?status=delivered`)).body.events.length >= 1 ? true : undefined));

    // Bob's email is not verified on B: A's SET about him is accepted (202) and ends nothing.
    const bobOnA = await startSession(a, siteA, bobA);
    expect((await adminOf(a)('DELETE', `/sessions/${bobOnA.handle}`)).status).toBe(204);
    await until('both SETs delivered on A', async () => ((await adminOf(a)('GET', `/ssf/streams/${streamId}/events?status=delivered`)).body.events.length >= 2 ? true : undefined));
    expect((await sessionsOf(b, bobB)).map((s) => s.active)).toEqual([true]);
    expect(bobOnB.handle).toBe((await sessionsOf(b, bobB))[0]!.handle);

    // A password change on A (credential-change, and a session-revoked per session it ended)
    // ends the session alice started on B since.
    const later = await startSession(b, siteB, aliceB);
    expect((await adminOf(a)('PATCH', `/users/${aliceA}`, { password: 'another long password' })).status).toBe(200);
    await until('alice\'s later session on B ended', async () => ((await sessionsOf(b, aliceB)).find((s) => s.handle === later.handle)?.active === false ? true : undefined));
    const audit = (await adminOf(b)('GET', '/audit?limit=100')).body.events.filter((e: { action: string }) => e.action === 'ssf.received');
    expect(audit.map((e: { actor: string }) => e.actor)).toContain('ssf:idp');
    expect(audit.some((e: { details: { event: string } }) => e.details.event === EVENT.credentialChange)).toBe(true);
    expect((await adminOf(a)('GET', `/ssf/streams/${streamId}/events?status=dead`)).body.events).toEqual([]);
  });

  it('a late or repeated SET never ends a session begun after its event; iss_sub names a user only where configured', async () => {
    const carol = await createUser(b, 'carol', 'carol@example.test', true);
    const site = await trustedApp(b);
    const before = await startSession(b, site, carol);
    // The event happened in the second `before` began; the next session starts in a later second.
    const eventSecond = Math.floor(before.createdAt / 1000);
    await until('the next second', () => (Date.now() >= (eventSecond + 1) * 1000 + 5 ? true : undefined), 5_000);
    const after = await startSession(b, site, carol);
    expect(after.createdAt).toBeGreaterThanOrEqual((eventSecond + 1) * 1000);
    const late = await toolSet({ event: { event_timestamp: eventSecond } });
    expect((await push('tool', late, { authorization: TOOL_SECRET })).status).toBe(202);
    const state = async () => Object.fromEntries((await sessionsOf(b, carol)).map((s) => [s.handle, s.active]));
    expect(await state()).toEqual({ [before.handle]: false, [after.handle]: true });
    // The same SET again (a transmitter retrying after a lost answer): accepted, nothing more ends.
    expect((await push('tool', late, { authorization: TOOL_SECRET })).status).toBe(202);
    expect(await state()).toEqual({ [before.handle]: false, [after.handle]: true });

    // iss_sub: the tool is configured to name Tessera user ids; another issuer's sub is nobody.
    expect((await push('tool', await toolSet({ subject: { format: 'iss_sub', iss: 'https://elsewhere.example.test', sub: carol } }), { authorization: TOOL_SECRET })).status).toBe(202);
    expect(await state()).toEqual({ [before.handle]: false, [after.handle]: true });
    // An event Tessera only notes (RISC account-disabled): accepted, nothing ends.
    expect((await push('tool', await toolSet({ subject: { format: 'iss_sub', iss: TOOL_ISSUER, sub: carol }, eventType: 'https://schemas.openid.net/secevent/risc/event-type/account-disabled' }), { authorization: TOOL_SECRET })).status).toBe(202);
    expect(await state()).toEqual({ [before.handle]: false, [after.handle]: true });
    // credential-change with the complex subject's user, by iss_sub: ends the later session.
    const changed = await toolSet({ subject: { format: 'complex', user: { format: 'iss_sub', iss: TOOL_ISSUER, sub: carol } }, eventType: EVENT.credentialChange, event: { credential_type: 'password', change_type: 'update' } });
    expect((await push('tool', changed, { authorization: TOOL_SECRET })).status).toBe(202);
    expect(await state()).toEqual({ [before.handle]: false, [after.handle]: false });
    // A subject that names nobody here: accepted (RFC 8935), nothing to do.
    expect((await push('tool', await toolSet({ subject: { format: 'email', email: 'nobody@example.test' } }), { authorization: TOOL_SECRET })).status).toBe(202);
  });

  it('refuses what a careful receiver refuses, with RFC 8935 err codes, and ends nothing', async () => {
    const erin = await createUser(b, 'erin', 'erin@example.test', true);
    const site = await trustedApp(b);
    const session = await startSession(b, site, erin);
    const subject = { format: 'email', email: 'erin@example.test' };
    const auth = { authorization: TOOL_SECRET };
    const refused = async (what: string, result: Promise<{ status: number; body: any }>, status: number, err: string, error: string) => {
      const r = await result;
      expect([r.status, r.body?.err, r.body?.error], what).toEqual([status, err, error]);
      expect(typeof r.body.description, what).toBe('string');
      expect(typeof r.body.message, what).toBe('string');
    };
    const foreign = await generateKeyPair('RS256');
    await refused('signed by another key under the same kid', push('tool', await toolSet({ subject, key: foreign.privateKey }), auth), 400, 'invalid_key', 'SSF_SET_REFUSED');
    await refused('a kid the upstream does not publish', push('tool', await toolSet({ subject, key: foreign.privateKey, kid: 'unknown-kid' }), auth), 400, 'invalid_key', 'SSF_SET_REFUSED');
    await refused('another issuer', push('tool', await toolSet({ subject, claims: { iss: 'https://impostor.example.test' } }), auth), 400, 'invalid_issuer', 'SSF_SET_REFUSED');
    await refused('another audience', push('tool', await toolSet({ subject, claims: { aud: 'urn:someone-else' } }), auth), 400, 'invalid_audience', 'SSF_SET_REFUSED');
    await refused('typ JWT, not secevent+jwt', push('tool', await toolSet({ subject, typ: 'JWT' }), auth), 400, 'invalid_request', 'SSF_SET_REFUSED');
    await refused('two events', push('tool', await toolSet({ subject, events: { [EVENT.sessionRevoked]: {}, [EVENT.credentialChange]: {} } }), auth), 400, 'invalid_request', 'SSF_SET_REFUSED');
    await refused('a sub claim', push('tool', await toolSet({ subject, claims: { sub: 'erin' } }), auth), 400, 'invalid_request', 'SSF_SET_REFUSED');
    await refused('no jti', push('tool', await toolSet({ subject, claims: { jti: undefined } }), auth), 400, 'invalid_request', 'SSF_SET_REFUSED');
    await refused('an event from the future', push('tool', await toolSet({ subject, event: { event_timestamp: Math.floor(Date.now() / 1000) + 3_600 } }), auth), 400, 'invalid_request', 'SSF_SET_REFUSED');
    await refused('not a JWT', push('tool', 'not-a-jwt', auth), 400, 'invalid_request', 'SSF_SET_REFUSED');
    const good = await toolSet({ subject });
    await refused('no Authorization header', push('tool', good), 400, 'authentication_failed', 'SSF_SET_REFUSED');
    await refused('a wrong Authorization header', push('tool', good, { authorization: `${TOOL_SECRET}x` }), 400, 'authentication_failed', 'SSF_SET_REFUSED');
    await refused('another upstream\'s credential', push('tool', good, { authorization: PUSH_SECRET }), 400, 'authentication_failed', 'SSF_SET_REFUSED');
    await refused('an unknown upstream', push('nobody', good, auth), 404, 'invalid_request', 'SSF_UPSTREAM_NOT_FOUND');
    await refused('keys that cannot be fetched', push('unreachable', good), 503, 'invalid_key', 'SSF_UPSTREAM_KEYS_UNAVAILABLE');
    const json = await fetch(`${b.url}/ssf/receive/tool`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ set: good }) });
    expect(json.status).toBe(415);
    expect((await sessionsOf(b, erin)).map((s) => [s.handle, s.active])).toEqual([[session.handle, true]]);
    // Then the same SET with its credential: accepted, and erin's session ends.
    expect((await push('tool', good, auth)).status).toBe(202);
    expect((await sessionsOf(b, erin)).map((s) => [s.handle, s.active])).toEqual([[session.handle, false]]);
  });
});
