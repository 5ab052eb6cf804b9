// Every way a session ends becomes a CAEP session-revoked SET, with the initiating entity and
// the reasons of that end, and `event_timestamp` when the session really ended (for an
// expiry: its deadline, not the later sweep). Driven in process with a manual clock (for the
// idle and absolute expiries); the SETs are read by poll and checked by the independent
// receiver (test/e2e/support/ssf-receiver.ts), rule by rule.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateSet, type ReceivedSet, type Transmitter } from '../../../test/e2e/support/ssf-receiver.js';
import { adminRequest, basicAuth, createApp, createTestServer, expectError, START, startAppSession, type TestApp, type TestServer } from './support.js';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
const STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';
const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';

let t: TestServer;
let app: TestApp;
let token: string;
let streamId: string;

async function transmitter(): Promise<Transmitter> {
  const metadata = (await t.app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })).json<Record<string, unknown>>();
  const jwks = (await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
  return { issuer: String(metadata.issuer), metadata, jwks };
}

/** Everything the stream holds now, validated, and acknowledged. */
async function drain(): Promise<ReceivedSet[]> {
  // A fresh token: the clock may have moved past the last one's lifetime.
  const issued = await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: basicAuth(app.clientId, app.clientSecret), 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials&scope=ssf.manage' });
  token = issued.json<{ access_token: string }>().access_token;
  const res = await t.app.inject({ method: 'POST', url: `/ssf/poll/${streamId}`, headers: { authorization: `Bearer ${token}` }, payload: { returnImmediately: true, maxEvents: 1000 } });
  expect(res.statusCode, res.body).toBe(200);
  const tx = await transmitter();
  const sets: ReceivedSet[] = [];
  for (const jwt of Object.values(res.json<{ sets: Record<string, string> }>().sets)) sets.push(await validateSet(jwt, tx, app.clientId, t.clock.now()));
  if (sets.length > 0) await t.app.inject({ method: 'POST', url: `/ssf/poll/${streamId}`, headers: { authorization: `Bearer ${token}` }, payload: { ack: sets.map((s) => s.claims.jti), maxEvents: 0 } });
  return sets;
}

async function createUser(extra: Record<string, unknown> = {}): Promise<string> {
  const res = await adminRequest(t, 'POST', '/users', { username: `u${Math.random().toString(36).slice(2, 10)}`, ...extra });
  expect(res.statusCode).toBe(201);
  return res.json<{ user: { id: string } }>().user.id;
}

const reason = (s: ReceivedSet) => (s.event.reason_admin as { en: string }).en;
const seconds = (ms: number) => Math.floor(ms / 1000);

beforeEach(async () => {
  t = await createTestServer({ file: { rateLimit: { enabled: false }, session: { idleTimeoutSeconds: 600, absoluteLifetimeSeconds: 3_600, touchIntervalSeconds: 0 } } });
  app = await createApp(t, { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
  const issued = await t.app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: basicAuth(app.clientId, app.clientSecret), 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=client_credentials&scope=ssf.manage' });
  token = issued.json<{ access_token: string }>().access_token;
  const stream = await t.app.inject({ method: 'POST', url: '/ssf/streams', headers: { authorization: `Bearer ${token}` }, payload: { events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE] } });
  expect(stream.statusCode, stream.body).toBe(201);
  streamId = stream.json<{ stream_id: string }>().stream_id;
});

afterEach(async () => {
  await t.close();
});

describe('session-revoked for every end', () => {
  it('idle expiry: event_timestamp is the idle deadline, not the later sweep; initiated by policy', async () => {
    const userId = await createUser();
    await startAppSession(t, app, userId);
    t.clock.advance(1_800_000);
    expect(await t.authority.sessions.sweepExpired()).toBe(1);
    const [set] = await drain();
    expect(set!.type).toBe(SESSION_REVOKED);
    expect(set!.event.event_timestamp).toBe(seconds(START + 600_000));
    expect(set!.event.initiating_entity).toBe('policy');
    expect(reason(set!)).toMatch(/idle/);
    // iat is when the SET was made (the sweep); the end itself is earlier.
    expect(set!.claims.iat).toBe(seconds(START + 1_800_000));
  });

  it('absolute expiry of a session kept in use: event_timestamp is the absolute end', async () => {
    const userId = await createUser();
    const session = await startAppSession(t, app, userId);
    for (let at = 500_000; at < 3_600_000; at += 500_000) {
      t.clock.set(START + at);
      expect((await t.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${session.token}` } })).statusCode).toBe(200);
    }
    t.clock.set(START + 3_700_000);
    expect(await t.authority.sessions.sweepExpired()).toBe(1);
    const [set] = await drain();
    expect(set!.event.event_timestamp).toBe(seconds(START + 3_600_000));
    expect(reason(set!)).toMatch(/absolute lifetime/);
  });

  it('refresh-token theft: the reused token ends the session, initiated by policy', async () => {
    const userId = await createUser();
    const session = await startAppSession(t, app, userId);
    const pair = (await t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: app.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=session_token&session_token=${encodeURIComponent(session.token)}` })).json<{ refresh_token: string }>();
    const refresh = (rt: string) => t.app.inject({ method: 'POST', url: '/v1/token', headers: { authorization: app.basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=refresh_token&refresh_token=${encodeURIComponent(rt)}` });
    expect((await refresh(pair.refresh_token)).statusCode).toBe(200);
    expect((await refresh(pair.refresh_token)).statusCode).toBe(401);
    const sets = await drain();
    expect(sets).toHaveLength(1);
    expect(sets[0]!.event.initiating_entity).toBe('policy');
    expect(reason(sets[0]!)).toMatch(/theft/);
  });

  it('an end caused by an upstream transmitter\'s SET (Tessera as a receiver): initiated by the system, the upstream named', async () => {
    const userId = await createUser();
    const session = await startAppSession(t, app, userId);
    // What the receiver (core ssf-receiver.ts, walked in test/e2e/ssf-upstream.test.ts) does.
    await t.authority.sessions.revokeSessions([session.handle], { actor: 'ssf:idp', reason: 'upstream_signal' });
    const sets = await drain();
    expect(sets).toHaveLength(1);
    expect(sets[0]!.event.initiating_entity).toBe('system');
    expect(reason(sets[0]!)).toBe('A security event from the upstream provider "idp" ended the session (its session-revoked or credential-change).');
    expect((sets[0]!.event.reason_user as { en: string }).en).toBe('Your sign-in was ended by your identity provider.');
  });

  it('an app\'s server-to-server logout, a user ending one of their sessions, and a user\'s own password change', async () => {
    const userId = await createUser({ password: 'the first long password' });
    const a = await startAppSession(t, app, userId);
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic, 'content-type': 'text/plain' }, payload: a.token });
    expect(res.statusCode).toBe(200);
    const [byApp] = await drain();
    expect(byApp!.event.initiating_entity).toBe('user');
    expect(reason(byApp!)).toContain(`through app ${app.clientId}`);

    const b = await startAppSession(t, app, userId);
    const c = await startAppSession(t, app, userId);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/sessions/${c.handle}`, headers: { authorization: `Bearer ${b.token}` } })).statusCode).toBe(204);
    const [fromList] = await drain();
    expect(fromList!.event.initiating_entity).toBe('user');
    expect(reason(fromList!)).toMatch(/list of devices/);

    const d = await startAppSession(t, app, userId);
    const changed = await t.app.inject({ method: 'POST', url: '/v1/password', headers: { authorization: `Bearer ${b.token}` }, payload: { current_password: 'the first long password', new_password: 'the second long password' } });
    expect(changed.statusCode, changed.body).toBeLessThan(300);
    const sets = await drain();
    const credential = sets.find((s) => s.type === CREDENTIAL_CHANGE)!;
    expect(credential.event).toMatchObject({ credential_type: 'password', change_type: 'update', initiating_entity: 'user' });
    // The other session (d) ended with it, in the same transaction: the same txn.
    const ended = sets.filter((s) => s.type === SESSION_REVOKED);
    expect(ended).toHaveLength(1);
    expect(ended[0]!.claims.txn).toBe(credential.claims.txn);
    void d;
  });

  it('an app leaving a session (scope app) ends no session and sends nothing', async () => {
    const userId = await createUser();
    const session = await startAppSession(t, app, userId);
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/logout', headers: { authorization: app.basic, 'content-type': 'application/json' }, payload: { token: session.token, scope: 'app' } });
    expect(res.statusCode).toBe(200);
    expect(await drain()).toEqual([]);
  });
});

describe('stream events', () => {
  it('an operator pausing a stream tells the receiver by stream-updated, delivered even while paused; a disabled stream cannot be verified', async () => {
    const paused = await adminRequest(t, 'POST', `/ssf/streams/${streamId}/status`, { status: 'paused', reason: 'receiver maintenance' });
    expect(paused.statusCode, paused.body).toBe(200);
    expect(paused.json<{ stream: { status: string } }>().stream.status).toBe('paused');
    const userId = await createUser();
    const s = await startAppSession(t, app, userId);
    await t.authority.sessions.revokeSessions([s.handle], { actor: 'admin', reason: 'admin_revoked' });
    const sets = await drain();
    // Only the notice about the stream; the session end is held.
    expect(sets.map((x) => x.type)).toEqual([STREAM_UPDATED]);
    expect(sets[0]!.event).toEqual({ status: 'paused', reason: 'receiver maintenance' });
    expect(sets[0]!.claims.sub_id).toEqual({ format: 'opaque', id: streamId });
    // A verification while paused comes through as well.
    expect((await t.app.inject({ method: 'POST', url: '/ssf/verify', headers: { authorization: `Bearer ${token}` }, payload: { stream_id: streamId } })).statusCode).toBe(204);
    const verification = await drain();
    expect(verification.map((x) => x.type)).toEqual([VERIFICATION]);
    // An unsolicited-looking verification carries no state when none was given.
    expect(verification[0]!.event).toEqual({});
    expect((await adminRequest(t, 'POST', `/ssf/streams/${streamId}/status`, { status: 'enabled' })).statusCode).toBe(200);
    // The held end first (it happened first), then the notice of the enabling.
    expect((await drain()).map((x) => x.type)).toEqual([SESSION_REVOKED, STREAM_UPDATED]);
    expect((await adminRequest(t, 'POST', `/ssf/streams/${streamId}/status`, { status: 'disabled' })).statusCode).toBe(200);
    t.clock.advance(60_000);
    const refused = await t.app.inject({ method: 'POST', url: '/ssf/verify', headers: { authorization: `Bearer ${token}` }, payload: { stream_id: streamId } });
    expect(refused.statusCode).toBe(400);
    expect((await adminRequest(t, 'POST', '/ssf/streams/st_unknown/status', { status: 'paused' })).statusCode).toBe(404);
    expect((await adminRequest(t, 'GET', `/ssf/streams/${streamId}/events?status=delivered`)).json<{ events: unknown[] }>().events.length).toBe(4);
  });

  it('the admin routes need the admin token and answer bad input with 4xx', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/admin/api/ssf/streams' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/admin/api/ssf/streams', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
    const listed = await adminRequest(t, 'GET', '/ssf/streams');
    expect(listed.statusCode).toBe(200);
    const [stream] = listed.json<{ streams: Array<Record<string, unknown>> }>().streams;
    expect(stream).toMatchObject({ stream_id: streamId, client_id: app.clientId, status: 'enabled', delivery_method: 'urn:ietf:rfc:8936', delivery: { pending: 0, delivered: 0, dead: 0, last_error: null } });
    // The receiver's push credential is never in a listing.
    expect(JSON.stringify(stream)).not.toContain('authorization');
    expect((await adminRequest(t, 'GET', '/ssf/streams/st_unknown/events')).statusCode).toBe(404);
    expect((await adminRequest(t, 'GET', `/ssf/streams/${streamId}/events?status=lost`)).statusCode).toBe(400);
    expect((await adminRequest(t, 'POST', `/ssf/streams/${streamId}/status`, { status: 'asleep' })).statusCode).toBe(400);
  });

  it('an operator sends a dead SET again by the admin API: the receiver gets the same jti and claims; only dead SETs of that stream, never on a disabled one', async () => {
    const userId = await createUser();
    const s = await startAppSession(t, app, userId);
    await t.authority.sessions.revokeSessions([s.handle], { actor: 'admin', reason: 'admin_revoked' });
    const poll = (payload: object) => t.app.inject({ method: 'POST', url: `/ssf/poll/${streamId}`, headers: { authorization: `Bearer ${token}` }, payload });
    const first = await poll({ returnImmediately: true, maxEvents: 10 });
    const [jwt] = Object.values(first.json<{ sets: Record<string, string> }>().sets);
    const set = await validateSet(jwt!, await transmitter(), app.clientId, t.clock.now());
    // The receiver refuses it for good (RFC 8936 setErrs): dead.
    expect((await poll({ setErrs: { [set.claims.jti as string]: { err: 'invalid_key', description: 'unknown kid' } }, maxEvents: 0 })).statusCode).toBe(200);
    const [dead] = (await adminRequest(t, 'GET', `/ssf/streams/${streamId}/events?status=dead`)).json<{ events: Array<{ id: number; jti: string; attempts: number }> }>().events;
    expect(dead).toMatchObject({ jti: set.claims.jti });
    const url = `/ssf/streams/${streamId}/events/${dead!.id}/retry`;
    // The admin token only (not the receiver's access token).
    expect((await t.app.inject({ method: 'POST', url: `/admin/api${url}` })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: `/admin/api${url}`, headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
    t.clock.advance(5_000);
    const retried = await adminRequest(t, 'POST', url);
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json<{ event: Record<string, unknown> }>().event).toMatchObject({ id: dead!.id, jti: set.claims.jti, status: 'pending', next_attempt_at: new Date(t.clock.now()).toISOString(), last_error: 'invalid_key: unknown kid' });
    // The signed SET is not in the answer.
    expect(retried.body).not.toContain(jwt!.split('.')[2]!);
    // Not dead any more: a second retry is refused; so are unknown ids and streams, and bad ids.
    expectError(await adminRequest(t, 'POST', url), 404, 'SSF_EVENT_NOT_FOUND');
    expectError(await adminRequest(t, 'POST', `/ssf/streams/${streamId}/events/987654321/retry`), 404, 'SSF_EVENT_NOT_FOUND');
    expectError(await adminRequest(t, 'POST', `/ssf/streams/st_unknown/events/${dead!.id}/retry`), 404, 'SSF_STREAM_NOT_FOUND');
    expectError(await adminRequest(t, 'POST', `/ssf/streams/${streamId}/events/abc/retry`), 400, 'INVALID_REQUEST');
    expectError(await adminRequest(t, 'POST', `/ssf/streams/${streamId}/events/0/retry`), 400, 'INVALID_REQUEST');
    // The receiver polls it again: the same jti, the same claims (event_timestamp unchanged).
    const again = await drain();
    expect(again.map((x) => x.claims.jti)).toEqual([set.claims.jti]);
    expect(again[0]!.claims).toEqual(set.claims);
    const audit = await t.store.listAudit({ limit: 20 });
    expect(audit.find((e) => e.action === 'ssf.event_retried')).toMatchObject({ actor: 'admin', clientId: app.clientId, details: { stream: streamId, event: dead!.id, jti: set.claims.jti } });
    // A dead SET of a disabled stream stays dead: a disabled stream sends nothing.
    const s2 = await startAppSession(t, app, userId);
    await t.authority.sessions.revokeSessions([s2.handle], { actor: 'admin', reason: 'admin_revoked' });
    const second = Object.keys((await poll({ returnImmediately: true, maxEvents: 10 })).json<{ sets: Record<string, string> }>().sets);
    expect(second).toHaveLength(1);
    await poll({ setErrs: { [second[0]!]: { err: 'invalid_request', description: 'no' } }, maxEvents: 0 });
    const [dead2] = (await adminRequest(t, 'GET', `/ssf/streams/${streamId}/events?status=dead`)).json<{ events: Array<{ id: number }> }>().events;
    expect((await adminRequest(t, 'POST', `/ssf/streams/${streamId}/status`, { status: 'disabled' })).statusCode).toBe(200);
    expectError(await adminRequest(t, 'POST', `/ssf/streams/${streamId}/events/${dead2!.id}/retry`), 409, 'SSF_STREAM_DISABLED');
    expect((await adminRequest(t, 'GET', `/ssf/streams/${streamId}/events?status=dead`)).json<{ events: Array<{ id: number }> }>().events.map((e) => e.id)).toEqual([dead2!.id]);
  });

  it('a rotated client secret retires the access tokens issued before it', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/ssf/streams', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    expect((await adminRequest(t, 'POST', `/apps/${app.clientId}/secret`)).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/ssf/streams', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
  });

  it('an expired access token is refused', async () => {
    t.clock.advance(3_601_000);
    const res = await t.app.inject({ method: 'GET', url: '/ssf/streams', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: string }>().error).toBe('SSF_INVALID_TOKEN');
  });
});
