import { Agent, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { TestServer } from './support.js';

/**
 * A plain node:http client for tests over a real socket, with control over what inject
 * cannot show: how an empty body is framed (no body headers, `content-length: 0`, or a
 * chunked body with no data), a header sent twice (an array value is sent as two lines),
 * and the address the server sees (127.0.0.1).
 */

/** How the request body is framed on the wire. */
export type Framing = 'none' | 'length0' | 'chunked';

export interface SendOptions {
  headers?: OutgoingHttpHeaders;
  /** A body to send (framed with content-length). */
  body?: string;
  /** How to frame an empty body (default: `none`; Node's client then sends no body headers for GET, HEAD and DELETE). */
  framing?: Framing;
  /** When the answer is an event stream (200), resolve as soon as its head arrives and drop the connection. */
  headersOnly?: boolean;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/** Starts listening on 127.0.0.1, port 0; returns the base URL. */
export async function listen(t: TestServer): Promise<string> {
  return t.app.listen({ host: '127.0.0.1', port: 0 });
}

/** Sends one request and reads the whole answer (or only its head, see `headersOnly`). */
export function send(base: string, method: string, path: string, options: SendOptions = {}): Promise<RawResponse> {
  const url = new URL(path, base);
  const headers: OutgoingHttpHeaders = { ...options.headers };
  const framing = options.body !== undefined ? 'body' : (options.framing ?? 'none');
  if (framing === 'body') headers['content-length'] = Buffer.byteLength(options.body!);
  if (framing === 'length0') headers['content-length'] = 0;
  if (framing === 'chunked') headers['transfer-encoding'] = 'chunked';
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers, agent: options.headersOnly ? false : agent }, (res) => {
      const done = (body: string) => resolve({ status: res.statusCode!, headers: res.headers, body, json: <T>() => JSON.parse(body) as T });
      if (options.headersOnly && res.statusCode === 200 && String(res.headers['content-type']).startsWith('text/event-stream')) {
        done('');
        res.destroy();
        req.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('error', (error) => (options.headersOnly && (error as { code?: string }).code === 'ECONNRESET' ? undefined : reject(error)));
    if (framing === 'body') req.end(options.body);
    else req.end();
  });
}

/** Closes the keep-alive sockets of the shared agent (after a test file). */
export function closeClient(): void {
  agent.destroy();
}
