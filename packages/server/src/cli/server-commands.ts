import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createPostgresDriver, createSqliteDriver, migrate } from '@tessera/store';
import { startServer } from '../start.js';
import type { CliIo, Command } from './command.js';

// How long `tessera start` waits for open requests and the store to close after a signal.
const CLOSE_TIMEOUT_MS = 10_000;

/** Resolves with the first SIGINT / SIGTERM. Later signals are swallowed until `release()`. */
function waitForSignal(signals: CliIo['signals']): { received: Promise<NodeJS.Signals>; release(): void } {
  let resolve!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((r) => (resolve = r));
  // The listener stays installed while the server closes: `npm start` and the terminal
  // both deliver Ctrl-C, and a second SIGINT without a listener would kill the process
  // half-way through closing the database.
  const listener = (signal: NodeJS.Signals) => resolve(signal);
  signals.on('SIGINT', listener);
  signals.on('SIGTERM', listener);
  return {
    received,
    release() {
      signals.off('SIGINT', listener);
      signals.off('SIGTERM', listener);
    },
  };
}

/** A database URL without its credentials, for printing. */
function describeDatabase(config: { databaseUrl: string | null; dataDir: string }): string {
  if (!config.databaseUrl) return `sqlite, ${join(config.dataDir, 'tessera.db')}`;
  const url = new URL(config.databaseUrl);
  return `postgres, ${url.host}${url.pathname}`;
}

/**
 * `tessera start` (run the server until SIGINT / SIGTERM) and `tessera migrate` (create or
 * upgrade the schema and say what was applied).
 *
 * @example
 * ```sh
 * TESSERA_DATA_DIR=./data tessera start
 * ```
 */
export const serverCommands: Command[] = [
  {
    path: ['start'],
    summary: 'Run the server (HTTP API, login page, expiry sweeper) until SIGINT or SIGTERM.',
    notes: ['Settings come from TESSERA_* environment variables and --config FILE (see docs/configuration.md).'],
    options: {},
    json: false,
    async run(ctx) {
      const config = ctx.config();
      const stop = waitForSignal(ctx.io.signals);
      try {
        // `npm start` / `npm run tessera` in a checkout run this CLI as the npm script `start` or
        // `tessera`; anything else (npx, a global install, a service) runs the installed bin.
        const inCheckout = ctx.io.env.npm_lifecycle_event === 'start' || ctx.io.env.npm_lifecycle_event === 'tessera';
        const server = await startServer(config, { print: (line) => ctx.out(line), cli: inCheckout ? 'npm run tessera --' : 'npx tessera' });
        const signal = await stop.received;
        ctx.note(`tessera: ${signal} received, closing…`);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS);
          timer.unref();
        });
        const outcome = await Promise.race([server.close().then(() => 'closed' as const), timedOut]);
        clearTimeout(timer);
        if (outcome === 'timeout') {
          ctx.note(`tessera: start: the server did not close within ${CLOSE_TIMEOUT_MS / 1000} s; exiting anyway`);
          return 1;
        }
        ctx.note('tessera: stopped.');
        return 0;
      } finally {
        stop.release();
      }
    },
  },
  {
    path: ['migrate'],
    summary: 'Create or upgrade the database schema (also done by every start).',
    options: {},
    async run(ctx, args) {
      const config = ctx.config();
      // The store's own migrate() reports nothing; the driver-level migrate (the same code)
      // returns the versions it applied, which is what an operator wants to see here.
      if (!config.databaseUrl) mkdirSync(config.dataDir, { recursive: true });
      const driver = config.databaseUrl ? createPostgresDriver(config.databaseUrl, { max: 1 }) : createSqliteDriver(join(config.dataDir, 'tessera.db'));
      let applied: number[];
      try {
        applied = await migrate(driver);
      } finally {
        await driver.close();
      }
      const where = describeDatabase(config);
      if (args.flag('json')) return ctx.json({ database: where, applied });
      ctx.out(applied.length === 0 ? `Schema is up to date (${where}).` : `Applied migration${applied.length === 1 ? '' : 's'} ${applied.join(', ')} (${where}); schema is up to date.`);
    },
  },
];
