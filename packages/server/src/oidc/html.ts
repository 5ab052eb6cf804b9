import type { FastifyReply } from 'fastify';

/**
 * Sends an HTML page of the OpenID Provider with the hosted pages' security headers.
 *
 * A local stand-in until the one shared page sender of packages/server/src/pages/ (issue 15)
 * lands; the integrator can swap the calls for it. `formActionOrigin` is the origin of an
 * already verified redirect target (a registered redirect_uri or post_logout_redirect_uri):
 * Chromium applies `form-action` to the redirect that answers a form POST too, so a form
 * posting to Tessera that is answered with a 303 to the client would be blocked with
 * `form-action 'self'` alone. Only a verified origin is ever added.
 */
export function sendOidcPage(reply: FastifyReply, status: number, body: string, formActionOrigin?: string): FastifyReply {
  const formAction = formActionOrigin ? `'self' ${formActionOrigin}` : `'self'`;
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'`)
    .send(body);
}
