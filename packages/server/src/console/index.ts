import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext, TesseraApp } from '../context.js';
import { classify } from '../error-handler.js';
import { limitedFor, recordFailures, type LimitKey } from '../failure-limits.js';
import { createFormCsrf, renderMessagePage, renderPage, sendPage } from '../pages/index.js';
import { CONSOLE_CSRF_COOKIE, CONSOLE_PATH, clearConsoleCookie, readConsoleToken, setConsoleCookie } from './auth.js';
import { CONSOLE_ROUTE, seeOther, formText, showPage, type ConsoleKit } from './kit.js';
import { field, formError, hidden, notice, type FieldErrors } from './layout.js';
import { appsPages } from './apps.js';
import { overviewPage } from './overview.js';
import { revocationsPage } from './revocations.js';
import { sessionsPages } from './sessions.js';
import { ssfPages } from './ssf.js';
import { usersPages } from './users.js';

// Routes that answer without a console sign-in: the sign-in form itself.
const PUBLIC = new Set([`${CONSOLE_PATH}/login`]);

const isApiPath = (request: FastifyRequest) => /^\/admin\/api(\/|$|\?)/.test(request.url);

function renderConsoleLogin(input: { csrf: string; errors?: FieldErrors; notice?: string }): string {
  const errors = input.errors ?? {};
  return renderPage('Admin sign-in', `<h1>Tessera admin</h1>${notice(input.notice)}${formError(errors.form)}
<form method="post" action="${CONSOLE_PATH}/login">${hidden('csrf', input.csrf)}
${field({ name: 'token', label: 'Admin token', type: 'password', required: true, autocomplete: 'off', hint: 'TESSERA_ADMIN_TOKEN, or a token made with `tessera admin-token create`.', errors })}
<button type="submit">Sign in to the console</button></form>`);
}

/**
 * The admin console: server-rendered pages under /admin for operators (overview, users and
 * their sessions, a session's logout deliveries, apps, the revocation log, the Shared Signals
 * streams). It has its own
 * sign-in (an admin token, exchanged for a console session: console/auth.ts) and its own
 * cookie scoped to /admin; user session cookies mean nothing here. Every form is a plain
 * POST with the console's CSRF token, checked for every POST in one place below. The pages
 * call the same core operations as the admin API (routes/admin.ts); none of them shows a
 * token, a password hash, or a secret after the response that created it.
 */
export async function adminConsoleRoutes(app: TesseraApp, context: ServerContext, onDeliveriesQueued: () => void = () => {}): Promise<void> {
  const { authority, config, limits } = context;
  // Double-submit token scoped to /admin (pages/form-csrf.ts says why), kept across page
  // loads so that several console tabs keep working.
  const csrf = createFormCsrf({ cookie: CONSOLE_CSRF_COOKIE, path: CONSOLE_PATH, config, keepExisting: true });
  const kit: ConsoleKit = { ...context, csrf, onDeliveriesQueued };

  // Errors of console routes are pages too (with the catalogue code), never JSON or a stack.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const tessera = classify(error);
    if (tessera.status >= 500) request.log.error({ err: error }, 'console request failed');
    if (tessera.code === 'RATE_LIMITED') {
      const retryAfter = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds;
      if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
    }
    const message = tessera.expose ? tessera.message : 'An internal error occurred.';
    return sendPage(reply, tessera.status, renderMessagePage(`Error ${tessera.status}`, `${message} (${tessera.code})`, CONSOLE_PATH));
  });
  app.setNotFoundHandler((request, reply) => {
    // Unknown paths under the admin API (its own context, /admin/api) answer as the API does.
    if (isApiPath(request)) return reply.status(404).type('application/json').send({ error: 'NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` });
    return sendPage(reply, 404, renderMessagePage('Not found', 'There is no such console page. (NOT_FOUND)', CONSOLE_PATH));
  });

  // Every console page needs a live console sign-in; without one the browser goes to the
  // sign-in form. Only the console cookie counts: a user's session cookie (or a bearer
  // token) signs nobody in here.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (isApiPath(request)) return;
    // The matched route's pattern, not the raw URL: encodings of the path cannot dodge this.
    if (PUBLIC.has(request.routeOptions.url ?? '')) return;
    const token = readConsoleToken(request);
    if (token && (await authority.admin.authenticateConsole(token))) return;
    return seeOther(reply, `${CONSOLE_PATH}/login`);
  });
  // CSRF on every state change of the console, in one place: no form can forget it.
  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST') return;
    if (csrf.matches(request, formText(request.body, 'csrf'))) return;
    return sendPage(reply, 403, renderMessagePage('Please try again', 'This form expired or was not opened from this site. Reload the page and try again. (CSRF_FAILED)', CONSOLE_PATH));
  });

  const browser = { tags: ['console'], produces: ['text/html'] };
  const form = { ...CONSOLE_ROUTE, produces: ['text/html'], consumes: ['application/x-www-form-urlencoded'] };

  app.get('/login', { schema: { ...browser, description: 'The admin console sign-in form (admin token).' } }, async (request, reply) => {
    const token = readConsoleToken(request);
    if (token && (await authority.admin.authenticateConsole(token))) return seeOther(reply, CONSOLE_PATH);
    const signedOut = (request.query as Record<string, unknown>).signed_out !== undefined;
    return showPage(kit, request, reply, 200, (t) => renderConsoleLogin({ csrf: t, notice: signedOut ? 'You are signed out of the console.' : undefined }));
  });

  app.post('/login', { schema: { ...browser, consumes: ['application/x-www-form-urlencoded'], description: 'Signs in to the admin console with an admin token; sets the console cookie (Path=/admin).' } }, async (request, reply) => {
    const token = (formText(request.body, 'token') ?? '').trim();
    if (token === '') return showPage(kit, request, reply, 400, (t) => renderConsoleLogin({ csrf: t, errors: { token: 'Enter the admin token.' } }));
    // The admin token is high-entropy: a right one always signs in (as on the admin API),
    // so nobody is locked out by someone else's failures from the same address. Wrong ones
    // are counted per address (failure-limits.ts) and, past the limit, answered 429.
    const keys: LimitKey[] = [[limits.credentialByAddress, request.ip]];
    // Checked by hash in constant time (admin-tokens.ts); over-long input is never a token.
    const signedIn = token.length <= 300 ? await authority.admin.signInToConsole(token) : null;
    if (signedIn) {
      setConsoleCookie(reply, config, signedIn.token);
      // A fresh CSRF token for the signed-in console (the sign-in form's one is dropped).
      csrf.clear(reply);
      return seeOther(reply, CONSOLE_PATH);
    }
    const wait = limitedFor(keys);
    recordFailures(keys);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      return showPage(kit, request, reply, 429, (t) => renderConsoleLogin({ csrf: t, errors: { form: `Too many wrong tokens from this address. Try again in ${wait} seconds. (RATE_LIMITED)` } }));
    }
    return showPage(kit, request, reply, 401, (t) => renderConsoleLogin({ csrf: t, errors: { token: 'That is not a valid admin token.' } }));
  });

  app.post('/logout', { schema: { ...form, description: 'Ends this console sign-in and clears its cookie.' } }, async (request, reply) => {
    const token = readConsoleToken(request);
    if (token) await authority.admin.signOutOfConsole(token);
    clearConsoleCookie(reply, config);
    csrf.clear(reply);
    return seeOther(reply, `${CONSOLE_PATH}/login?signed_out=1`);
  });

  await overviewPage(app, kit);
  await usersPages(app, kit);
  await sessionsPages(app, kit);
  await appsPages(app, kit);
  await revocationsPage(app, kit);
  await ssfPages(app, kit);
}
