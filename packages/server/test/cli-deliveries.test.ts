import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthority, loadConfig, systemClock, type Authority, type Store } from '@tessera/core';
import { createSqliteStore } from '@tessera/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildServer } from '../src/app.js';
import { expectFailure, runCliCaptured, type Run } from './cli-support.js';

/**
 * `tessera deliveries list | retry`, run in process through runCli against a SQLite file in
 * a temp dir (as in cli.test.ts). Deliveries are planned by a real revocation; the worker's
 * outcomes are recorded through the store port as the worker records them, and a retried
 * delivery is then sent by a real worker to a local receiver.
 */

let dir: string;
let env: Record<string, string>;
let opened: Array<{ close(): Promise<void> }>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-cli-deliveries-'));
  env = { TESSERA_DATA_DIR: dir, TESSERA_LOG_LEVEL: 'silent' };
  opened = [];
});
afterEach(async () => {
  for (const thing of opened.reverse()) await thing.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[]): Promise<Run> {
  return runCliCaptured(argv, env);
}

function openCore(): { authority: Authority; store: Store } {
  const store = createSqliteStore(join(dir, 'tessera.db'));
  opened.push(store);
  return { store, authority: createAuthority({ store, config: loadConfig({ env }), clock: systemClock }) };
}

async function ok(argv: string[]): Promise<string> {
  const run = await cli(argv);
  expect(run.code, run.stderr).toBe(0);
  return run.stdout;
}

interface DeliveryJson {
  id: number;
  client_id: string;
  channel: string;
  status: string;
  scope: string;
  sid: string | null;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
}

/**
 * alice's session joined by `forum` and `site` (back-channel URIs) and `wiki` (no push
 * channel), ended with `tessera sessions revoke`; then, as the worker would record it, the
 * forum's notice arrived (204) and the site's was given up (connection refused).
 */
async function endedSession(siteUri = 'https://site.example/bcl') {
  const userId = (JSON.parse(await ok(['users', 'create', '--username', 'alice', '--password', 'correct horse battery', '--json'])) as { user: { id: string } }).user.id;
  await ok(['apps', 'create', '--name', 'Forum', '--client-id', 'forum', '--backchannel-uri', 'https://forum.example/bcl']);
  await ok(['apps', 'create', '--name', 'Site', '--client-id', 'site', '--backchannel-uri', siteUri]);
  await ok(['apps', 'create', '--name', 'Wiki', '--client-id', 'wiki']);
  const { authority, store } = openCore();
  const user = await authority.users.getUser(userId);
  const { session } = await authority.sessions.startSession(user, { ip: '192.0.2.1', userAgent: 'laptop' }, 'forum');
  for (const clientId of ['site', 'wiki']) expect(await store.joinSession(session.handle, clientId, Date.now())).toBe(true);
  await ok(['sessions', 'revoke', '--handle', session.handle]);

  const planned = await store.listDeliveriesBySession(session.handle);
  expect(planned.map((d) => [d.clientId, d.status]).sort()).toEqual([['forum', 'pending'], ['site', 'pending']]);
  const now = Date.now();
  const claimed = await store.claimDeliveries('test-worker', now + 1, now + 60_000, 10);
  expect(claimed).toHaveLength(2);
  const byApp = Object.fromEntries(claimed.map((d) => [d.clientId, d]));
  expect(await store.completeDelivery(byApp.forum!.id, 'test-worker', { status: 'delivered', at: now + 2, httpStatus: 204 })).toBe(true);
  expect(await store.completeDelivery(byApp.site!.id, 'test-worker', { status: 'dead', at: now + 3, nextAttemptAt: now + 3, error: 'connect ECONNREFUSED', httpStatus: null })).toBe(true);
  return { userId, handle: session.handle, forumId: byApp.forum!.id, siteId: byApp.site!.id, authority, store };
}

describe('tessera deliveries list', () => {
  it('--session shows each app\'s delivery with its status and outcome, and the apps told nothing', async () => {
    const { handle, userId, forumId, siteId } = await endedSession();
    const out = await ok(['deliveries', 'list', '--session', handle]);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^Session ${handle} of user ${userId}: ended \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ \\(admin_revoked\\)\\.$`));
    expect(lines[1]).toMatch(/^ID\s+APP\s+CHANNEL\s+STATUS\s+SESSION\s+REASON\s+ATTEMPTS\s+CREATED\s+OUTCOME$/);
    expect(lines.find((l) => l.startsWith(`${forumId} `))).toMatch(new RegExp(`^${forumId}\\s+forum\\s+backchannel\\s+delivered\\s+${handle}\\s+admin_revoked\\s+1\\s+\\S+ \\S+\\s+delivered \\S+ \\S+ \\(HTTP 204\\)$`));
    expect(lines.find((l) => l.startsWith(`${siteId} `))).toMatch(new RegExp(`^${siteId}\\s+site\\s+backchannel\\s+dead\\s+${handle}\\s+admin_revoked\\s+1\\s+\\S+ \\S+\\s+connect ECONNREFUSED$`));
    expect(lines.at(-1)).toBe('Apps without a back-channel or webhook (they see the end at their next check): wiki');
  });

  it('--session --json has the admin API\'s shape; --status and --app filter it', async () => {
    const { handle } = await endedSession();
    const body = JSON.parse(await ok(['deliveries', 'list', '--session', handle, '--json'])) as { handle: string; active: boolean; ended_at: string | null; deliveries: DeliveryJson[]; pull_only: string[] };
    expect(body).toMatchObject({ handle, active: false, pull_only: ['wiki'] });
    expect(body.ended_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(body.deliveries.map((d) => [d.client_id, d.channel, d.status, d.scope, d.sid])).toEqual(
      expect.arrayContaining([['forum', 'backchannel', 'delivered', 'session', handle], ['site', 'backchannel', 'dead', 'session', handle]]),
    );
    expect(body.deliveries).toHaveLength(2);
    const dead = JSON.parse(await ok(['deliveries', 'list', '--session', handle, '--status', 'dead', '--json'])) as { deliveries: DeliveryJson[] };
    expect(dead.deliveries.map((d) => [d.client_id, d.last_error])).toEqual([['site', 'connect ECONNREFUSED']]);
    const forum = JSON.parse(await ok(['deliveries', 'list', '--session', handle, '--app', 'forum', '--json'])) as { deliveries: DeliveryJson[] };
    expect(forum.deliveries.map((d) => [d.client_id, d.status, d.last_status])).toEqual([['forum', 'delivered', 204]]);
    expect((await ok(['deliveries', 'list', '--session', handle, '--app', 'forum', '--status', 'dead'])).trimEnd().split('\n')).toContain('No logout deliveries match.');
  });

  it('without --session lists the outbox newest first with counts; filters by status and app', async () => {
    const { forumId, siteId } = await endedSession();
    const out = await ok(['deliveries', 'list']);
    expect(out).toMatch(/^ID\s+APP\s+CHANNEL/);
    expect(out.trimEnd().split('\n').at(-1)).toBe('In the outbox: 0 pending, 1 delivered, 1 dead.');
    const all = JSON.parse(await ok(['deliveries', 'list', '--json'])) as { deliveries: DeliveryJson[]; counts: Record<string, number> };
    expect(all.counts).toEqual({ pending: 0, delivered: 1, dead: 1 });
    expect(all.deliveries.map((d) => d.id).sort()).toEqual([forumId, siteId].sort());
    const dead = JSON.parse(await ok(['deliveries', 'list', '--status', 'dead', '--json'])) as { deliveries: DeliveryJson[] };
    expect(dead.deliveries.map((d) => d.id)).toEqual([siteId]);
    const forum = JSON.parse(await ok(['deliveries', 'list', '--app', 'forum', '--json'])) as { deliveries: DeliveryJson[] };
    expect(forum.deliveries.map((d) => d.id)).toEqual([forumId]);
    const one = JSON.parse(await ok(['deliveries', 'list', '--limit', '1', '--json'])) as { deliveries: DeliveryJson[] };
    expect(one.deliveries).toHaveLength(1);
    expect(await ok(['deliveries', 'list', '--status', 'pending'])).toBe('No logout deliveries match.\n');
  });

  it('an active session has none yet; an unknown session is an error (exit 1)', async () => {
    await ok(['apps', 'create', '--name', 'Forum', '--client-id', 'forum', '--backchannel-uri', 'https://forum.example/bcl']);
    const userId = (JSON.parse(await ok(['users', 'create', '--username', 'bob', '--password', 'correct horse battery', '--json'])) as { user: { id: string } }).user.id;
    const { authority } = openCore();
    const { session } = await authority.sessions.startSession(await authority.users.getUser(userId), { ip: null, userAgent: null }, 'forum');
    const out = await ok(['deliveries', 'list', '--session', session.handle]);
    expect(out).toContain(': active.');
    expect(out).toContain('No logout deliveries yet: the session has not ended.');
    expectFailure(await cli(['deliveries', 'list', '--session', 'ses_nope']), 1, 'tessera: deliveries list: no such session "ses_nope" (SESSION_NOT_FOUND)');
  });

  it('bad values are usage errors (exit 2)', async () => {
    expectFailure(await cli(['deliveries', 'list', '--status', 'lost']), 2, 'tessera: deliveries list: --status "lost": must be pending, delivered or dead (see: tessera deliveries list --help)');
    expectFailure(await cli(['deliveries', 'list', '--limit', '0']), 2, /--limit "0": must be a whole number from 1 to 1000/);
    expectFailure(await cli(['deliveries', 'list', '--limit', '1001']), 2, /--limit "1001"/);
    expectFailure(await cli(['deliveries', 'list', '--session', 'ses_x', '--limit', '5']), 2, /--limit goes without --session/);
    expectFailure(await cli(['deliveries', 'retry']), 2, 'tessera: deliveries retry: missing --id (see: tessera deliveries retry --help)');
    expectFailure(await cli(['deliveries', 'retry', '--id', 'abc']), 2, /--id "abc": must be a whole number/);
    expectFailure(await cli(['deliveries', 'frob']), 2, 'tessera: deliveries: unknown command "frob" (see: tessera deliveries --help)');
  });

  it('is in the help', async () => {
    const help = await ok(['--help']);
    expect(help).toContain('  deliveries list ');
    expect(help).toContain('  deliveries retry ');
    const list = await ok(['deliveries', 'list', '--help']);
    for (const option of ['--session H', '--status STATUS', '--app CLIENT_ID', '--limit N', '--json']) expect(list).toContain(option);
    expect(await ok(['deliveries', 'retry', '--help'])).toMatch(/^Usage: tessera deliveries retry --id N \[options\]/);
  });
});

describe('tessera deliveries retry', () => {
  it('puts a dead delivery back to pending with a fresh horizon and audits it; a delivered or unknown one is refused', async () => {
    const { forumId, siteId, store } = await endedSession();
    const before = (await store.findDelivery(siteId))!;
    const run = await cli(['deliveries', 'retry', '--id', String(siteId)]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`Delivery ${siteId} to site (backchannel) is pending again; it is sent at the server's next outbox poll.\n`);
    const after = (await store.findDelivery(siteId))!;
    expect(after.status).toBe('pending');
    expect(after.horizonAt).toBeGreaterThan(before.horizonAt);
    expect(after.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    const audit = await store.listAudit({ limit: 10 });
    expect(audit.find((e) => e.action === 'delivery.retried')).toMatchObject({ actor: 'admin', clientId: 'site', details: { delivery: siteId } });

    expectFailure(await cli(['deliveries', 'retry', '--id', String(forumId)]), 1, `tessera: deliveries retry: no delivery ${forumId} to retry (unknown, or already delivered) (DELIVERY_NOT_FOUND)`);
    expectFailure(await cli(['deliveries', 'retry', '--id', '999999']), 1, /no delivery 999999 to retry .*\(DELIVERY_NOT_FOUND\)$/);
    expect((await store.findDelivery(forumId))!.status).toBe('delivered');
  });

  it('--json prints the delivery; a running worker then delivers it', async () => {
    // The site's receiver: a local endpoint that answers 204 and keeps what it got.
    const received: string[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    opened.push({ close: () => new Promise<void>((resolve) => receiver.close(() => resolve())) });
    const port = (receiver.address() as { port: number }).port;
    const { siteId, store } = await endedSession(`http://127.0.0.1:${port}/backchannel-logout`);

    const run = await cli(['deliveries', 'retry', '--id', String(siteId), '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ delivery: { id: siteId, client_id: 'site', status: 'pending' } });

    // A server node over the same database picks it up.
    const { app } = await buildServer({ config: loadConfig({ env: { ...env, TESSERA_COOKIE_SECURE: 'false' } }), store, startWorker: true });
    opened.push({ close: () => app.close() });
    const deadline = Date.now() + 10_000;
    while ((await store.findDelivery(siteId))!.status !== 'delivered' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect((await store.findDelivery(siteId))).toMatchObject({ status: 'delivered', lastStatus: 204, attempts: 2 });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatch(/^logout_token=[\w-]+\.[\w-]+\.[\w-]+$/);
    const list = JSON.parse(await ok(['deliveries', 'list', '--status', 'dead', '--json'])) as { counts: Record<string, number> };
    expect(list.counts).toEqual({ pending: 0, delivered: 2, dead: 0 });
  });
});
