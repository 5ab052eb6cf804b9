import { Worker } from 'node:worker_threads';

/**
 * The worker's code (CommonJS, run from a string so that it works from the TypeScript
 * sources under the tests as well as from dist): its own connection to the same database
 * file, and a PASSIVE checkpoint every `intervalMs`. PASSIVE copies what it can from the WAL
 * into the database without waiting for (or blocking) the server's connection.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createRequire } = require('node:module');
const Database = createRequire(workerData.from)('better-sqlite3');
const db = new Database(workerData.filename);
db.pragma('busy_timeout = 5000');
const checkpoint = () => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ busy: result.busy, log: result.log, checkpointed: result.checkpointed });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'stop') {
    clearInterval(timer);
    checkpoint();
    db.close();
    parentPort.close();
  }
});
`;

/** What one checkpoint did: WAL frames in the log, and how many of them are in the database now. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

/**
 * WAL checkpoints of a SQLite file, in a worker thread instead of the committing connection.
 *
 * SQLite checkpoints automatically after the commit that takes the WAL past 1,000 pages, in
 * that commit, on the connection that made it: with better-sqlite3 that is the server's event
 * loop, which then waits for the copy and its fsync. On the benchmark machine those waits
 * were the tail of every latency measured on SQLite (Shared Signals pushes at 100
 * revocations a second: p99 41–45 ms with them, 22–30 ms without). The server's connection
 * turns automatic checkpoints off and this worker makes them, on a connection of its own,
 * beside the event loop.
 *
 * @example
 * ```ts
 * const checkpointer = startCheckpointer('/var/lib/tessera/tessera.db', { intervalMs: 1000 });
 * await checkpointer.stop(); // one last checkpoint, then the worker ends
 * ```
 */
export function startCheckpointer(filename: string, options: { intervalMs: number; onCheckpoint?: (result: CheckpointResult) => void; onError?: (message: string) => void }) {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { filename, intervalMs: options.intervalMs, from: import.meta.url } });
  // It never keeps a process alive on its own (the CLI opens the store and exits).
  worker.unref();
  worker.on('message', (message: CheckpointResult & { error?: string }) => {
    if (message.error !== undefined) options.onError?.(message.error);
    else options.onCheckpoint?.(message);
  });
  // A worker that fails to start (or dies) leaves the WAL to grow until the next start, when
  // the server's connection checkpoints on close; never a reason to stop the server.
  worker.on('error', (error) => options.onError?.(error.message));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    /** Makes one last checkpoint and ends the worker. */
    async stop(): Promise<void> {
      // Held (ref) while it finishes: a process whose only work left is this wait (the CLI
      // closing its store) must not exit under it, which Node reports as exit code 13 (an
      // unsettled top-level await).
      worker.ref();
      worker.postMessage('stop');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
      clearTimeout(timer);
      await worker.terminate();
    },
  };
}
