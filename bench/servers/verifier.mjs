// One verifier of the propagation benchmark: an app instance running the Tessera SDK and
// following the revocation feed, as in production. Forked with an IPC channel; the parent
// sends { issuer, clientId, clientSecret, index }, then { type: 'tokens', tokens: [{ sid,
// token }] }: access tokens this instance has seen (each verified once, so it is cached).
//
// When the SDK reports a revocation ('revoked' event) for one of those sessions, the
// verifier calls verify(token) at once and, when it rejects, sends the parent
// { type: 'rejected', sid, heardAt, rejectedAt, code } with wall-clock times
// (performance.timeOrigin + performance.now(): sub-millisecond and, unlike hrtime,
// comparable across processes on one machine). A verify that still accepts is reported as
// code 'ACCEPTED', which the parent counts as a failure.
import { createTessera } from '@tessera/sdk';
import { stopOnParentExit } from '../lib/children.mjs';

const wallClockMs = () => performance.timeOrigin + performance.now();

/** This process's offset Date.now() − wallClockMs(), averaged over many readings. */
function clockOffset(samples = 2000) {
  let total = 0;
  for (let i = 0; i < samples; i++) total += Date.now() - wallClockMs();
  return total / samples;
}

process.once('message', async ({ issuer, clientId, clientSecret, index }) => {
  const tessera = createTessera({ issuer, clientId, clientSecret });
  try {
    await tessera.start();
  } catch (error) {
    process.send?.({ error: String(error) });
    return;
  }
  const tokens = new Map();
  tessera.on('revoked', (event) => {
    const heardAt = wallClockMs();
    const token = tokens.get(event.sid);
    if (token === undefined) return;
    tokens.delete(event.sid);
    tessera.verify(token).then(
      () => process.send?.({ type: 'rejected', verifier: index, sid: event.sid, heardAt, rejectedAt: wallClockMs(), code: 'ACCEPTED' }),
      (error) => process.send?.({ type: 'rejected', verifier: index, sid: event.sid, heardAt, rejectedAt: wallClockMs(), code: error?.code ?? String(error) }),
    );
  });
  process.on('message', async (m) => {
    if (m?.type === 'tokens') {
      let accepted = 0;
      for (const { sid, token } of m.tokens) {
        // The instance has served a request with this token: verified once, cached.
        const session = await tessera.verify(token);
        if (session.sid !== sid) throw new Error('sid mismatch');
        tokens.set(sid, token);
        accepted++;
      }
      process.send?.({ type: 'tokens', accepted, status: tessera.feedStatus() });
    } else if (m?.type === 'clock') {
      process.send?.({ type: 'clock', offsetMs: clockOffset(), status: tessera.feedStatus() });
    }
  });
  process.send?.({ ready: true, pid: process.pid });

  stopOnParentExit(() => tessera.close());
});
