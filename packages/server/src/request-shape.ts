import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ERROR_CATALOGUE, TesseraError, type ErrorCode } from '@tessera/core';
import type { FastifyInstance } from 'fastify';

/**
 * Requests shaped the way real clients send them. Ordinary client code sets headers once for
 * every call (a shared fetch headers object, axios defaults, `curl -H 'content-type:
 * application/json'`), so a DELETE that carries no body still says `Content-Type:
 * application/json`, and a header may arrive twice. None of that may turn a logout into a
 * failure while the caller believes it worked (issue "A logout is never refused").
 */
export function installRequestShaping(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    const headers = request.raw.headers;
    // A request whose body is empty is a request without a body, whatever its Content-Type
    // says: the type describes nothing, so no parser runs (no 400 on an empty JSON body, no
    // 415 for a type this route does not parse). Routes that need a body still answer 400
    // INVALID_REQUEST from their schema.
    if (headers['content-type'] !== undefined && headers['transfer-encoding'] === undefined && (headers['content-length'] === undefined || headers['content-length'] === '0')) {
      delete headers['content-type'];
    }
    // The same header sent twice (a client default plus a per-call value) is joined by Node
    // with ", ", which would read as a different token. Identical copies are one value;
    // differing copies of a single-valued header are ambiguous, and a 400 says so rather than
    // picking one.
    for (const name of SINGLE_VALUED) {
      const joined = headers[name];
      // Node joins copies with ", "; only then is there anything to look at.
      if (typeof joined !== 'string' || !joined.includes(',')) continue;
      const values = copiesOf(request.raw.rawHeaders, name);
      if (values.length < 2) continue;
      if (values.some((v) => v !== values[0])) {
        done(new TesseraError('INVALID_REQUEST', `Conflicting ${name} headers.`));
        return;
      }
      headers[name] = values[0];
    }
    done();
  });

  // An empty body under a JSON content type that the header check above cannot see (chunked
  // transfer with no data) is no body either; anything else goes to Fastify's own parser
  // (prototype-poisoning checks included).
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) {
      done(null, undefined);
      return;
    }
    json(request, body as string, done);
  });
}

/** Every copy of header `name` as sent (rawHeaders is [name, value, name, value, …]). */
function copiesOf(rawHeaders: readonly string[] | undefined, name: string): string[] {
  const values: string[] = [];
  for (let i = 0; rawHeaders && i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) values.push(rawHeaders[i + 1]!);
  return values;
}

// Headers Tessera reads as one value (Node keeps only the first copy of authorization and
// content-type by itself; cookies are joined with "; " and parsed as a list; Accept is a list).
const SINGLE_VALUED = ['x-session-token', 'x-tessera-csrf', 'origin', 'last-event-id'] as const;

// Node's parser errors before any route exists (header block too large, a malformed request
// line, a timeout) and the catalogue code each one is answered with.
function codeOf(error: { code?: string }): ErrorCode {
  if (error.code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'REQUEST_TIMEOUT';
  return 'INVALID_REQUEST';
}

/**
 * Fastify's `clientErrorHandler`: the error envelope with a catalogue code also for requests
 * Node's HTTP parser rejects (Fastify's default writes its own `{"error":"Bad Request",…}`).
 */
export function sendClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code = codeOf(error);
  const status = ERROR_CATALOGUE[code].status;
  const body = JSON.stringify({ error: code, message: ERROR_CATALOGUE[code].message });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncontent-type: application/json; charset=utf-8\r\nconnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}
