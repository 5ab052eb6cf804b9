import { Agent as HttpAgent, request as httpRequest, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/**
 * What one POST to an app or a receiver came to: an answer (`httpStatus`, and up to
 * `maxBody` bytes of its body), or no answer (`error`: a socket error code or a timeout).
 */
export interface PostOutcome {
  httpStatus: number | null;
  body: Buffer;
  /** Empty when a whole answer arrived. */
  error: string;
}

export interface HttpPoster {
  post(url: string, body: string, headers: Record<string, string>): Promise<PostOutcome>;
  close(): void;
}

/**
 * The POST both outboxes send with (logout notices to apps, SETs to Shared Signals
 * receivers). node:http rather than fetch: the WHATWG fetch layer (streams, Request and
 * Response objects) cost as much CPU as everything else of a delivery together.
 * Keep-alive connections are reused across deliveries to the same host.
 */
export function createHttpPoster(options: { timeoutMs: number; maxBody?: number }): HttpPoster {
  const maxBody = options.maxBody ?? 0;
  const agents = { 'http:': new HttpAgent({ keepAlive: true }), 'https:': new HttpsAgent({ keepAlive: true }) };

  function post(url: string, body: string, headers: Record<string, string>): Promise<PostOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      let req: ClientRequest;
      const settle = (outcome: PostOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(outcome);
      };
      const target = new URL(url);
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const agent = agents[target.protocol as 'http:' | 'https:'];
      const start = (retried: boolean) => {
        // No redirects are followed (node:http follows none): an endpoint that redirects is
        // misconfigured, and following it could hand the token or SET to someone else.
        req = send(target, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= maxBody) chunks.push(chunk);
          });
          res.on('error', () => settle({ httpStatus: status, body: Buffer.alloc(0), error: `HTTP ${status}, response cut off` }));
          res.on('end', () => settle({ httpStatus: status, body: Buffer.concat(chunks), error: '' }));
        });
        req.on('error', (error: Error & { code?: string }) => {
          // A kept-alive connection the other side closed while it sat idle fails as soon as
          // it is written to, before the request reached anyone: sent again once, on a new
          // connection (what Node's documentation advises), rather than counted as a failed
          // attempt that would wait a whole backoff. Any other error is the attempt's.
          if (!retried && !settled && req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) return start(true);
          settle({ httpStatus: null, body: Buffer.alloc(0), error: error.code ?? error.message });
        });
        req.end(body);
      };
      // One deadline for the whole attempt: connect, send, answer and body.
      const deadline = setTimeout(() => {
        settle({ httpStatus: null, body: Buffer.alloc(0), error: `timeout after ${options.timeoutMs} ms` });
        req.destroy();
      }, options.timeoutMs);
      start(false);
    });
  }

  return {
    post,
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}
