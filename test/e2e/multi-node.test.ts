// Three Tessera nodes (`node packages/server/dist/cli.js start`, child processes) over one
// real PostgreSQL (a schema of this run's own) and a Redis server this test starts, stops
// and restarts. What one node does, the others know: sessions, signing keys, revocations
// (feed subscribers on the other nodes hear of them through NOTIFY or Redis, never through
// the poll, which is set to a minute here), and the logout outbox, which the nodes drain
// together and which survives a node killed with SIGKILL or stopped with SIGTERM.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchemaUrl, postgresTestUrl, type TestSchema } from '../../packages/store/test/pg-support.js';
import {
  followFeed,
  metricValue,
  NODE_START_TIMEOUT_MS,
  pidOfPeer,
  redisServerAvailable,
  startNode,
  startRedis,
  startSlowReceiver,
  waitFor,
  writeConfigFile,
  type FeedFollower,
  type NodeProcess,
  type RedisProcess,
  type SlowReceiver,
} from './support/cluster.js';

const ADMIN_TOKEN = `e2e-cluster-admin-${randomBytes(24).toString('base64url')}`;
// One public URL for every node, as behind a load balancer (loopback: cookies may be non-Secure).
const ISSUER = 'http://localhost';

const pgUrl = await postgresTestUrl();
const hasRedis = redisServerAvailable();
const skipReason = !pgUrl ? 'PostgreSQL not reachable' : !hasRedis ? 'redis-server not installed' : null;
if (skipReason) console.warn(`multi-node test skipped: ${skipReason}`);

interface App {
  clientId: string;
  basic: string;
}
interface Session {
  handle: string;
  token: string;
}

async function call<T = Record<string, unknown>>(url: string, method: string, path: string, options: { headers?: Record<string, string>; json?: unknown; form?: Record<string, string> } = {}): Promise<{ status: number; body: T; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(options.form).toString();
  }
  const response = await fetch(`${url}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (metrics)
  }
  return { status: response.status, body: parsed as T, headers: response.headers };
}

const admin = <T = Record<string, unknown>>(node: NodeProcess, method: string, path: string, json?: unknown) =>
  call<T>(node.url, method, `/admin/api${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, json });

const whoami = (node: NodeProcess, token: string) => call<{ session: { handle: string } }>(node.url, 'GET', '/v1/whoami', { headers: { 'x-session-token': token } });

async function metrics(node: NodeProcess): Promise<string> {
  const response = await call<string>(node.url, 'GET', '/metrics', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (response.status !== 200) throw new Error(`GET /metrics on ${node.name} answered ${response.status}`);
  return response.body;
}

async function registerApp(node: NodeProcess, body: Record<string, unknown>): Promise<App & { secret: string }> {
  const { status, body: created } = await admin<{ app: { client_id: string }; client_secret: string }>(node, 'POST', '/apps', body);
  if (status !== 201) throw new Error(`POST /apps answered ${status}: ${JSON.stringify(created)}`);
  const clientId = created.app.client_id;
  return { clientId, secret: created.client_secret, basic: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(created.client_secret)}`).toString('base64')}` };
}

async function startSession(node: NodeProcess, app: App, userId: string): Promise<Session> {
  const { status, body } = await call<{ session: { handle: string }; session_token: string }>(node.url, 'POST', '/v1/sessions', { headers: { authorization: app.basic }, json: { user_id: userId, device: { user_agent: 'cluster-e2e' } } });
  if (status !== 201) throw new Error(`POST /v1/sessions on ${node.name} answered ${status}: ${JSON.stringify(body)}`);
  return { handle: body.session.handle, token: body.session_token };
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

/** The whole revocation log as a node serves it (GET /v1/revocations, paged). */
async function readLog(node: NodeProcess, app: App): Promise<Array<{ cursor: number; sid: string; reason: string }>> {
  const all: Array<{ cursor: number; sid: string; reason: string }> = [];
  let after = 0;
  for (;;) {
    const { status, body } = await call<{ events: Array<{ cursor: number; sid: string; reason: string }>; next: number }>(node.url, 'GET', `/v1/revocations?after=${after}&limit=1000`, { headers: { authorization: app.basic } });
    expect(status).toBe(200);
    all.push(...body.events);
    if (body.next === after) return all;
    after = body.next;
  }
}

describe.skipIf(skipReason !== null)(`three nodes on one PostgreSQL and Redis${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let schema: TestSchema;
  let db: pg.Pool;
  let redis: RedisProcess;
  let receiver: SlowReceiver;
  let config: { path: string; remove(): void };
  let nodes: NodeProcess[] = [];
  let n1: NodeProcess, n2: NodeProcess, n3: NodeProcess;
  let gateway: App;
  let relyingParty: App;
  let userId: string;
  const followers: FeedFollower[] = [];
  // Every secret handed to the nodes or received from them: none may appear in a log line.
  const secrets: string[] = [ADMIN_TOKEN];

  const head = async () => Number((await db.query<{ value: string }>('SELECT value FROM revocation_counter WHERE id = 1')).rows[0]!.value);
  const follow = async (node: NodeProcess, after: number) => {
    const follower = await followFeed(node.url, gateway.basic, after);
    followers.push(follower);
    return follower;
  };

  beforeAll(async () => {
    schema = await freshSchemaUrl(pgUrl!);
    db = new pg.Pool({ connectionString: schema.url, max: 2 });
    db.on('error', () => undefined);
    redis = await startRedis();
    receiver = await startSlowReceiver(250, () => nodes.map((n) => n.pid));
    config = writeConfigFile({
      // A minute: any event that reaches a follower within seconds came through a wake-up
      // (NOTIFY or Redis), not through the last-resort poll.
      feed: { pollIntervalMs: 60_000 },
      // Short leases so that a killed node's deliveries are taken over within seconds.
      outbox: { leaseSeconds: 3, timeoutMs: 2_000, backoffBaseMs: 100, backoffMaxMs: 1_000, pollIntervalMs: 200, concurrencyPerApp: 8, maxInFlight: 16 },
      sweeper: { intervalSeconds: 1 },
    });
    const env = {
      TESSERA_DATABASE_URL: schema.url,
      TESSERA_REDIS_URL: redis.url,
      TESSERA_ADMIN_TOKEN: ADMIN_TOKEN,
      TESSERA_ISSUER: ISSUER,
      TESSERA_COOKIE_SECURE: 'false',
      TESSERA_RATE_LIMIT: 'false',
      TESSERA_LOG_LEVEL: 'info',
      TESSERA_CONFIG: config.path,
    };
    // All three at once: migrations (advisory lock) and the first signing key (ON CONFLICT)
    // race on an empty schema.
    const started = await Promise.allSettled(['node-1', 'node-2', 'node-3'].map((name) => startNode(name, env)));
    nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    [n1, n2, n3] = nodes as [NodeProcess, NodeProcess, NodeProcess];

    const registered = [await registerApp(n1, { name: 'gateway', trusted: true }), await registerApp(n1, { name: 'slow-rp', trusted: true, backchannel_logout_uri: receiver.url })] as const;
    [gateway, relyingParty] = registered;
    secrets.push(...registered.map((a) => a.secret));
    const created = await admin<{ user: { id: string } }>(n1, 'POST', '/users', { username: 'cluster-user', email: 'cluster@example.test', password: 'correct horse battery staple' });
    expect(created.status).toBe(201);
    userId = created.body.user.id;
  }, NODE_START_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    for (const f of followers) f.close();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await receiver?.close();
    await redis?.close();
    await db?.end();
    await schema?.drop();
    config?.remove();
  }, 30_000);

  it('a session started on node 1 is known on nodes 2 and 3; an unknown token is not', async () => {
    const session = await startSession(n1, gateway, userId);
    secrets.push(session.token);
    for (const node of [n2, n3]) {
      const answer = await whoami(node, session.token);
      expect(answer.status).toBe(200);
      expect(answer.body.session.handle).toBe(session.handle);
    }
    const listed = await admin<{ sessions: Array<{ handle: string }> }>(n3, 'GET', `/users/${userId}/sessions`);
    expect(listed.body.sessions.map((s) => s.handle)).toContain(session.handle);
    // Same id, wrong secret: the nodes compare the stored hash, not just the id.
    const forged = `${session.token.split('.')[0]}.${randomBytes(32).toString('base64url')}`;
    expect((await whoami(n2, forged)).status).toBe(401);
  });

  it('serves one JWKS on every node; an access token from node 1 introspects active on node 3 until the session ends on node 2', async () => {
    const jwks = await Promise.all(nodes.map((n) => call<{ keys: Array<{ kid: string }> }>(n.url, 'GET', '/.well-known/jwks.json')));
    for (const j of jwks) expect(j.status).toBe(200);
    expect(jwks[0]!.body.keys.length).toBeGreaterThan(0);
    expect(jwks[1]!.body).toEqual(jwks[0]!.body);
    expect(jwks[2]!.body).toEqual(jwks[0]!.body);

    const session = await startSession(n1, gateway, userId);
    secrets.push(session.token);
    const issued = await call<{ access_token: string; refresh_token: string }>(n1.url, 'POST', '/v1/token', { headers: { authorization: gateway.basic }, form: { grant_type: 'session_token', session_token: session.token } });
    expect(issued.status).toBe(200);
    secrets.push(issued.body.access_token, issued.body.refresh_token);
    const kid = (JSON.parse(Buffer.from(issued.body.access_token.split('.')[0]!, 'base64url').toString('utf8')) as { kid: string }).kid;
    expect(jwks[2]!.body.keys.map((k) => k.kid)).toContain(kid);

    const introspect = () => call<{ active: boolean; sid?: string }>(n3.url, 'POST', '/v1/introspect', { headers: { authorization: gateway.basic }, json: { token: issued.body.access_token } });
    const before = await introspect();
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ active: true, sid: session.handle });
    expect((await admin(n2, 'DELETE', `/sessions/${session.handle}`)).status).toBe(204);
    expect((await introspect()).body).toEqual({ active: false });
  });

  it('a revocation on node 1 reaches stream subscribers on nodes 2 and 3, and whoami there answers 401 as soon as the revoke call returns', async () => {
    const after = await head();
    const on2 = await follow(n2, after);
    const on3 = await follow(n3, after);
    const sessions = await mapLimit(Array.from({ length: 10 }), 4, () => startSession(n1, gateway, userId));
    secrets.push(...sessions.map((s) => s.token));
    for (const s of sessions) {
      expect((await whoami(n2, s.token)).status).toBe(200);
      expect((await admin(n1, 'DELETE', `/sessions/${s.handle}`)).status).toBe(204);
      const [a2, a3] = await Promise.all([whoami(n2, s.token), whoami(n3, s.token)]);
      expect([a2.status, a3.status]).toEqual([401, 401]);
      const [e2, e3] = await Promise.all([on2.waitForSid(s.handle), on3.waitForSid(s.handle)]);
      expect(e2.cursor).toBe(e3.cursor);
      expect(e2.reason).toBe('admin_revoked');
    }
    const log = (await readLog(n1, gateway)).filter((e) => e.cursor > after);
    expect(on2.events.map((e) => [e.cursor, e.sid])).toEqual(log.map((e) => [e.cursor, e.sid]));
    expect(on3.events.map((e) => [e.cursor, e.sid])).toEqual(log.map((e) => [e.cursor, e.sid]));
    on2.close();
    on3.close();
  });

  it('the expiry sweepers of three nodes end each overdue session exactly once', async () => {
    const sessions = await mapLimit(Array.from({ length: 30 }), 4, () => startSession(n2, gateway, userId));
    secrets.push(...sessions.map((s) => s.token));
    const handles = sessions.map((s) => s.handle);
    // Time passing, in the database: every node's sweeper (each second) now finds them due.
    await db.query('UPDATE sessions SET idle_expires_at = $1 WHERE handle = ANY($2)', [Date.now() - 1_000, handles]);
    await waitFor('the sweepers to end 30 sessions', async () => {
      const { rows } = await db.query<{ n: string }>('SELECT COUNT(*) AS n FROM sessions WHERE handle = ANY($1) AND ended_at IS NOT NULL', [handles]);
      return Number(rows[0]!.n) === 30 ? true : undefined;
    }, 15_000);
    const log = await readLog(n3, gateway);
    const mine = log.filter((e) => handles.includes(e.sid));
    expect(mine).toHaveLength(30);
    expect(new Set(mine.map((e) => e.sid)).size).toBe(30);
    expect(new Set(mine.map((e) => e.reason))).toEqual(new Set(['expired']));
    expect(log.map((e) => e.cursor)).toEqual(log.map((_, i) => i + 1));
    for (const node of nodes) expect((await whoami(node, sessions[0]!.token)).status).toBe(401);
  });

  it('exposes Prometheus metrics behind the admin token, echoes request ids in JSON logs, and logs no secret', async () => {
    expect((await call(n1.url, 'GET', '/metrics')).status).toBe(401);
    // A revocation of its own on node 1, which the counters and the route's histogram below
    // must show (not one left by an earlier test, which may have failed before making it).
    const ended = await startSession(n1, gateway, userId);
    secrets.push(ended.token);
    expect((await admin(n1, 'DELETE', `/sessions/${ended.handle}`)).status).toBe(204);
    const text = await metrics(n1);
    for (const name of ['tessera_active_sessions', 'tessera_feed_subscribers', 'tessera_outbox_in_flight']) expect(metricValue(text, name)).toBeGreaterThanOrEqual(0);
    expect(metricValue(text, 'tessera_outbox_deliveries', { status: 'pending' })).toBeGreaterThanOrEqual(0);
    expect(metricValue(text, 'tessera_outbox_deliveries', { status: 'dead' })).toBe(0);
    expect(metricValue(text, 'tessera_revocations_total', { reason: 'admin_revoked' })).toBeGreaterThan(0);
    expect(metricValue(text, 'tessera_http_request_duration_seconds_count', { route: '/admin/api/sessions/:handle', method: 'DELETE', status: '204' })).toBeGreaterThan(0);
    expect(metricValue(text, 'tessera_http_request_duration_seconds_bucket', { route: '/admin/api/sessions/:handle', method: 'DELETE', status: '204', le: '+Inf' })).toBeGreaterThan(0);
    expect(metricValue(text, 'tessera_revocation_signal_up', { source: 'postgres' })).toBe(1);
    expect(metricValue(text, 'tessera_revocation_signal_up', { source: 'redis' })).toBe(1);

    const requestId = `e2e-${randomBytes(6).toString('hex')}`;
    const answered = await call(n2.url, 'GET', '/health', { headers: { 'x-request-id': requestId } });
    expect(answered.headers.get('x-request-id')).toBe(requestId);
    const line = await waitFor('the request id in a log line of node 2', () => n2.lines.find((l) => l.includes(requestId)));
    expect(JSON.parse(line)).toMatchObject({ reqId: requestId });
    // A request id that could forge log content is replaced, not echoed.
    const hostile = await call(n2.url, 'GET', '/health', { headers: { 'x-request-id': 'a"}\u0009{"level":60' } });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const leaked = secrets.filter((s) => nodes.some((n) => n.lines.some((l) => l.includes(s))));
    expect(leaked).toEqual([]);
  });

  it('Redis stopped during traffic and started again: no revocation lost or reordered on any subscriber, none resurrected, Redis wake-ups resume', async () => {
    const redisUp = async (node: NodeProcess) => metricValue(await metrics(node), 'tessera_revocation_signal_up', { source: 'redis' });
    for (const node of nodes) await waitFor(`redis up on ${node.name}`, async () => ((await redisUp(node)) === 1 ? true : undefined));
    const after = await head();
    const on2 = await follow(n2, after);
    const on3 = await follow(n3, after);

    // Traffic on node 1: start a session, end it, and check at once on node 2 that it is gone.
    const revoked: Session[] = [];
    let stop = false;
    let trafficError: unknown = null;
    const traffic = (async () => {
      while (!stop) {
        const s = await startSession(n1, gateway, userId);
        const ended = await admin(n1, 'DELETE', `/sessions/${s.handle}`);
        if (ended.status !== 204) throw new Error(`revoke answered ${ended.status}`);
        revoked.push(s);
        const after2 = await whoami(n2, s.token);
        if (after2.status !== 401) throw new Error(`session ${s.handle} still answered ${after2.status} on node 2 after its revoke returned`);
      }
    })().catch((error: unknown) => {
      trafficError = error;
    });
    const revokedAtLeast = (n: number, what: string) => waitFor(what, () => (trafficError ? Promise.reject(trafficError) : revoked.length >= n ? true : undefined), 20_000);

    await revokedAtLeast(20, '20 revocations with Redis up');
    await redis.kill();
    for (const node of [n2, n3]) await waitFor(`redis down on ${node.name}`, async () => ((await redisUp(node)) === 0 ? true : undefined));
    expect(metricValue(await metrics(n2), 'tessera_revocation_signal_up', { source: 'postgres' })).toBe(1);
    const atOutage = revoked.length;
    await revokedAtLeast(atOutage + 20, '20 revocations with Redis down');
    await redis.start();
    for (const node of nodes) await waitFor(`redis back on ${node.name}`, async () => ((await redisUp(node)) === 1 ? true : undefined), 15_000);
    const atReturn = revoked.length;
    await revokedAtLeast(atReturn + 20, '20 revocations after Redis returned');
    stop = true;
    await traffic;
    expect(trafficError).toBeNull();

    const end = await head();
    await Promise.all([on2.waitForCursor(end), on3.waitForCursor(end)]);
    const log = (await readLog(n1, gateway)).filter((e) => e.cursor > after);
    expect(log.map((e) => e.cursor)).toEqual(log.map((_, i) => after + i + 1));
    expect(log.map((e) => e.sid)).toEqual(revoked.map((s) => s.handle));
    expect(on2.events.map((e) => [e.cursor, e.sid])).toEqual(log.map((e) => [e.cursor, e.sid]));
    expect(on3.events.map((e) => [e.cursor, e.sid])).toEqual(log.map((e) => [e.cursor, e.sid]));
    secrets.push(...revoked.map((s) => s.token));

    // Nothing came back to life on any node, Redis or not.
    const answers = await mapLimit(revoked, 8, (s, i) => whoami(nodes[i % 3]!, s.token));
    expect(answers.filter((a) => a.status !== 401)).toEqual([]);

    // Wake-ups come through Redis again: one more revocation on node 1 is counted as a Redis
    // wake-up on nodes 2 and 3, not on node 1 itself (it woke in-process at its commit).
    const redisSignals = async (node: NodeProcess) => metricValue(await metrics(node), 'tessera_revocation_signals_total', { source: 'redis' }) ?? 0;
    const before = await Promise.all([redisSignals(n2), redisSignals(n3)]);
    const ownBefore = await redisSignals(n1);
    const last = await startSession(n1, gateway, userId);
    expect((await admin(n1, 'DELETE', `/sessions/${last.handle}`)).status).toBe(204);
    await Promise.all([on2.waitForSid(last.handle), on3.waitForSid(last.handle)]);
    await waitFor('a Redis wake-up on nodes 2 and 3', async () => {
      const now = await Promise.all([redisSignals(n2), redisSignals(n3)]);
      return now[0]! > before[0]! && now[1]! > before[1]! ? true : undefined;
    }, 20_000);
    // Then one on node 2: Redis delivers node 1's own message to node 1 before this one (it
    // handled that PUBLISH first), so once node 1 counts this wake-up it has skipped its own.
    const fromNode2 = await startSession(n2, gateway, userId);
    expect((await admin(n2, 'DELETE', `/sessions/${fromNode2.handle}`)).status).toBe(204);
    await waitFor('node 2\'s Redis wake-up on node 1', async () => ((await redisSignals(n1)) > ownBefore ? true : undefined), 20_000);
    expect(await redisSignals(n1)).toBe(ownBefore + 1);
    on2.close();
    on3.close();
  }, 90_000);

  it('the LISTEN connections cut by PostgreSQL while Redis is down: the nodes reconnect and read what they missed', async () => {
    await redis.kill();
    const after = await head();
    const on2 = await follow(n2, after);
    const on3 = await follow(n3, after);
    const up = async (node: NodeProcess, source: string) => metricValue(await metrics(node), 'tessera_revocation_signal_up', { source });
    for (const node of [n2, n3]) await waitFor(`redis down on ${node.name}`, async () => ((await up(node, 'redis')) === 0 ? true : undefined));

    // The LISTEN backends of nodes 2 and 3 (told apart from other test runs' by the client
    // port each node holds), terminated as a failover or an idle-session killer would.
    const pgPort = Number(new URL(schema.url).port || 5432);
    const backends = (await db.query<{ pid: number; client_port: number }>("SELECT pid, client_port FROM pg_stat_activity WHERE query = 'LISTEN tessera_revocations' AND datname = current_database()")).rows;
    const ours = backends.filter((b) => [n2.pid, n3.pid].includes(pidOfPeer(b.client_port, pgPort, [n2.pid, n3.pid]) ?? -1));
    expect(ours).toHaveLength(2);
    const session = await startSession(n1, gateway, userId);
    secrets.push(session.token);
    await db.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [ours.map((b) => b.pid)]);
    // Ended while nodes 2 and 3 may not be listening: no NOTIFY reaches them, no Redis.
    expect((await admin(n1, 'DELETE', `/sessions/${session.handle}`)).status).toBe(204);
    const [e2, e3] = await Promise.all([on2.waitForSid(session.handle, 10_000), on3.waitForSid(session.handle, 10_000)]);
    expect([e2.cursor, e3.cursor]).toEqual([after + 1, after + 1]);
    for (const node of [n2, n3]) {
      await waitFor(`LISTEN back on ${node.name}`, async () => ((await up(node, 'postgres')) === 1 ? true : undefined));
      expect(node.lines.some((l) => l.includes('revocation LISTEN connection lost'))).toBe(true);
    }
    // And NOTIFY wakes them again.
    const next = await startSession(n1, gateway, userId);
    secrets.push(next.token);
    expect((await admin(n1, 'DELETE', `/sessions/${next.handle}`)).status).toBe(204);
    await Promise.all([on2.waitForSid(next.handle), on3.waitForSid(next.handle)]);
    expect(on2.events.map((e) => e.cursor)).toEqual([after + 1, after + 2]);
    expect(on3.events.map((e) => e.cursor)).toEqual([after + 1, after + 2]);
    on2.close();
    on3.close();
    await redis.start();
    for (const node of nodes) await waitFor(`redis back on ${node.name}`, async () => ((await up(node, 'redis')) === 1 ? true : undefined), 15_000);
  }, 60_000);

  it('SIGKILL of node 3 while it delivers, during a bulk revocation on node 2: every revocation logged once with gapless cursors, every delivery made by the survivors', async () => {
    const sessions = await mapLimit(Array.from({ length: 600 }), 8, () => startSession(n1, relyingParty, userId));
    secrets.push(...sessions.map((s) => s.token));
    const handles = sessions.map((s) => s.handle);
    const first = handles.slice(0, 100);
    const bulk = handles.slice(100);

    // Node 3 is the slow receiver's unlucky sender: its attempts are held open (until its own
    // 2 s timeout), so that it surely has deliveries in flight when it is killed.
    receiver.holdFrom = n3.pid;
    const firstRevoke = await admin<{ revoked: string[] }>(n1, 'POST', '/sessions/revoke', { handles: first });
    expect(firstRevoke.body.revoked).toHaveLength(100);
    await waitFor('a delivery in flight from node 3', () => receiver.requests.find((r) => r.pid === n3.pid && r.state === 'open'), 15_000);
    // The kill is sent while node 2's bulk revoke request is on its way.
    const bulkRevoke = admin<{ revoked: string[] }>(n2, 'POST', '/sessions/revoke', { handles: bulk });
    const cutOff = receiver.requests.filter((r) => r.pid === n3.pid && r.state === 'open');
    const killed = await n3.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    const bulkAnswer = await bulkRevoke;
    expect(bulkAnswer.status).toBe(200);
    expect(bulkAnswer.body.revoked).toHaveLength(500);
    expect(cutOff.length).toBeGreaterThan(0);
    await waitFor('the receiver to see node 3\'s connections drop', () => (cutOff.every((r) => r.state === 'aborted') ? true : undefined));

    await waitFor('every delivery of the 600 ends to be delivered', async () => {
      const { rows } = await db.query<{ status: string; n: string }>('SELECT status, COUNT(*) AS n FROM deliveries WHERE client_id = $1 GROUP BY status', [relyingParty.clientId]);
      const counts = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      if ((counts.dead ?? 0) > 0) throw new Error(`dead deliveries: ${JSON.stringify(counts)}`);
      return counts.delivered === 600 && !counts.pending ? counts : undefined;
    }, 90_000, 200);

    // The log: gapless from 1, each of the 600 sessions exactly once.
    const log = await readLog(n1, gateway);
    expect(log.map((e) => e.cursor)).toEqual(log.map((_, i) => i + 1));
    expect(Number(log.at(-1)!.cursor)).toBe(await head());
    const counts = new Map<string, number>();
    for (const e of log) counts.set(e.sid, (counts.get(e.sid) ?? 0) + 1);
    expect(handles.filter((h) => counts.get(h) !== 1)).toEqual([]);

    // The receiver: every session's logout arrived; what node 3 had in flight was delivered
    // again by a survivor; no two attempts for one session were ever in flight at once.
    const answered = new Map<string, number[]>();
    for (const r of receiver.requests) if (r.state === 'answered') answered.set(r.sid, [...(answered.get(r.sid) ?? []), r.pid ?? -1]);
    expect(handles.filter((h) => !answered.has(h))).toEqual([]);
    for (const r of cutOff) expect(answered.get(r.sid)!.some((pid) => pid === n1.pid || pid === n2.pid)).toBe(true);
    expect(receiver.overlaps).toBe(0);
    nodes = nodes.filter((n) => n !== n3);
    receiver.holdFrom = null;
  }, 150_000);

  it('SIGTERM of node 2 while it delivers: its in-flight deliveries finish and are recorded, it exits 0 holding no lease, node 1 delivers the rest', async () => {
    // Long enough to read the lease owner of an attempt while it is in flight, also when this
    // process (which hosts the receiver) stalls; 1 s inside the 2 s attempt timeout either way.
    receiver.delayMs = 1_000;
    const sessions = await mapLimit(Array.from({ length: 60 }), 8, () => startSession(n1, relyingParty, userId));
    secrets.push(...sessions.map((s) => s.token));
    const handles = sessions.map((s) => s.handle);
    const revoke = await admin<{ revoked: string[] }>(n1, 'POST', '/sessions/revoke', { handles });
    expect(revoke.body.revoked).toHaveLength(60);
    const first = await waitFor('a delivery in flight from node 2', () => receiver.requests.find((r) => r.pid === n2.pid && r.state === 'open' && handles.includes(r.sid)), 15_000);
    const lease = await db.query<{ lease_owner: string }>(
      "SELECT d.lease_owner FROM deliveries d JOIN delivery_sessions s ON s.delivery_id = d.id WHERE s.handle = $1 AND d.client_id = $2 AND d.status = 'pending'",
      [first.sid, relyingParty.clientId],
    );
    const owner2 = lease.rows[0]?.lease_owner;
    expect(owner2).toBeTruthy();
    const stopped = n2.stop('SIGTERM');
    const open = receiver.requests.filter((r) => r.pid === n2.pid && r.state === 'open');
    expect(open.length).toBeGreaterThan(0);
    expect(await stopped).toEqual({ code: 0, signal: null });
    nodes = nodes.filter((n) => n !== n2);
    expect(n2.lines.some((l) => l.includes('SIGTERM received'))).toBe(true);

    // Each attempt node 2 had in flight was answered (not cut off) and recorded by node 2:
    // delivered after exactly one attempt, not sent again by node 1.
    expect(open.filter((r) => r.state !== 'answered')).toEqual([]);
    for (const r of open) {
      const { rows } = await db.query<{ status: string; attempts: number }>(
        'SELECT d.status, d.attempts FROM deliveries d JOIN delivery_sessions s ON s.delivery_id = d.id WHERE s.handle = $1 AND d.client_id = $2',
        [r.sid, relyingParty.clientId],
      );
      expect(rows).toEqual([{ status: 'delivered', attempts: 1 }]);
      expect(receiver.requests.filter((q) => q.sid === r.sid)).toHaveLength(1);
    }
    const held = await db.query<{ n: string }>('SELECT COUNT(*) AS n FROM deliveries WHERE lease_owner = $1', [owner2]);
    expect(Number(held.rows[0]!.n)).toBe(0);

    await waitFor('node 1 to deliver the rest', async () => {
      const { rows } = await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM deliveries WHERE client_id = $1 AND status <> 'delivered'", [relyingParty.clientId]);
      return Number(rows[0]!.n) === 0 ? true : undefined;
    }, 60_000, 200);
    const answered = new Set(receiver.requests.filter((r) => r.state === 'answered').map((r) => r.sid));
    expect(handles.filter((h) => !answered.has(h))).toEqual([]);
    expect(receiver.overlaps).toBe(0);
  }, 90_000);
});
