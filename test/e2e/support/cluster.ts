// Pieces of the multi-node end-to-end test: a Redis server and Tessera nodes as child
// processes (stopped, killed and restarted by their PIDs), an SSE follower of the
// revocation feed, and a slow back-channel logout receiver that knows which node process
// each request came from.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from './free-port.js';

/** How long a node may take to listen before it counts as hung. */
export const NODE_START_TIMEOUT_MS = 120_000;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI_PATH = join(root, 'packages', 'server', 'dist', 'cli.js');

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Resolves when `child` has exited; with its exit code and signal. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Whether `redis-server` can be run here. */
export function redisServerAvailable(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return probe.status === 0;
}

/** Answers true once a Redis at `port` replies to PING. */
function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

/** A redis-server child process of this test, on a port of its own; never the system Redis. */
export interface RedisProcess {
  port: number;
  url: string;
  /** Kills the server (SIGKILL: connections drop as on a crash) and waits for its exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after {@link kill}). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Starts `redis-server` with persistence off on a free port. */
export async function startRedis(): Promise<RedisProcess> {
  const port = await findFreePort();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-redis-'));
  let child: ChildProcess | null = null;
  const start = async () => {
    // Pub/sub only: nothing to persist, so no RDB snapshots and no AOF.
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    child = proc;
    const gone = exited(proc);
    await waitFor(`redis-server on port ${port}`, async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
      return (await pingRedis(port)) ? true : undefined;
    }, 10_000, 50);
    void gone;
  };
  const kill = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = exited(proc);
    process.kill(proc.pid!, 'SIGKILL');
    await gone;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One `tessera start` child process. */
export interface NodeProcess {
  name: string;
  url: string;
  pid: number;
  child: ChildProcess;
  /** Every line the node wrote (stdout and stderr), for diagnosis and log assertions. */
  lines: string[];
  /** Sends `signal` to the node's PID and waits for it to exit. */
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `node packages/server/dist/cli.js start` with `env` (only these TESSERA_*
 * settings: none are inherited from the caller) and resolves when it listens.
 */
export async function startNode(name: string, env: Record<string, string>): Promise<NodeProcess> {
  if (!existsSync(CLI_PATH)) {
    throw new Error(`${CLI_PATH} is missing: the multi-node test runs the built server. Run \`npm test\` (it builds first) or \`npx tsc -b\`.`);
  }
  const port = await findFreePort();
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TESSERA_')));
  const child = spawn(process.execPath, [CLI_PATH, 'start'], {
    env: { ...base, TESSERA_PORT: String(port), TESSERA_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let ready: (url: string) => void;
  const listening = new Promise<string>((resolve) => (ready = resolve));
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      rest += chunk;
      const parts = rest.split('\n');
      rest = parts.pop()!;
      for (const line of parts) {
        if (lines.length < 20_000) lines.push(line);
        const match = /Tessera is running at (http:\/\/\S+)/.exec(line);
        if (match) ready(match[1]!);
      }
    });
  }
  const failed = exited(child).then(({ code, signal }) => {
    throw new Error(`node ${name} exited (code ${code}, signal ${signal}) before listening:\n${lines.slice(-30).join('\n')}`);
  });
  let timer: NodeJS.Timeout | undefined;
  // A bound for a hung node, not an expected speed: on a loaded machine loading the server's
  // modules alone took over 30 s (three nodes start at once).
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`node ${name} did not listen within ${NODE_START_TIMEOUT_MS / 1000} s:\n${lines.slice(-30).join('\n')}`)), NODE_START_TIMEOUT_MS);
  });
  try {
    const url = await Promise.race([listening, failed, timeout]);
    return {
      name,
      url,
      pid: child.pid!,
      child,
      lines,
      async stop(signal) {
        const gone = exited(child);
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
        return gone;
      },
    };
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
    failed.catch(() => undefined);
  }
}

/** Writes a JSON config file in a temp dir; returns its path and a remover. */
export function writeConfigFile(config: Record<string, unknown>): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cluster-'));
  const path = join(dir, 'tessera.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** One event as the SSE stream sends it. */
export interface FeedEvent {
  cursor: number;
  sid: string;
  reason: string;
  receivedAt: number;
}

/** A follower of `GET /v1/revocations/stream` on one node. */
export interface FeedFollower {
  events: FeedEvent[];
  /** Resolves with the event for `sid` once it arrived (or fails after `timeoutMs`). */
  waitForSid(sid: string, timeoutMs?: number): Promise<FeedEvent>;
  /** Resolves once an event with cursor ≥ `cursor` arrived. */
  waitForCursor(cursor: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Opens the revocation stream of `url` as the app with HTTP Basic `basic`, after `after`. */
export async function followFeed(url: string, basic: string, after: number): Promise<FeedFollower> {
  const abort = new AbortController();
  const response = await fetch(`${url}/v1/revocations/stream?after=${after}`, { headers: { authorization: basic, accept: 'text/event-stream' }, signal: abort.signal });
  if (response.status !== 200 || !response.body) throw new Error(`stream on ${url} answered ${response.status}`);
  const events: FeedEvent[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  let failure: Error | null = null;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          const event = JSON.parse(data.slice(6)) as { cursor: number; sid: string; reason: string };
          events.push({ cursor: event.cursor, sid: event.sid, reason: event.reason, receivedAt: performance.now() });
        }
        notify();
      }
    } catch (error) {
      if (!abort.signal.aborted) failure = error as Error;
    }
    failure ??= abort.signal.aborted ? null : new Error(`stream on ${url} ended`);
    notify();
  })();
  const until = <T>(what: string, test: () => T | undefined, timeoutMs: number) => new Promise<T>((resolve, reject) => {
    const check = () => {
      const found = test();
      if (found !== undefined) {
        finish();
        resolve(found);
      } else if (failure) {
        finish();
        reject(failure);
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`no ${what} on ${url} within ${timeoutMs} ms (last cursor seen: ${events.at(-1)?.cursor ?? 'none'})`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });
  return {
    events,
    waitForSid: (sid, timeoutMs = 5_000) => until(`event for ${sid}`, () => events.find((e) => e.sid === sid), timeoutMs),
    waitForCursor: async (cursor, timeoutMs = 10_000) => {
      await until(`cursor ${cursor}`, () => (events.some((e) => e.cursor >= cursor) ? true : undefined), timeoutMs);
    },
    close: () => abort.abort(),
  };
}

/** One back-channel logout request as the receiver saw it. */
export interface ReceivedLogout {
  sid: string;
  /** The PID of the Tessera process that sent it (Linux), else null. */
  pid: number | null;
  startedAt: number;
  /** 'answered' once the 200 was written, 'aborted' when the sender went away first. */
  state: 'open' | 'answered' | 'aborted';
}

/** A back-channel logout endpoint that answers 200 after `delayMs`. */
export interface SlowReceiver {
  url: string;
  requests: ReceivedLogout[];
  /** Requests for one sid that were open at the same time (must stay 0: leases forbid it). */
  readonly overlaps: number;
  /** How long each request is held before the 200 (may be changed between phases). */
  delayMs: number;
  /** Requests from this PID are never answered (they end when the sender goes away). */
  holdFrom: number | null;
  close(): Promise<void>;
}

const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');

/**
 * The PID among `pids` that owns the TCP connection whose local port is `peerPort` and
 * remote port is `ourPort`, read from /proc/net/tcp and each PID's fd table. Linux only.
 */
export function pidOfPeer(peerPort: number, ourPort: number, pids: readonly number[]): number | null {
  let inode: string | undefined;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (f[1]!.endsWith(`:${hexPort(peerPort)}`) && f[2]!.endsWith(`:${hexPort(ourPort)}`)) inode = f[9];
    }
    if (inode) break;
  }
  if (!inode || inode === '0') return null;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return null;
}

function sidOf(logoutToken: string): string {
  const payload = JSON.parse(Buffer.from(logoutToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sid?: string };
  if (typeof payload.sid !== 'string') throw new Error('logout token without sid');
  return payload.sid;
}

/** Starts a slow back-channel logout receiver; `pids()` names the node processes to attribute requests to. */
export async function startSlowReceiver(delayMs: number, pids: () => readonly number[]): Promise<SlowReceiver> {
  const requests: ReceivedLogout[] = [];
  const open = new Map<string, number>();
  const owners = new WeakMap<object, number | null>();
  const state = { overlaps: 0, delayMs, holdFrom: null as number | null };
  let port = 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      let sid: string;
      try {
        sid = sidOf(new URLSearchParams(body).get('logout_token') ?? '');
      } catch {
        res.writeHead(400).end();
        return;
      }
      const socket = req.socket;
      if (!owners.has(socket)) owners.set(socket, pidOfPeer(socket.remotePort ?? 0, port, pids()));
      const entry: ReceivedLogout = { sid, pid: owners.get(socket) ?? null, startedAt: performance.now(), state: 'open' };
      requests.push(entry);
      if ((open.get(sid) ?? 0) > 0) state.overlaps += 1;
      open.set(sid, (open.get(sid) ?? 0) + 1);
      let settled = false;
      const settle = (to: 'answered' | 'aborted') => {
        if (settled) return;
        settled = true;
        entry.state = to;
        open.set(sid, open.get(sid)! - 1);
        clearTimeout(timer);
      };
      const timer = setTimeout(() => {
        if (socket.destroyed) return settle('aborted');
        if (entry.pid !== null && entry.pid === state.holdFrom) return;
        res.writeHead(200).end();
        settle('answered');
      }, state.delayMs);
      // 'close' on the response: after it was written, or when the sender went away first.
      res.once('close', () => settle(res.writableFinished ? 'answered' : 'aborted'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/backchannel`,
    requests,
    get overlaps() {
      return state.overlaps;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    get holdFrom() {
      return state.holdFrom;
    },
    set holdFrom(pid: number | null) {
      state.holdFrom = pid;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Reads one sample of a Prometheus text exposition (`name{labels} value`); undefined when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? '').split(',').filter(Boolean);
    if (wanted.every((w) => have.includes(w))) return Number(match[3]);
  }
  return undefined;
}
