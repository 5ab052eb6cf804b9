// `npm run demo`: install what is missing, build, then run Tessera (port 4000, or
// TESSERA_PORT) with the example site (4001, or TESSERA_DEMO_SITE_PORT) and forum (4002, or
// TESSERA_DEMO_FORUM_PORT), and print how to watch a single logout reach both apps. Data
// lives in ./data/demo, apart from `npm start`'s.
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, ensureInstalled } from './ensure.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

try {
  ensureInstalled();
  ensureBuilt();
} catch {
  console.error('[tessera] install or build failed (see above); not starting the demo.');
  process.exit(1);
}

// Imported only now: it loads the built packages.
const { startDemo, demoInstructions, demoPortsFromEnv, portInUseMessage } = await import('./demo-setup.mjs');

const dataDir = join(root, 'data', 'demo');
let ports;
try {
  ports = demoPortsFromEnv(process.env);
} catch (error) {
  console.error(`[tessera] ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
let demo;
try {
  demo = await startDemo({ ...ports, dataDir });
} catch (error) {
  console.error(portInUseMessage(error, ports) ?? `[tessera] the demo could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
for (const line of demoInstructions(demo, { dataDirShown: relative(root, dataDir) })) console.log(line);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await demo.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
