// Child processes and HTTP helpers shared by the benchmarks: every server under test runs in
// a process of its own, forked with an IPC channel, and is stopped by its pid.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Forks `script` with an IPC channel and resolves with the child and its first message
 * (which must be an object; `url` is copied out for convenience).
 *
 * @example
 * ```js
 * const { child, url, ready } = await startChild('/abs/bench/servers/bare.mjs', { message: { … } });
 * ```
 */
export function startChild(script, { env, execArgv = [], message, args = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = fork(script, args, { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const onExit = (code) => reject(new Error(`${script} exited with code ${code} before it was ready`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.once('message', (ready) => {
      child.off('exit', onExit);
      if (ready && ready.error) {
        child.kill('SIGTERM');
        reject(new Error(`${script}: ${ready.error}`));
        return;
      }
      resolve({ child, url: ready?.url, ready });
    });
    if (message) child.send(message);
  });
}

/** Stops a child started by {@link startChild}: SIGTERM, then SIGKILL if it lingers. */
export function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Sends `message` to a child and resolves with its next message of type `replyType`.
 *
 * @example
 * ```js
 * const counts = await ask(child, { type: 'report' }, 'report');
 * ```
 */
export function ask(child, message, replyType, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no '${replyType}' answer from pid ${child.pid} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m) => {
      if (!m || m.type !== replyType) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      if (m.error) reject(new Error(m.error));
      else resolve(m);
    };
    child.on('message', onMessage);
    child.send(message);
  });
}

// USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100 on every common Linux.
const CLOCK_TICKS = 100;

/** CPU seconds (user + system) a process has used so far, from /proc; null elsewhere. */
export function cpuSeconds(pid) {
  try {
    // Fields 14 and 15 of /proc/<pid>/stat, counted after the parenthesised command name.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** A fetch that returns status, headers, bytes and a JSON reader. */
export async function request(url, { method = 'GET', headers = {}, body, form } = {}) {
  let payload;
  const h = { ...headers };
  if (form !== undefined) {
    payload = new URLSearchParams(form).toString();
    h['content-type'] = 'application/x-www-form-urlencoded';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  const response = await fetch(url, { method, headers: h, body: payload });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, bytes, json: () => JSON.parse(bytes.toString('utf8')) };
}

/** Awaits a {@link request} and throws unless it answered `status`. */
export async function expectStatus(what, promise, status) {
  const response = await promise;
  if (response.status !== status) throw new Error(`${what}: expected ${status}, got ${response.status}: ${response.bytes.toString('utf8').slice(0, 500)}`);
  return response;
}

/** Runs `fn(item, index)` over `items` with at most `limit` at a time; resolves with the results in order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Wall-clock time in epoch milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export const wallClockMs = () => performance.timeOrigin + performance.now();

/**
 * In a child: runs `close` once, then exits 0, on SIGTERM (stopChild) or when the parent
 * goes away. Exiting normally (not by the signal) lets `--cpu-prof` write its profile.
 */
export function stopOnParentExit(close) {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
