// `npm run demo`: install what is missing, build, then run Tessera (port 4000, or
// TESSERA_PORT) with the example site (4001) and forum (4002), and print how to watch a
// single logout reach both apps. Data lives in ./data/demo, apart from `npm start`'s.
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
const { startDemo, demoInstructions } = await import('./demo-setup.mjs');

const dataDir = join(root, 'data', 'demo');
const port = Number(process.env.TESSERA_PORT || 4000);
let demo;
try {
  demo = await startDemo({ port, dataDir });
} catch (error) {
  const inUse = /** @type {{ code?: string }} */ (error).code === 'EADDRINUSE';
  console.error(inUse
    ? `[tessera] a port the demo needs (${port}, 4001 or 4002) is in use: stop what runs there (an \`npm start\`?) or set TESSERA_PORT.`
    : `[tessera] the demo could not start: ${error instanceof Error ? error.message : String(error)}`);
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
