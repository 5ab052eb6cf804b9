// A loopback TCP proxy between the SDK and Tessera, so a test can cut live connections
// (as a network failure or a load balancer would) and point at a restarted node.
import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  url: string;
  /** Sends new connections to this port from now on. */
  retarget(port: number): void;
  /** Destroys every open connection (both sides); new ones are still accepted. */
  dropAll(): number;
  /** Stops forwarding on the open connections without closing them (a stalled middlebox). */
  stall(): void;
  /** Refuses new connections (they are reset at once) until `resume()`. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let target = targetPort;
  let paused = false;
  const sockets = new Set<Socket>();
  const upstreams = new Set<Socket>();
  const server = createServer((client) => {
    if (paused) return void client.resetAndDestroy();
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    upstreams.add(upstream);
    upstream.on('close', () => upstreams.delete(upstream));
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    retarget(p) {
      target = p;
    },
    dropAll() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    stall() {
      for (const s of upstreams) {
        s.unpipe();
        s.pause();
      }
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
