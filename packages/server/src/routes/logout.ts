import { Type } from '@fastify/type-provider-typebox';
import { TesseraError } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { empty, type ServerContext, type TesseraApp } from '../context.js';
import { clearSessionCookie } from '../cookies.js';
import { clearSharedCookie } from '../shared-cookie.js';
import { requireSession } from '../http-auth.js';
import { SessionToken, errors } from '../schemas.js';
import { LOGOUT_FAILURES, limitFailures } from '../failure-limits.js';

const LogoutTokenParam = Type.String({ minLength: 1, maxLength: 256 });
const ReturnTo = Type.String({ minLength: 1, maxLength: 2048 });

function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

/** The browser and API logout flows. */
export async function logoutRoutes(app: TesseraApp, { authority, config, limits }: ServerContext): Promise<void> {
  const issuerOrigin = new URL(config.issuer).origin;
  // Every logout route checks the token (or session, or CSRF) FIRST: a logout that presents a
  // valid one always ends the session, however many failures its address has had. Only
  // failures are counted per address, and past rateLimit.logoutMax answered 429.
  const limited = <T>(request: FastifyRequest, attempt: () => Promise<T>): Promise<T> => limitFailures([[limits.logoutByAddress, request.ip]], LOGOUT_FAILURES, attempt);

  /**
   * After a logout by logout token: clears the session cookie unless it holds another
   * session that is still active. Anyone can get a logout URL for their own session; a
   * victim made to open it must not be signed out of their own session (logout CSRF).
   */
  async function clearEndedSessionCookie(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const cookie = request.cookies[config.cookie.name];
    if (cookie && (await authority.sessions.findActive(cookie))) return;
    clearSessionCookie(reply, config);
    clearSharedCookie(reply, config);
  }

  app.get('/v1/logout/browser', {
    schema: {
      tags: ['logout'], description: 'A logout URL carrying a one-time logout token for the current session.',
      querystring: Type.Object({ return_to: Type.Optional(ReturnTo) }),
      response: { 200: Type.Object({ logout_url: Type.String(), logout_token: Type.String() }), ...errors(400, 401) },
    },
  }, async (request) => {
    const current = await requireSession(request, authority, config);
    const { return_to: returnTo } = request.query;
    if (returnTo !== undefined) await authority.logout.resolveReturnUrl(returnTo);
    const { logoutToken, logoutUrl } = await authority.logout.issueLogoutToken(current.session);
    const url = returnTo === undefined ? logoutUrl : `${logoutUrl}&return_to=${encodeURIComponent(returnTo)}`;
    return { logout_url: url, logout_token: logoutToken };
  });

  app.get('/v1/logout', {
    schema: {
      tags: ['logout'], description: 'Opens a logout URL: ends the session, clears the cookie, 303 to return_to (exact allow-list match) or 204 for Accept: application/json.',
      querystring: Type.Object({ token: Type.Optional(LogoutTokenParam), return_to: Type.Optional(ReturnTo) }),
      response: { 204: Type.Null(), ...errors(400, 403, 429) },
    },
  }, async (request, reply) => {
    // The target is checked before anything changes: a bad return_to must not leave the
    // user logged out on an error page, nor be followed (no open redirect).
    const target = await authority.logout.resolveReturnUrl(request.query.return_to);
    const token = request.query.token;
    await limited(request, async () => {
      if (!token) throw new TesseraError('LOGOUT_TOKEN_INVALID');
      await authority.logout.logoutWithLogoutToken(token, request.ip);
    });
    await clearEndedSessionCookie(request, reply);
    if (wantsJson(request)) return empty(reply, 204);
    return reply.redirect(target, 303);
  });

  app.post('/v1/logout', {
    schema: {
      tags: ['logout'],
      description: 'XHR logout from a registered origin, with credentials and header X-Tessera-CSRF: 1 (or a logout token in the JSON body as logout_token).',
      body: Type.Optional(Type.Union([Type.Object({ logout_token: Type.Optional(LogoutTokenParam) }, { additionalProperties: false }), Type.Null()])),
      response: { 204: Type.Null(), ...errors(401, 403, 429) },
    },
  }, async (request, reply) => {
    await limited(request, async () => {
      const origin = request.headers.origin;
      // Only pages of registered origins (or Tessera's own) may log the user out by XHR.
      if (typeof origin !== 'string' || (origin !== issuerOrigin && !(await authority.apps.isRegisteredOrigin(origin)))) throw new TesseraError('ORIGIN_NOT_ALLOWED');
      const logoutToken = request.body?.logout_token;
      if (logoutToken !== undefined) {
        await authority.logout.logoutWithLogoutToken(logoutToken, request.ip);
        await clearEndedSessionCookie(request, reply);
      } else {
        // The custom header cannot be sent cross-site without passing CORS preflight.
        if (request.headers['x-tessera-csrf'] === undefined) throw new TesseraError('CSRF_FAILED');
        const current = await requireSession(request, authority, config);
        await authority.sessions.revokeSessions([current.session.handle], { actor: 'user', reason: 'logout', ip: request.ip });
        clearSessionCookie(reply, config);
        clearSharedCookie(reply, config);
      }
    });
    return empty(reply, 204);
  });

  app.delete('/v1/logout/api', {
    schema: {
      tags: ['logout'], description: 'Native-client logout with the session token; 204 also when the session had already ended.',
      body: Type.Object({ session_token: SessionToken }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(400, 403, 429) },
    },
  }, async (request, reply) => {
    await limited(request, () => authority.logout.logoutWithSessionToken(request.body.session_token, request.ip));
    return empty(reply, 204);
  });

}
