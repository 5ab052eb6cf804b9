// The SDK under the memory benchmark: one Tessera client following the revocation feed, in
// a process run with --expose-gc so that heap figures are taken after full collections.
// Forked with an IPC channel; the parent sends { issuer, clientId, clientSecret }, then:
//   { type: 'measure' }               → { type: 'measure', heapUsed, …, status? }
//   { type: 'wait', revokedSessions } → { type: 'wait', … } once the set holds that many
// `measure` with `status: false` takes the heap figure without calling feedStatus() (which
// drops expired entries itself), to show that the SDK's own sweep frees them.
import { createTessera } from '@tessera/sdk';
import { stopOnParentExit } from '../lib/children.mjs';

if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');

/** heapUsed after full collections (the smallest of a few, as finalizers may free more). */
function heapAfterGc() {
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    best = Math.min(best, process.memoryUsage().heapUsed);
  }
  return best;
}

process.once('message', async ({ issuer, clientId, clientSecret }) => {
  const tessera = createTessera({ issuer, clientId, clientSecret });
  let events = 0;
  let lastForgetAfter = 0;
  let lastEventAt = 0;
  tessera.on('revoked', (event) => {
    events++;
    lastForgetAfter = Math.max(lastForgetAfter, event.forgetAfter.getTime());
    lastEventAt = Date.now();
  });
  const startedAt = Date.now();
  try {
    await tessera.start();
  } catch (error) {
    process.send?.({ error: String(error) });
    return;
  }
  const caughtUpMs = Date.now() - startedAt;
  const facts = () => ({ events, lastForgetAfter, lastEventAt, now: Date.now() });

  process.on('message', async (m) => {
    if (m?.type === 'measure') {
      const heapUsed = heapAfterGc();
      const { rss } = process.memoryUsage();
      process.send?.({ type: 'measure', heapUsed, rss, ...facts(), status: m.status === false ? null : tessera.feedStatus() });
    } else if (m?.type === 'wait') {
      const waitStarted = Date.now();
      while (tessera.feedStatus().revokedSessions < m.revokedSessions) {
        if (Date.now() - waitStarted > (m.timeoutMs ?? 300_000)) {
          process.send?.({ type: 'wait', error: `the set holds ${tessera.feedStatus().revokedSessions}, not ${m.revokedSessions}` });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      process.send?.({ type: 'wait', ...facts(), status: tessera.feedStatus() });
    }
  });
  process.send?.({ ready: true, caughtUpMs, status: tessera.feedStatus() });

  stopOnParentExit(() => tessera.close());
});
