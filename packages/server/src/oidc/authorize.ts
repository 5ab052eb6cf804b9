import { hintNamesUser, narrowScope, normaliseName, type AppRecord, type Authenticated, type Config } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext, TesseraApp } from '../context.js';
import { readSessionToken } from '../http-auth.js';
import { createFormCsrf, sendPage, type FormCsrf } from '../pages/index.js';
import { renderConsentPage, renderOidcErrorPage } from './pages.js';
import { OIDC_PATHS, readParams } from './protocol.js';

/** The form field and cookie of the OpenID Provider's own forms (consent, logout confirmation). */
export const OIDC_CSRF_COOKIE = 'tessera_oidc_csrf';
/**
 * Set on the authorize URL the login page returns to after a forced login (prompt=login,
 * max_age, a login_hint naming another account): the session must have started at or after
 * this moment (epoch ms). Removing it only makes the request easier to satisfy than the one
 * the client sent, and the client checks `auth_time` against its own max_age.
 */
const LOGIN_AFTER = 'tessera_login_after';

// RFC 7636 §4.2: the S256 challenge is the base64url SHA-256 of the verifier: 43 characters.
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const MAX_PARAM = 2048;

/** The double-submit token of the OpenID Provider's forms (consent, logout confirmation), scoped to /oidc. */
export function createOidcCsrf(config: Config): FormCsrf {
  return createFormCsrf({ cookie: OIDC_CSRF_COOKIE, path: '/oidc', config });
}

/**
 * True when `url` is this issuer's own authorization endpoint: the hosted login page may
 * return there (the endpoint checks every parameter again, so nothing in the query is trusted).
 */
export function isOwnAuthorizeUrl(url: string, config: Config): boolean {
  return url.startsWith(`${config.issuer}${OIDC_PATHS.authorize}?`) && !url.includes('#');
}

/**
 * The origin of the client redirect URI that an authorize URL (a login page's return_to)
 * will end at, when the client and redirect URI are registered; undefined otherwise. The
 * login form's CSP must allow it in form-action: Chromium checks form-action against every
 * redirect that follows the form's POST, and POST /login → 303 authorize → 303 redirect_uri
 * ends off-origin. Only a verified registration is ever added.
 */
export async function authorizeRedirectOrigin(url: string, config: Config, findClient: (clientId: string) => Promise<AppRecord | null>): Promise<string | undefined> {
  if (!isOwnAuthorizeUrl(url, config)) return undefined;
  const query = new URL(url).searchParams;
  const clientId = query.get('client_id');
  const redirectUri = query.get('redirect_uri');
  if (!clientId || !redirectUri || query.getAll('redirect_uri').length !== 1) return undefined;
  const client = await findClient(clientId);
  if (!client || !client.oidc.redirectUris.includes(redirectUri)) return undefined;
  const origin = new URL(redirectUri).origin;
  return origin === new URL(config.issuer).origin ? undefined : origin;
}

/**
 * The `login_hint` of an authorize URL (a login page's return_to), as the hosted login form
 * pre-fills it into the username field; undefined when there is none or it could not be a
 * login name (longer than the field allows, or a control, bidirectional or invisible
 * character that normaliseName refuses in every stored name). The page escapes it like any
 * other value; it only fills in a field the user can change, and proves nothing.
 */
export function loginHintOf(url: string, config: Config): string | undefined {
  if (!isOwnAuthorizeUrl(url, config)) return undefined;
  const hints = new URL(url).searchParams.getAll('login_hint');
  if (hints.length !== 1 || hints[0] === '' || hints[0]!.length > 254) return undefined;
  try {
    return normaliseName(hints[0]!, 'username');
  } catch {
    return undefined;
  }
}

/** A verified authorization request: its client and redirect URI are known to match. */
interface AuthorizationRequest {
  client: AppRecord;
  redirectUri: string;
  state: string | undefined;
  nonce: string | null;
  scope: string;
  codeChallenge: string | null;
  prompt: Set<string>;
  maxAge: number | undefined;
  loginHint: string | undefined;
  loginAfter: number | undefined;
  /** The request's parameters, to rebuild the authorize URL or carry them through a form. */
  params: Array<[string, string]>;
}

type Outcome = { page: { status: number; title: string; message: string } } | { redirect: { uri: string; params: Record<string, string> } } | { request: AuthorizationRequest };

/**
 * The authorization endpoint (OpenID Connect Core §3.1.2, RFC 6749 §4.1, RFC 7636, RFC 9207)
 * and the consent form it shows to apps that are not trusted.
 */
export async function authorizeRoutes(app: TesseraApp, { authority, config }: ServerContext): Promise<void> {
  const csrf = createOidcCsrf(config);
  const { oidc } = authority;

  /**
   * Steps 1–2: the client and its redirect URI. Until both are verified nothing is sent to
   * the redirect URI (RFC 6749 §4.1.2.1: an open redirector otherwise); the user sees an
   * error page instead. From there on, errors go back to the client.
   */
  async function verify(raw: unknown): Promise<Outcome> {
    const p = readParams(raw);
    const clientId = p.get('client_id');
    const redirectUri = p.get('redirect_uri');
    const page = (message: string) => ({ page: { status: 400, title: 'Sign-in request not valid', message } });
    if (p.repeated === 'client_id' || p.repeated === 'redirect_uri') return page(`The parameter ${p.repeated} was given more than once.`);
    if (!clientId) return page('The request names no client (client_id).');
    const client = await oidc.findClient(clientId);
    if (!client) return page('The app that sent you here is not registered with Tessera.');
    // Exact string comparison with the registered list (OpenID Connect Core §3.1.2.1):
    // no prefix, no normalisation. redirect_uri is required in OpenID Connect requests.
    if (!redirectUri || !client.oidc.redirectUris.includes(redirectUri)) return page('The return address (redirect_uri) of this request is not registered for the app.');

    const state = p.get('state');
    const fail = (error: string, description: string) => ({ redirect: { uri: redirectUri, params: { error, error_description: description, ...(state !== undefined ? { state } : {}) } } });
    if (p.repeated) return fail('invalid_request', `The parameter ${p.repeated} was given more than once.`);
    for (const [name, value] of p.entries()) if (value.length > MAX_PARAM) return fail('invalid_request', `The parameter ${name} is too long.`);
    if (p.get('request') !== undefined) return fail('request_not_supported', 'Request objects are not supported.');
    if (p.get('request_uri') !== undefined) return fail('request_uri_not_supported', 'request_uri is not supported.');
    const responseType = p.get('response_type');
    if (!responseType) return fail('invalid_request', 'response_type is required.');
    if (responseType !== 'code') return fail('unsupported_response_type', 'Only response_type=code is supported.');
    const responseMode = p.get('response_mode');
    if (responseMode !== undefined && responseMode !== 'query') return fail('invalid_request', 'Only response_mode=query is supported.');
    if (!client.oidc.grantTypes.includes('authorization_code')) return fail('unauthorized_client', 'This client may not use the authorization code grant.');
    const scopes = (p.get('scope') ?? '').split(' ');
    if (!scopes.includes('openid')) return fail('invalid_scope', 'The scope must include openid.');

    const challenge = p.get('code_challenge');
    const method = p.get('code_challenge_method');
    if (challenge === undefined && method !== undefined) return fail('invalid_request', 'code_challenge_method without code_challenge.');
    if (challenge !== undefined) {
      // Only S256: "plain" gives no protection against an attacker who sees the request.
      if (method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256.');
      if (!CHALLENGE.test(challenge)) return fail('invalid_request', 'code_challenge is not a base64url SHA-256 value.');
    } else if (client.oidc.tokenEndpointAuthMethod === 'none') {
      // A public client has no secret: without PKCE a stolen code would be as good as a token.
      return fail('invalid_request', 'PKCE (code_challenge with S256) is required for this client.');
    }

    const prompt = new Set((p.get('prompt') ?? '').split(' ').filter(Boolean));
    for (const value of prompt) if (value !== 'none' && value !== 'login' && value !== 'consent') return fail('invalid_request', `prompt=${value} is not supported.`);
    if (prompt.has('none') && prompt.size > 1) return fail('invalid_request', 'prompt=none cannot be combined with other values.');
    const maxAgeText = p.get('max_age');
    if (maxAgeText !== undefined && !/^\d{1,9}$/.test(maxAgeText)) return fail('invalid_request', 'max_age must be a number of seconds.');
    const loginAfterText = p.get(LOGIN_AFTER);
    return {
      request: {
        client,
        redirectUri,
        state,
        nonce: p.get('nonce') ?? null,
        scope: narrowScope(scopes.join(' ')),
        codeChallenge: challenge ?? null,
        prompt,
        maxAge: maxAgeText === undefined ? undefined : Number(maxAgeText),
        loginHint: p.get('login_hint'),
        loginAfter: loginAfterText !== undefined && /^\d{1,15}$/.test(loginAfterText) ? Number(loginAfterText) : undefined,
        params: p.entries(),
      },
    };
  }

  /** Sends the authorization response (code or error) to the verified redirect URI, with RFC 9207 `iss`. */
  function redirectTo(reply: FastifyReply, uri: string, params: Record<string, string>): FastifyReply {
    const target = new URL(uri);
    for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
    // RFC 9207: the issuer in every authorization response, so a client talking to several
    // providers cannot be made to send this code to another one (mix-up attacks).
    target.searchParams.set('iss', config.issuer);
    return reply.status(303).header('location', target.toString()).send();
  }

  /** The authorize URL of this request, as the login page's return_to. */
  function authorizeUrl(request: AuthorizationRequest, forceLogin: boolean): string {
    const query = new URLSearchParams();
    for (const [name, value] of request.params) {
      if (name === LOGIN_AFTER) continue;
      // Once the user signed in again, prompt=login has been honoured.
      if (name === 'prompt' && forceLogin) {
        const rest = [...request.prompt].filter((v) => v !== 'login');
        if (rest.length > 0) query.set('prompt', rest.join(' '));
        continue;
      }
      query.set(name, value);
    }
    if (forceLogin) query.set(LOGIN_AFTER, String(authority.deps.clock.now()));
    return `${config.issuer}${OIDC_PATHS.authorize}?${query.toString()}`;
  }

  /** Steps 3–5: the session, the consent, the code. */
  async function complete(request: FastifyRequest, reply: FastifyReply, req: AuthorizationRequest, consented: boolean): Promise<FastifyReply> {
    const state: Record<string, string> = req.state !== undefined ? { state: req.state } : {};
    const presented = readSessionToken(request, config);
    // Only the browser's cookie counts here: the authorization endpoint is a browser flow.
    const current = presented?.source === 'cookie' ? await authority.sessions.authenticate(presented.token) : null;
    const now = authority.deps.clock.now();
    // After the forced login of this very request (LOGIN_AFTER), the session is as fresh as
    // it can be: max_age (even 0) and prompt=login are satisfied, or the user would loop
    // between the login page and here.
    const freshLogin = (s: Authenticated) => req.loginAfter !== undefined && s.session.createdAt >= req.loginAfter;
    const tooOld = (s: Authenticated) => req.maxAge !== undefined && now - s.session.createdAt > req.maxAge * 1000;
    const wantsNewLogin = req.prompt.has('login');
    // A login_hint naming another account than the browser's asks for a sign-in; once the
    // user signed in for this very request, whoever they signed in as is the answer (the
    // hint only pre-filled the form), or a user choosing another account would loop.
    const otherAccount = current !== null && req.loginHint !== undefined && !hintNamesUser(req.loginHint, current.user) && !freshLogin(current);
    const mustLogIn = (s: Authenticated) => (req.loginAfter !== undefined ? !freshLogin(s) : tooOld(s) || wantsNewLogin);
    if (!current || mustLogIn(current) || otherAccount) {
      if (req.prompt.has('none')) return redirectTo(reply, req.redirectUri, { error: 'login_required', error_description: 'The user is not signed in (or must sign in again).', ...state });
      const force = current !== null;
      const login = new URL(`${config.issuer}/login`);
      login.searchParams.set('return_to', authorizeUrl(req, true));
      // The hosted login page shows its form even to a signed-in browser when asked to.
      if (force) login.searchParams.set('prompt', 'login');
      return reply.status(303).header('location', login.toString()).send();
    }

    if (!consented && (req.prompt.has('consent') || !(await oidc.hasConsent(req.client, current.user.id, req.scope)))) {
      if (req.prompt.has('none')) return redirectTo(reply, req.redirectUri, { error: 'consent_required', error_description: 'The user has not allowed this app yet.', ...state });
      const fields = Object.fromEntries(req.params.filter(([name]) => name !== 'prompt'));
      fields.csrf = csrf.issue(request, reply);
      // The form posts to Tessera, which answers with a 303 to the verified redirect URI:
      // Chromium checks form-action against that redirect too, so its origin is allowed.
      return sendPage(reply, 200, renderConsentPage({ appName: req.client.name, username: current.user.username, scope: req.scope, fields }), { formActionOrigins: [new URL(req.redirectUri).origin] });
    }

    const code = await oidc.issueCode({ app: req.client, session: current.session, redirectUri: req.redirectUri, codeChallenge: req.codeChallenge, nonce: req.nonce, scope: req.scope });
    return redirectTo(reply, req.redirectUri, { code, ...state });
  }

  async function handle(request: FastifyRequest, reply: FastifyReply, raw: unknown, consented: boolean): Promise<FastifyReply> {
    const outcome = await verify(raw);
    if ('page' in outcome) return sendPage(reply, outcome.page.status, renderOidcErrorPage(outcome.page.title, outcome.page.message));
    if ('redirect' in outcome) return redirectTo(reply, outcome.redirect.uri, outcome.redirect.params);
    return complete(request, reply, outcome.request, consented);
  }

  // The authorization endpoint takes GET and POST (OpenID Connect Core §3.1.2.1). Its
  // parameters are read by hand, not by a schema: unknown ones are ignored (RFC 6749 §3.1)
  // and a bad one must become an error for the client, not a JSON 400.
  const description = 'OpenID Connect authorization endpoint: response_type=code with PKCE S256; errors go to the redirect_uri only once client and redirect_uri are verified.';
  app.get(OIDC_PATHS.authorize, { schema: { tags: ['oidc'], description, produces: ['text/html'] } }, async (request, reply) => handle(request, reply, request.query, false));
  app.post(OIDC_PATHS.authorize, { schema: { tags: ['oidc'], description, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] } }, async (request, reply) => handle(request, reply, request.body, false));

  app.post(OIDC_PATHS.consent, { schema: { tags: ['oidc'], description: 'The consent form of the authorization endpoint (CSRF-protected).', consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] } }, async (request, reply) => {
    const p = readParams(request.body);
    if (!csrf.matches(request, p.get('csrf'))) {
      return sendPage(reply, 403, renderOidcErrorPage('Please try again', 'This form expired or was not opened from this site. Go back to the app and sign in again.'));
    }
    const outcome = await verify(request.body);
    if ('page' in outcome) return sendPage(reply, outcome.page.status, renderOidcErrorPage(outcome.page.title, outcome.page.message));
    if ('redirect' in outcome) return redirectTo(reply, outcome.redirect.uri, outcome.redirect.params);
    const req = outcome.request;
    csrf.clear(reply);
    if (p.get('decision') !== 'allow') {
      return redirectTo(reply, req.redirectUri, { error: 'access_denied', error_description: 'The user did not allow this app.', ...(req.state !== undefined ? { state: req.state } : {}) });
    }
    const presented = readSessionToken(request, config);
    const current = presented?.source === 'cookie' ? await authority.sessions.authenticate(presented.token) : null;
    if (current) await oidc.grantConsent(req.client, current.user.id, req.scope);
    // Consent was just given (or the session is gone, which complete() sends to login).
    return complete(request, reply, req, true);
  });
}
