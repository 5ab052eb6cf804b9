import { createServer } from 'node:net';

/**
 * A TCP port that was free a moment ago on 127.0.0.1.
 *
 * Needed for Tessera only: its issuer URL (in logout URLs and redirects) is fixed from the
 * configured port before it listens, so `port: 0` would publish `http://127.0.0.1:0`. The
 * example apps learn their URL after listening and take port 0 directly.
 */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
