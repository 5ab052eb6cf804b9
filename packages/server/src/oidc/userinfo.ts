import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext, TesseraApp } from '../context.js';
import { OIDC_PATHS } from './protocol.js';

/**
 * The UserInfo endpoint (OpenID Connect Core §5.3) with the access token of an OIDC grant
 * (RFC 6750: `Authorization: Bearer`). Every call reads the session from the store, so a
 * session ended in any way answers 401 at once.
 */
export async function userinfoRoutes(app: TesseraApp, { authority }: ServerContext): Promise<void> {
  function unauthorized(reply: FastifyReply, error: string, description: string, status = 401): FastifyReply {
    // RFC 6750 §3: the error in WWW-Authenticate; the body keeps Tessera's envelope.
    return reply
      .status(status)
      .header('www-authenticate', `Bearer error="${error}", error_description="${description}"`)
      .send({ error, error_description: description, message: description });
  }

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const auth = request.headers.authorization;
    const token = typeof auth === 'string' && auth.slice(0, 7).toLowerCase() === 'bearer ' ? auth.slice(7).trim() : '';
    if (!token) {
      reply.header('www-authenticate', 'Bearer');
      return reply.status(401).send({ error: 'invalid_token', error_description: 'An access token is required.', message: 'An access token is required.' });
    }
    const subject = await authority.oidc.userinfoSubject(token);
    if (!subject) return unauthorized(reply, 'invalid_token', 'The access token is invalid, expired or its session has ended.');
    if (!subject.scope.split(' ').includes('openid')) return unauthorized(reply, 'insufficient_scope', 'The access token was not issued for openid.', 403);
    return reply.send({ sub: subject.user.id, ...authority.oidc.claimsFor(subject.user, subject.scope) });
  }

  const schema = { tags: ['oidc'], description: 'OpenID Connect UserInfo: the claims of the access token\'s user for its scope; 401 once the session ended.' };
  app.get(OIDC_PATHS.userinfo, { schema }, handle);
  app.post(OIDC_PATHS.userinfo, { schema }, handle);
}
