import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { ConfigError, loadConfig, type Config } from '@tessera/core';
import { openStore } from '@tessera/store';
import { buildServer } from './app.js';
import { createLoggerOptions } from './redaction.js';
import { startRetention, startSweeper } from './sweeper.js';

/**
 * Reads the configuration: the JSON file named by `TESSERA_CONFIG` (or `--config`), then
 * the environment, which wins.
 */
export function readConfig(env: Record<string, string | undefined>, configPath?: string): Config {
  const path = configPath ?? env.TESSERA_CONFIG;
  let file: unknown = {};
  if (path) {
    try {
      file = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new ConfigError('(file)', `cannot read ${path}: ${(error as Error).message}`);
    }
  }
  return loadConfig({ env, file });
}

/** A free TCP port on `host`, found by binding port 0 and releasing it. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Port 0 ("any free port", for tests and scripts) with a derived issuer would put `:0` into
 * every logout URL and redirect. Pick the port first, so the issuer names the real one.
 */
async function resolvePortZero(config: Config): Promise<Config> {
  if (config.port !== 0) return config;
  const derived = new URL(config.issuer).port === '0';
  const port = await freePort(config.host);
  return Object.freeze({ ...config, port, issuer: derived ? config.issuer.replace(/:0$/, `:${port}`) : config.issuer });
}

/** The logger options of a Tessera node: see redaction.ts (one redaction list for every logger). */
export { createLoggerOptions };

/** A running Tessera node. */
export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Opens the store, migrates, bootstraps an admin token if none exists, starts the HTTP
 * server and the expiry sweeper. Prints what a newcomer needs next.
 *
 * @example
 * ```ts
 * const server = await startServer(readConfig(process.env));
 * ```
 */
export async function startServer(config: Config, options: { print?: (line: string) => void; cli?: string } = {}): Promise<RunningServer> {
  config = await resolvePortZero(config);
  const print = options.print ?? ((line: string) => console.log(line));
  // How the hints below spell the CLI: `npm run tessera --` in a checkout, `npx tessera` for
  // an installed package.
  const cli = options.cli ?? 'npm run tessera --';
  const store = openStore(config);
  await store.migrate();
  const { app, authority, metrics } = await buildServer({
    config,
    store,
    logger: createLoggerOptions(config.logLevel),
    startWorker: true,
  });
  let bootstrapToken: string | null = null;
  if (await authority.admin.needsBootstrap()) bootstrapToken = await authority.admin.createAdminToken('bootstrap (created at first start)');
  if (!config.cookie.secure) app.log.warn('cookie.secure is false: session cookies travel without the Secure flag (local http only)');
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const sweeper = startSweeper(authority, config.sweeper.intervalSeconds * 1000, app.log);
  const retention = startRetention(authority, config, app.log, (counts) => metrics.recordPurge(counts));

  // With port 0 the default issuer names port 0; the address actually bound is what works.
  const base = new URL(config.issuer).port === '0' ? url : config.issuer;
  print('');
  print(`Tessera is running at ${url} (store: ${store.kind}${store.kind === 'sqlite' ? `, ${config.dataDir}/tessera.db` : ''})`);
  print(`  Login page:  ${base}/login`);
  print(`  API docs:    ${base}/openapi.json`);
  if (bootstrapToken) {
    print(`  Admin token (shown once, store it now): ${bootstrapToken}`);
  } else {
    print(`  Admin token: use TESSERA_ADMIN_TOKEN, or create one with: ${cli} admin-token create`);
  }
  print(`  Next: create a user and an app, e.g.`);
  print(`    ${cli} users create --username alice --password 'choose-a-long-one'`);
  print(`    ${cli} apps create --name forum --return-url ${base}/login`);
  print('');

  let closing: Promise<void> | null = null;
  return {
    url,
    close() {
      closing ??= (async () => {
        await sweeper.stop();
        await retention.stop();
        await app.close();
        await store.close();
      })();
      return closing;
    },
  };
}
