// A Tessera node for the benchmarks, run as its own process (forked with an IPC channel).
// It is the built server (packages/server/dist), configured only through the environment
// the parent passes, exactly as `npm start` would be. Reports its URL over IPC; stops on
// SIGTERM or when the parent goes away, exiting normally so that --cpu-prof can write.
// BENCH_LOOP_REPORT=N: its event loop delay and GC pauses every N s (lib/loop-report.mjs).
import { readConfig, startServer } from '../../packages/server/dist/index.js';
import { stopOnParentExit } from '../lib/children.mjs';
import { reportEventLoop } from '../lib/loop-report.mjs';

const server = await startServer(readConfig(process.env), { print: () => undefined });
process.send?.({ url: server.url });
reportEventLoop('tessera');

stopOnParentExit(() => server.close());
