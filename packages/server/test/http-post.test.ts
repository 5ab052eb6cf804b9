// The outboxes' POST (logout notices and SETs): a kept-alive connection that the other side
// dropped is retried once on a new connection; any other failure is the attempt's.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpPoster } from '../src/http-post.js';

const servers: Server[] = [];
const sockets = new Set<Socket>();
afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/**
 * A raw HTTP/1.1 server. `onRequest(n, socketRequests)` decides per request: answer it (200,
 * keep-alive) or reset the connection without an answer. Counts connections and requests.
 */
async function rawServer(reset: (connection: number, requestOnConnection: number) => boolean) {
  const seen = { connections: 0, requests: 0 };
  const server = createServer((socket: Socket) => {
    sockets.add(socket);
    const connection = ++seen.connections;
    let onThis = 0;
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      // One request per chunk boundary is enough here: each body is tiny and sent at once.
      while (buffered.includes('\r\n\r\n')) {
        const end = buffered.indexOf('\r\n\r\n') + 4;
        const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
        if (buffered.length < end + length) return;
        buffered = buffered.slice(end + length);
        onThis += 1;
        seen.requests += 1;
        if (reset(connection, onThis)) {
          socket.resetAndDestroy();
          return;
        }
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\nok');
      }
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/logout`, seen };
}

describe('createHttpPoster', () => {
  it('sends again, once, on a new connection when a kept-alive connection was dropped', async () => {
    // The second request on the first connection finds it reset, as when an app closed the
    // idle connection just as Tessera reused it.
    const server = await rawServer((connection, n) => connection === 1 && n === 2);
    const poster = createHttpPoster({ timeoutMs: 5_000, maxBody: 100 });
    try {
      expect(await poster.post(server.url, 'a=1', { 'content-type': 'application/x-www-form-urlencoded' })).toMatchObject({ httpStatus: 200, error: '' });
      const second = await poster.post(server.url, 'a=2', { 'content-type': 'application/x-www-form-urlencoded' });
      expect(second).toMatchObject({ httpStatus: 200, error: '' });
      expect(second.body.toString()).toBe('ok');
      expect(server.seen).toEqual({ connections: 2, requests: 3 });
    } finally {
      poster.close();
    }
  });

  it('does not send again when a new connection is reset: that attempt failed', async () => {
    const server = await rawServer(() => true);
    const poster = createHttpPoster({ timeoutMs: 5_000 });
    try {
      expect(await poster.post(server.url, 'a=1', {})).toMatchObject({ httpStatus: null, error: 'ECONNRESET' });
      expect(server.seen).toEqual({ connections: 1, requests: 1 });
    } finally {
      poster.close();
    }
  });

  it('sends again at most once: a second reset on the new connection fails the attempt', async () => {
    const server = await rawServer((connection, n) => !(connection === 1 && n === 1));
    const poster = createHttpPoster({ timeoutMs: 5_000 });
    try {
      expect((await poster.post(server.url, 'a=1', {})).httpStatus).toBe(200);
      expect(await poster.post(server.url, 'a=2', {})).toMatchObject({ httpStatus: null, error: 'ECONNRESET' });
      expect(server.seen).toEqual({ connections: 2, requests: 3 });
    } finally {
      poster.close();
    }
  });

  it('keeps one deadline for the attempt and keeps at most maxBody bytes of an answer', async () => {
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const poster = createHttpPoster({ timeoutMs: 200, maxBody: 1 });
    try {
      expect(await poster.post(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/`, 'x', {})).toMatchObject({ httpStatus: null, error: 'timeout after 200 ms' });
      const server = await rawServer(() => false);
      const answered = await poster.post(server.url, 'x', {});
      expect(answered.httpStatus).toBe(200);
      expect(answered.body.length).toBe(0);
    } finally {
      poster.close();
    }
  });
});
