import { TesseraError, type Authority, type SsfCaller } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The caller of an SSF route, from `Authorization: Bearer <access token>` only. A token in
 * the query (RFC 6750 §2.3) or in a form body (§2.2) is refused outright, even alongside a
 * good header: URLs are written to access logs, proxies and browser histories, so a token
 * there must be treated as leaked rather than quietly accepted (SSF_TOKEN_IN_QUERY).
 */
export async function requireSsfCaller(request: FastifyRequest, reply: FastifyReply, authority: Authority): Promise<SsfCaller> {
  const query = request.query as Record<string, unknown> | undefined;
  const body = request.body as Record<string, unknown> | undefined;
  const url = request.url;
  if ((query && 'access_token' in query) || /[?&]access_token=/.test(url) || (request.headers['content-type']?.startsWith('application/x-www-form-urlencoded') && body && typeof body === 'object' && 'access_token' in body)) {
    throw new TesseraError('SSF_TOKEN_IN_QUERY');
  }
  const auth = request.headers.authorization;
  const token = typeof auth === 'string' && auth.slice(0, 7).toLowerCase() === 'bearer ' ? auth.slice(7).trim() : null;
  const caller = token ? await authority.ssf.authenticate(token) : null;
  if (!caller) {
    // RFC 6750 §3: say which scheme is expected (and why it failed when a token was sent).
    void reply.header('www-authenticate', token ? 'Bearer realm="tessera", error="invalid_token"' : 'Bearer realm="tessera"');
    throw new TesseraError('SSF_INVALID_TOKEN');
  }
  return caller;
}
