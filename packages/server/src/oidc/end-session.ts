import { compactVerify, decodeProtectedHeader } from 'jose';
import { appMay, hintNamesUser, type AppRecord, type Authenticated } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext, TesseraApp } from '../context.js';
import { clearSessionCookie } from '../cookies.js';
import { readSessionToken } from '../http-auth.js';
import { clearSharedCookie } from '../shared-cookie.js';
import { createOidcCsrf } from './authorize.js';
import { sendPage } from '../pages/index.js';
import { renderLogoutConfirmPage, renderOidcErrorPage } from './pages.js';
import { OIDC_PATHS, readParams } from './protocol.js';

/** The claims of an id_token_hint this issuer signed. */
interface Hint {
  sub: string;
  sid: string | null;
  aud: string[];
}

type Checked = { error: string } | { client: AppRecord | null; redirect: string | null; state: string | undefined; hint: Hint | null; logoutHint: string | undefined };

/**
 * RP-Initiated Logout 1.0: the end-session endpoint. The logout ends the Tessera session
 * everywhere (every app that joined it hears of it through the durable outbox), exactly as
 * the other logout flows do. It redirects only to a post_logout_redirect_uri registered by
 * the client named by the hint or by client_id, compared as an exact string; anything else
 * gets a Tessera page. Without a valid id_token_hint the user confirms with a CSRF-protected
 * form, so a cross-site link or image cannot sign anyone out.
 */
export async function endSessionRoutes(app: TesseraApp, { authority, config }: ServerContext): Promise<void> {
  const csrf = createOidcCsrf(config);
  /**
   * An ID token this issuer signed, verified by signature and issuer only: the spec lets an
   * expired ID token serve as a hint (RP-Initiated Logout 1.0 §2), and the session it names
   * may have ended. Null when it is not ours (another issuer, forged, not an ID token).
   */
  async function verifyHint(token: string): Promise<Hint | null> {
    try {
      if (token.length > 8192) return null;
      const header = decodeProtectedHeader(token);
      // Access tokens (at+jwt) and logout tokens (logout+jwt) are not ID tokens.
      if (typeof header.kid !== 'string' || (header.typ !== undefined && header.typ !== 'JWT')) return null;
      const found = await authority.keys.verificationKey(header.kid);
      if (!found) return null;
      const { payload } = await compactVerify(token, found.key, { algorithms: [found.alg] });
      const claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
      if (claims.iss !== config.issuer || typeof claims.sub !== 'string') return null;
      const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === 'string') : [];
      if (aud.length === 0) return null;
      return { sub: claims.sub, sid: typeof claims.sid === 'string' ? claims.sid : null, aud };
    } catch {
      return null;
    }
  }

  async function check(raw: unknown): Promise<Checked> {
    const p = readParams(raw);
    if (p.repeated) return { error: `The parameter ${p.repeated} was given more than once.` };
    const hintText = p.get('id_token_hint');
    const clientId = p.get('client_id');
    const redirectUri = p.get('post_logout_redirect_uri');
    let hint: Hint | null = null;
    if (hintText !== undefined) {
      hint = await verifyHint(hintText);
      // §2: "the OP MUST validate that it was the issuer of the ID Token".
      if (!hint) return { error: 'The id_token_hint was not issued by this Tessera.' };
    }
    if (hint && clientId !== undefined && !hint.aud.includes(clientId)) return { error: 'client_id does not match the id_token_hint.' };
    const named = clientId ?? (hint && hint.aud.length === 1 ? hint.aud[0]! : undefined);
    const client = named !== undefined ? await authority.oidc.findClient(named) : null;
    if (named !== undefined && !client) return { error: 'The app of this sign-out request is not registered with Tessera.' };
    if (redirectUri !== undefined) {
      // §3: the URI must have been registered by the client; exact string comparison.
      if (!client) return { error: 'post_logout_redirect_uri needs client_id or id_token_hint.' };
      if (!client.oidc.postLogoutRedirectUris.includes(redirectUri)) return { error: 'The post_logout_redirect_uri is not registered for this app.' };
    }
    return { client, redirect: redirectUri ?? null, state: p.get('state'), hint, logoutHint: p.get('logout_hint') };
  }

  async function currentSession(request: FastifyRequest): Promise<Authenticated | null> {
    const presented = readSessionToken(request, config);
    return presented?.source === 'cookie' ? authority.sessions.authenticate(presented.token) : null;
  }

  /** Whether `client` may end each of these sessions by handle (an unknown handle ends nothing anyway). */
  async function mayEnd(client: AppRecord, handles: string[]): Promise<boolean> {
    for (const handle of handles) {
      const session = await authority.deps.store.findSessionByHandle(handle);
      if (session && !appMay(client, 'end_session_by_handle', session)) return false;
    }
    return true;
  }

  /** Ends the session(s), clears the cookies, then redirects or shows the signed-out page. */
  async function finish(request: FastifyRequest, reply: FastifyReply, checked: Exclude<Checked, { error: string }>, handles: string[]): Promise<FastifyReply> {
    // Local state first; the apps are told through the outbox after the commit.
    if (handles.length > 0) await authority.sessions.revokeSessions(handles, { actor: checked.client ? `app:${checked.client.clientId}` : 'user', reason: 'logout', ip: request.ip });
    const current = await currentSession(request);
    if (!current) {
      clearSessionCookie(reply, config);
      clearSharedCookie(reply, config);
    }
    if (checked.redirect) {
      const target = new URL(checked.redirect);
      if (checked.state !== undefined) target.searchParams.set('state', checked.state);
      return reply.status(303).header('location', target.toString()).send();
    }
    return sendPage(reply, 200, renderOidcErrorPage('Signed out', 'You are signed out of every app of this site.'));
  }

  /**
   * logout_hint (RP-Initiated Logout 1.0 §2: which End-User is logging out; its meaning is
   * the OP's): a user id, username or email, or a session id (sid). Tessera uses it as a
   * check, never to widen what ends: when it names someone other than the user the request
   * is about (the id_token_hint's, else the browser's), the user confirms on the page,
   * which says so, instead of a session being ended silently.
   */
  async function logoutHintAgrees(hint: string | undefined, userId: string | null, handles: string[]): Promise<boolean> {
    if (hint === undefined) return true;
    // Free-form (§2); one longer than any stored name or session id names nobody.
    if (hint.length > 254) return false;
    const user = userId === null ? null : await authority.deps.store.findUserById(userId);
    return user !== null && hintNamesUser(hint, user, handles);
  }

  async function handle(request: FastifyRequest, reply: FastifyReply, raw: unknown): Promise<FastifyReply> {
    const checked = await check(raw);
    if ('error' in checked) return sendPage(reply, 400, renderOidcErrorPage('Sign-out request not valid', checked.error));
    const current = await currentSession(request);
    if (checked.hint) {
      // A valid hint names the session (sid) the client saw: that one ends, whether or not
      // this browser still holds it. A hint without sid ends the browser's session if it
      // belongs to the hint's user.
      const handles = checked.hint.sid ? [checked.hint.sid] : current && current.user.id === checked.hint.sub ? [current.session.handle] : [];
      if (checked.hint.sid && current && current.session.handle !== checked.hint.sid && current.user.id === checked.hint.sub) handles.push(current.session.handle);
      // The app ends sessions it names by handle, so core decides as on every app route
      // (requireAppMay's end_session_by_handle): a trusted app or a current member. An app
      // that has left a session (an app-only logout) keeps its old ID tokens; such a hint no
      // longer ends the session by itself: the user confirms below instead. So does a
      // logout_hint that names another user than the ID token's.
      const agrees = await logoutHintAgrees(checked.logoutHint, checked.hint.sub, handles);
      if (agrees && (!checked.client || (await mayEnd(checked.client, handles)))) return finish(request, reply, checked, handles);
    }
    // No hint (or one its app may no longer act on, or a logout_hint naming someone else):
    // the user confirms (logout CSRF). The confirmation ends the browser's session.
    const otherUser = checked.logoutHint !== undefined && current !== null && !(await logoutHintAgrees(checked.logoutHint, current.user.id, [current.session.handle]));
    const hintedOther = checked.logoutHint !== undefined && checked.hint !== null && !(await logoutHintAgrees(checked.logoutHint, checked.hint.sub, checked.hint.sid ? [checked.hint.sid] : []));
    const fields: Record<string, string> = { csrf: csrf.issue(request, reply) };
    if (checked.client) fields.client_id = checked.client.clientId;
    if (checked.redirect) fields.post_logout_redirect_uri = checked.redirect;
    if (checked.state !== undefined) fields.state = checked.state;
    // The confirmation form is answered with a 303 to the verified post-logout URI: Chromium
    // checks form-action against that redirect too, so its origin is allowed.
    const origin = checked.redirect ? new URL(checked.redirect).origin : undefined;
    const notice = otherUser || hintedOther ? 'The app asked to sign out another account than the one signed in here. Sign out only if you mean to.' : undefined;
    return sendPage(reply, 200, renderLogoutConfirmPage({ appName: checked.client?.name ?? null, username: current?.user.username ?? null, fields, ...(notice ? { notice } : {}) }), { formActionOrigins: origin ? [origin] : [] });
  }

  const description = 'OpenID Connect RP-Initiated Logout: ends the Tessera session everywhere; redirects only to a registered post_logout_redirect_uri; asks for confirmation without a valid id_token_hint.';
  app.get(OIDC_PATHS.endSession, { schema: { tags: ['oidc'], description, produces: ['text/html'] } }, async (request, reply) => handle(request, reply, request.query));
  app.post(OIDC_PATHS.endSession, { schema: { tags: ['oidc'], description, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] } }, async (request, reply) => handle(request, reply, request.body));

  app.post(OIDC_PATHS.logoutConfirm, { schema: { tags: ['oidc'], description: 'The confirmation form of the end-session endpoint (CSRF-protected).', consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] } }, async (request, reply) => {
    const p = readParams(request.body);
    if (!csrf.matches(request, p.get('csrf'))) {
      return sendPage(reply, 403, renderOidcErrorPage('Please try again', 'This sign-out form expired or was not opened from this site.'));
    }
    // The carried parameters are checked again: the form's fields are the browser's input.
    const checked = await check({ client_id: p.get('client_id'), post_logout_redirect_uri: p.get('post_logout_redirect_uri'), state: p.get('state') });
    if ('error' in checked) return sendPage(reply, 400, renderOidcErrorPage('Sign-out request not valid', checked.error));
    csrf.clear(reply);
    const current = await currentSession(request);
    return finish(request, reply, checked, current ? [current.session.handle] : []);
  });
}
