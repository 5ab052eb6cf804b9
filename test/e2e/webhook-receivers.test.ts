// The webhook receivers docs/api.md shows (Node.js and PHP) run as written against a real
// Tessera: a session end reaches them, they verify the Standard Webhooks signature and answer
// 204 (Tessera records `delivered`), and they refuse a forged or stale request with 401. The
// code is taken from docs/api.md itself, so the documentation cannot drift from what works.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, registerApp, startSession, startTesseraNode, waitFor, type TesseraNode } from './support/backchannel.js';
import { findFreePort } from './support/free-port.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const apiDoc = readFileSync(join(root, 'docs', 'api.md'), 'utf8');

/** The code block that follows `<!-- example:NAME -->` in docs/api.md. */
function example(name: string): string {
  const match = new RegExp(`<!-- example:${name} -->\\s*\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(apiDoc);
  if (!match) throw new Error(`docs/api.md has no example ${name}`);
  return match[1]!;
}

const hasPhp = spawnSync('php', ['--version']).status === 0;
if (!hasPhp) console.warn('webhook-receivers.test.ts: no `php` on PATH, the PHP receiver test is skipped (apt-get install php-cli)');

let tessera: TesseraNode;
let work: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  tessera = await startTesseraNode({ outbox: { backoffBaseMs: 50, backoffMaxMs: 200 } });
  work = mkdtempSync(join(tmpdir(), 'tessera-webhook-receivers-'));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await tessera?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Starts a receiver process on `port`; resolves once it accepts connections. */
async function startReceiver(command: string, args: string[], port: number, secret: string): Promise<{ output: () => string }> {
  const child = spawn(command, args, { cwd: work, env: { ...process.env, TESSERA_WEBHOOK_SECRET: secret, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await waitFor(`the receiver on port ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`receiver exited (${child.exitCode}): ${output}`);
    return fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}' }).then(
      (r) => r.status,
      () => undefined,
    );
  }, { timeoutMs: 30_000 });
  return { output: () => output };
}

/** A Standard Webhooks signature, as Tessera makes it. */
function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

async function checkReceiver(name: string, launch: (port: number, secret: string) => Promise<{ output: () => string }>): Promise<void> {
  const port = await findFreePort();
  const app = await registerApp(tessera.url, { name, trusted: true, connectors: { webhook: { url: `http://127.0.0.1:${port}/tessera-webhook` } } });
  expect(app.webhookSecret).toMatch(/^whsec_/);
  const receiver = await launch(port, app.webhookSecret!);
  const url = `http://127.0.0.1:${port}/tessera-webhook`;

  // Forged, stale and unsigned requests are refused before anything is done with them.
  const body = JSON.stringify({ type: 'session.ended', timestamp: new Date().toISOString(), data: { sub: 'usr_forged', sid: 'ses_forged', sids: ['ses_forged'], reason: 'logout', cursor: 1, client_id: app.clientId } });
  const now = Math.floor(Date.now() / 1000);
  const post = (headers: Record<string, string>) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then((r) => r.status);
  expect(await post({})).toBe(401);
  expect(await post({ 'webhook-id': 'msg_x', 'webhook-timestamp': String(now), 'webhook-signature': sign('whsec_' + Buffer.alloc(24, 7).toString('base64'), 'msg_x', now, body) })).toBe(401);
  expect(await post({ 'webhook-id': 'msg_x', 'webhook-timestamp': String(now - 3600), 'webhook-signature': sign(app.webhookSecret!, 'msg_x', now - 3600, body) })).toBe(401);
  expect(await post({ 'webhook-id': 'msg_y', 'webhook-timestamp': String(now), 'webhook-signature': sign(app.webhookSecret!, 'msg_x', now, body) })).toBe(401);
  expect(receiver.output()).not.toContain('usr_forged');

  // A real end: the receiver verifies Tessera's notice and answers 204 → delivered.
  const userId = await createUser(tessera.url, `${name}-user`);
  const session = await startSession(tessera.url, app, userId);
  const ended = await fetch(`${tessera.url}/api/v1/logout`, { method: 'POST', headers: { authorization: app.basic, 'content-type': 'text/plain' }, body: session.token });
  expect(ended.status).toBe(200);
  const delivery = await waitFor(`the webhook delivery to ${name}`, async () => {
    const { body: answer } = await tessera.admin<{ deliveries: Array<{ channel: string; status: string; last_status: number | null; attempts: number }> }>('GET', `/sessions/${session.handle}/deliveries`);
    const d = answer.deliveries[0];
    return d && d.status !== 'pending' ? d : undefined;
  }, { timeoutMs: 30_000 });
  expect(delivery).toMatchObject({ channel: 'webhook', status: 'delivered', last_status: 204, attempts: 1 });
  await waitFor(`${name} to print the notice`, () => (receiver.output().includes(`session.ended: user ${userId}, sessions ${session.handle} (logout)`) ? true : undefined));
}

describe('the webhook receivers of docs/api.md', () => {
  it('Node.js: verifies and takes a real notice (204, delivered), refuses forged and stale ones (401)', async () => {
    writeFileSync(join(work, 'receiver.mjs'), example('webhook-receiver-node'));
    await checkReceiver('node-receiver', (port, secret) => startReceiver(process.execPath, ['receiver.mjs'], port, secret));
  });

  it.skipIf(!hasPhp)('PHP: verifies and takes a real notice (204, delivered), refuses forged and stale ones (401)', async () => {
    writeFileSync(join(work, 'receiver.php'), example('webhook-receiver-php'));
    await checkReceiver('php-receiver', (port, secret) => startReceiver('php', ['-S', `127.0.0.1:${port}`, 'receiver.php'], port, secret));
  });
});
