// Pieces of the multi-node benchmarks: a redis-server of the benchmark's own, Tessera nodes
// as `node packages/server/dist/cli.js start` processes over one PostgreSQL schema, plain SSE
// followers of the revocation stream, and CPU readings from /proc. Every process started
// here is stopped by its PID.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { withDefaultUser } from '../../packages/store/dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(root, 'packages', 'server', 'dist', 'cli.js');

/** Wall-clock milliseconds with sub-millisecond resolution. */
export const nowMs = () => performance.timeOrigin + performance.now();

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Stops a child by its PID: SIGTERM, then SIGKILL after 10 s. */
export async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = exited(child);
  const timer = setTimeout(() => process.kill(child.pid, 'SIGKILL'), 10_000);
  process.kill(child.pid, 'SIGTERM');
  await gone;
  clearTimeout(timer);
}

/** Whether `redis-server` can be run here. */
export function hasRedisServer() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      text += chunk;
      if (text.includes('\r\n')) done(text.startsWith('+PONG'));
    });
  });
}

/** Starts redis-server on a free port, persistence off (pub/sub needs none). */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    version: spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    async stop() {
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A schema of its own in the PostgreSQL at `base`, with a URL whose connections use it. */
export async function createSchema(given, prefix = 'bench') {
  // As psql does: the OS user when the URL names none ($USER is unset in many containers).
  const base = withDefaultUser(given);
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const client = new pg.Client({ connectionString: base });
  await client.connect();
  await client.query(`CREATE SCHEMA ${name}`);
  const version = (await client.query('SHOW server_version')).rows[0].server_version;
  await client.end();
  const url = new URL(base);
  url.searchParams.set('options', `${url.searchParams.get('options') ? `${url.searchParams.get('options')} ` : ''}-c search_path=${name}`);
  return {
    name,
    url: url.toString(),
    version,
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      await c.end();
    },
  };
}

/** Writes a JSON config file; returns its path and a remover. */
export function configFile(config) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-config-'));
  const path = join(dir, 'tessera.json');
  writeFileSync(path, JSON.stringify(config));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts one `tessera start` process with only the given TESSERA_* settings (none inherited)
 * and resolves with { url, pid, child, stop } once it listens.
 */
export async function startNode(env) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -b; npm run bench does it)`);
  const port = await freePort();
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TESSERA_')));
  const child = spawn(process.execPath, [CLI, 'start'], { env: { ...base, TESSERA_PORT: String(port), TESSERA_HOST: '127.0.0.1', TESSERA_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not listen within 30 s:\n${lines.join('\n')}`)), 30_000);
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        for (const line of chunk.split('\n')) {
          if (line && lines.length < 200) lines.push(line);
          const match = /Tessera is running at (http:\/\/\S+)/.exec(line);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        }
      });
    }
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code} before listening:\n${lines.join('\n')}`));
    });
  });
  return { url, pid: child.pid, child, lines, stop: () => stopProcess(child) };
}

/**
 * Starts `count` nodes at once on one database (and Redis when `redisUrl` is given), all
 * with the same public issuer, as behind a load balancer.
 */
export async function startCluster({ count, databaseUrl, redisUrl = null, adminToken, config = {} }) {
  const file = configFile(config);
  const env = {
    TESSERA_DATABASE_URL: databaseUrl,
    TESSERA_ADMIN_TOKEN: adminToken,
    TESSERA_ISSUER: 'http://localhost',
    TESSERA_COOKIE_SECURE: 'false',
    TESSERA_RATE_LIMIT: 'false',
    TESSERA_CONFIG: file.path,
    ...(redisUrl ? { TESSERA_REDIS_URL: redisUrl } : {}),
  };
  const started = await Promise.allSettled(Array.from({ length: count }, () => startNode(env)));
  const nodes = started.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.stop()));
    file.remove();
    throw failed.reason;
  }
  return {
    nodes,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      file.remove();
    },
  };
}

/** A JSON request; throws unless the status is `expect`. */
export async function call(url, { method = 'GET', headers = {}, json, form, expect = 200 } = {}) {
  const h = { ...headers };
  let body;
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  const response = await fetch(url, { method, headers: h, body });
  const text = await response.text();
  if (response.status !== expect) throw new Error(`${method} ${url}: expected ${expect}, got ${response.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

/** Registers an app; returns { clientId, basic }. */
export async function registerApp(node, adminToken, body) {
  const created = await call(`${node.url}/admin/api/apps`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` }, json: body, expect: 201 });
  const clientId = created.app.client_id;
  return { clientId, basic: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(created.client_secret)}`).toString('base64')}` };
}

/** Runs `fn` over `items`, at most `limit` at once. */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/**
 * A plain SSE follower of `GET /v1/revocations/stream`: notes the wall-clock time at which
 * each session's end arrived. `waitFor(sid)` resolves with that time.
 */
export async function follow(url, basic, after) {
  const abort = new AbortController();
  const response = await fetch(`${url}/v1/revocations/stream?after=${after}`, { headers: { authorization: basic }, signal: abort.signal });
  if (response.status !== 200) throw new Error(`stream answered ${response.status}`);
  const seen = new Map();
  const waiting = new Map();
  let lastCursor = after;
  let gaps = 0;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body) {
        const at = nowMs();
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          const event = JSON.parse(data.slice(6));
          if (event.cursor !== lastCursor + 1) gaps += 1;
          lastCursor = event.cursor;
          seen.set(event.sid, at);
          waiting.get(event.sid)?.(at);
          waiting.delete(event.sid);
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    get gaps() {
      return gaps;
    },
    waitFor(sid, timeoutMs = 5_000) {
      if (seen.has(sid)) return Promise.resolve(seen.get(sid));
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(sid);
          resolve(null);
        }, timeoutMs);
        waiting.set(sid, (at) => {
          clearTimeout(timer);
          resolve(at);
        });
      });
    },
    close: () => abort.abort(),
  };
}

// USER_HZ, the unit of CPU times in /proc: 100 on every common Linux.
const TICKS = 100;

/** CPU seconds (user + system) of one process so far; null when unreadable. */
export function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return null;
  }
}

/** CPU seconds of every process whose command name is `name` (e.g. all PostgreSQL backends, whoever they serve). */
export function cpuSecondsByName(name) {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== name) continue;
    } catch {
      continue;
    }
    total += cpuSeconds(entry) ?? 0;
  }
  return total;
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
export function machineTicks() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + (fields[4] ?? 0);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
