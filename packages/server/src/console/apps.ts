import { Type } from '@fastify/type-provider-typebox';
import { isTesseraError, type App, type AppRecord } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TesseraApp } from '../context.js';
import { AppBody, AppPatchBody, IdParams } from '../schemas.js';
import { oidcMetadataOf } from '../views.js';
import { checkAgainst, formText, lines, seeOther, showPage, type ConsoleKit, CONSOLE_ROUTE } from './kit.js';
import { checkbox, field, formError, hidden, notice, postButton, renderConsolePage, table, text, time, type FieldErrors } from './layout.js';

const APP_DONE: Record<string, string> = { saved: 'The app is saved.', deleted: 'The app is deleted.' };

// Worded for the form; the rules themselves are the admin API's schema (schemas.ts AppBody).
const MESSAGES: Record<string, string> = {
  client_id: 'A client id has at most 128 letters, digits or _ . @ : - characters, or leave it empty.',
  name: 'Enter a name of at most 128 characters.',
  allowed_origins: 'Each line must be an origin like https://forum.example.com (scheme and host, no path).',
  return_urls: 'Each line must be an absolute http(s) URL.',
  backchannel_logout_uri: 'Enter an absolute http(s) URL, or leave it empty.',
  redirect_uris: 'Each line must be an absolute http(s) URL without a fragment.',
  post_logout_redirect_uris: 'Each line must be an absolute http(s) URL without a fragment.',
  connectors: 'Enter the webhook\'s absolute http(s) URL, or leave it empty.',
};

const form = { ...CONSOLE_ROUTE, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] };
const DoneQuery = Type.Object({ done: Type.Optional(Type.String({ maxLength: 32 })) });

/** The form's values as text (what the operator typed, shown again next to errors). */
type AppValues = Record<'client_id' | 'name' | 'trusted' | 'allowed_origins' | 'return_urls' | 'backchannel_logout_uri' | 'webhook_url' | 'redirect_uris' | 'post_logout_redirect_uris', string>;

function valuesOf(app: App): AppValues {
  const webhook = app.connectors.webhook as { url?: unknown } | undefined;
  return {
    client_id: app.clientId,
    name: app.name,
    trusted: app.trusted ? '1' : '',
    allowed_origins: app.allowedOrigins.join('\n'),
    return_urls: app.returnUrls.join('\n'),
    backchannel_logout_uri: app.backchannelLogoutUri ?? '',
    webhook_url: typeof webhook?.url === 'string' ? webhook.url : '',
    redirect_uris: app.oidc.redirectUris.join('\n'),
    post_logout_redirect_uris: app.oidc.postLogoutRedirectUris.join('\n'),
  };
}

function readValues(body: unknown): AppValues {
  const t = (name: string) => (formText(body, name) ?? '').trim();
  return {
    client_id: t('client_id'), name: t('name'), trusted: formText(body, 'trusted') === '1' ? '1' : '',
    allowed_origins: t('allowed_origins'), return_urls: t('return_urls'), backchannel_logout_uri: t('backchannel_logout_uri'),
    webhook_url: t('webhook_url'), redirect_uris: t('redirect_uris'), post_logout_redirect_uris: t('post_logout_redirect_uris'),
  };
}

/** The app's settings fields (register and edit share them). */
function settingsFields(v: Partial<AppValues>, errors: FieldErrors, register: boolean): string {
  // The webhook URL is the form's view of connectors.webhook.url; its errors are the connectors'.
  const webhookErrors = { webhook_url: errors.connectors };
  return `${register ? field({ name: 'client_id', label: 'Client id (optional)', value: v.client_id, errors, hint: 'Left empty, Tessera makes one (app_…).', autocomplete: 'off' }) : ''}
${field({ name: 'name', label: 'Name', required: true, value: v.name, errors, autocomplete: 'off' })}
${checkbox({ name: 'trusted', label: 'Trusted (may start sessions for users and create users from claims)', checked: v.trusted === '1' })}
${field({ name: 'allowed_origins', label: 'Allowed origins (one per line)', textarea: true, value: v.allowed_origins, errors, hint: 'Origins whose browser calls (logout, CORS) Tessera accepts.' })}
${field({ name: 'return_urls', label: 'Return URLs (one per line)', textarea: true, value: v.return_urls, errors, hint: 'Where the login and logout flows may send the browser back (exact match).' })}
${field({ name: 'backchannel_logout_uri', label: 'Back-channel logout URI', type: 'url', value: v.backchannel_logout_uri, errors })}
${field({ name: 'webhook_url', label: 'Webhook connector URL', type: 'url', value: v.webhook_url, errors: webhookErrors, hint: 'A signed webhook for apps that cannot receive back-channel logout. Its signing secret is made by Tessera and shown once.' })}
${field({ name: 'redirect_uris', label: 'OpenID Connect redirect URIs (one per line)', textarea: true, value: v.redirect_uris, errors })}
${field({ name: 'post_logout_redirect_uris', label: 'Post-logout redirect URIs (one per line)', textarea: true, value: v.post_logout_redirect_uris, errors })}`;
}

/** The page that shows a freshly made secret: the only time it is ever shown. */
function renderSecrets(input: { app: App; clientSecret?: string; webhookSecret?: string | null; what: string }): string {
  const secret = (label: string, id: string, value: string) => `<h2 id="${id}-h">${text(label)}</h2><code class="secret" id="${id}">${text(value)}</code>`;
  return `<p class="notice" role="status">${text(input.what)} Copy the secret now: Tessera keeps only its hash and will not show it again.</p>
<dl class="facts"><dt>Name</dt><dd>${text(input.app.name)}</dd><dt>Client id</dt><dd><code>${text(input.app.clientId)}</code></dd></dl>
${input.clientSecret ? secret('Client secret', 'client-secret', input.clientSecret) : ''}
${input.webhookSecret ? secret('Webhook signing secret', 'webhook-secret', input.webhookSecret) : ''}
<p><a href="/admin/apps/${encodeURIComponent(input.app.clientId)}">Continue to the app</a></p>`;
}

/**
 * The console's apps: list, register, edit (allowed origins, return URLs, back-channel URI,
 * the webhook connector, OIDC redirect URIs), rotate the secret, delete. A secret is shown
 * once, on the response that made it (a page, not a redirect, sent no-store like every
 * page); no other page ever shows one. The form is checked against the admin API's own body
 * schema, then the same core calls run (authority.apps).
 */
export async function appsPages(app: TesseraApp, kit: ConsoleKit): Promise<void> {
  const { authority } = kit;
  const by = 'admin' as const;

  async function showList(request: FastifyRequest, reply: FastifyReply, status: number, extra: { done?: string; errors?: FieldErrors; values?: Partial<AppValues> } = {}) {
    const apps = await authority.apps.listApps();
    const rows = apps.map((a) => [
      `<a href="/admin/apps/${encodeURIComponent(a.clientId)}">${text(a.name)}</a>`,
      `<code>${text(a.clientId)}</code>`,
      a.trusted ? 'yes' : 'no',
      text(a.backchannelLogoutUri ?? '—'),
      typeof (a.connectors.webhook as { url?: unknown } | undefined)?.url === 'string' ? 'webhook' : '—',
      time(a.createdAt),
    ]);
    const errors = extra.errors ?? {};
    return showPage(kit, request, reply, status, (csrf) => renderConsolePage({
      title: 'Apps', section: 'apps', csrf,
      body: `${notice(extra.done ? APP_DONE[extra.done] : undefined)}${table('Registered apps', ['Name', 'Client id', 'Trusted', 'Back-channel logout', 'Connectors', 'Registered'], rows, 'No app is registered yet.')}
<h2 id="register">Register an app</h2>${formError(errors.form)}
<form method="post" action="/admin/apps">${hidden('csrf', csrf)}${settingsFields(extra.values ?? {}, errors, true)}<button type="submit">Register app</button></form>`,
    }));
  }

  async function showApp(request: FastifyRequest, reply: FastifyReply, record: AppRecord, status: number, extra: { done?: string; errors?: FieldErrors; values?: Partial<AppValues> } = {}) {
    const errors = extra.errors ?? {};
    const base = `/admin/apps/${encodeURIComponent(record.clientId)}`;
    return showPage(kit, request, reply, status, (csrf) => renderConsolePage({
      title: `App ${record.name}`, section: 'apps', csrf,
      body: `${notice(extra.done ? APP_DONE[extra.done] : undefined)}
<dl class="facts"><dt>Client id</dt><dd><code>${text(record.clientId)}</code></dd><dt>Registered</dt><dd>${time(record.createdAt)}</dd><dt>Changed</dt><dd>${time(record.updatedAt)}</dd></dl>
<div class="actions">${postButton(`${base}/secret`, csrf, 'Rotate the client secret', { secondary: true })}<a href="/admin/revocations?app=${encodeURIComponent(record.clientId)}">Revocations of this app</a></div>
<p class="hint">Rotating makes a new secret, shown once; the old one stops working at once.</p>
<h2 id="settings">Settings</h2>${formError(errors.form)}
<form method="post" action="${base}">${hidden('csrf', csrf)}${settingsFields(extra.values ?? valuesOf(record), errors, false)}<button type="submit">Save</button></form>
<h2 id="delete">Delete the app</h2>
<form method="post" action="${base}/delete">${hidden('csrf', csrf)}${checkbox({ name: 'confirm', label: `Yes, delete ${record.name}`, errors })}<button type="submit" class="secondary">Delete app</button></form>`,
    }));
  }

  /** A core refusal of the settings, as an error next to the field it names. */
  function coreErrors(error: unknown): FieldErrors | null {
    if (isTesseraError(error, 'APP_CONFLICT')) return { client_id: 'An app with this client id already exists.' };
    if (isTesseraError(error, 'INVALID_NAME')) return { name: error.message };
    if (isTesseraError(error, 'INVALID_REQUEST')) {
      const named = /^([a-z_]+):/.exec(error.message)?.[1];
      return named && MESSAGES[named] ? { [named]: error.message } : { form: error.message };
    }
    return null;
  }

  app.get('/apps', { schema: { ...CONSOLE_ROUTE, produces: ['text/html'], querystring: DoneQuery, description: 'Admin console: registered apps; register one.' } }, async (request, reply) => showList(request, reply, 200, { done: request.query.done }));

  app.post('/apps', { schema: { ...form, description: 'Admin console: register an app (POST /admin/api/apps); the secret is shown once, on this response.' } }, async (request, reply) => {
    const v = readValues(request.body);
    const body = {
      ...(v.client_id ? { client_id: v.client_id } : {}), name: v.name, trusted: v.trusted === '1',
      allowed_origins: lines(v.allowed_origins), return_urls: lines(v.return_urls), backchannel_logout_uri: v.backchannel_logout_uri || null,
      redirect_uris: lines(v.redirect_uris), post_logout_redirect_uris: lines(v.post_logout_redirect_uris),
      ...(v.webhook_url ? { connectors: { webhook: { url: v.webhook_url } } } : {}),
    };
    const errors = v.name === '' ? { name: 'Enter a name.' } : checkAgainst(AppBody, body, MESSAGES);
    if (v.webhook_url && !/^https?:\/\/\S+$/.test(v.webhook_url)) errors.connectors = MESSAGES.connectors;
    if (Object.keys(errors).length > 0) return showList(request, reply, 400, { errors, values: v });
    try {
      const created = await authority.apps.registerApp({ clientId: body.client_id, name: body.name, trusted: body.trusted, allowedOrigins: body.allowed_origins, returnUrls: body.return_urls, backchannelLogoutUri: body.backchannel_logout_uri, connectors: body.connectors, oidc: oidcMetadataOf(body) }, by);
      return showPage(kit, request, reply, 201, (csrf) => renderConsolePage({ title: 'App registered', section: 'apps', csrf, body: renderSecrets({ app: created.app, clientSecret: created.clientSecret, webhookSecret: created.webhookSecret, what: 'The app is registered.' }) }));
    } catch (error) {
      const errs = coreErrors(error);
      if (errs) return showList(request, reply, isTesseraError(error, 'APP_CONFLICT') ? 409 : 400, { errors: errs, values: v });
      throw error;
    }
  });

  app.get('/apps/:id', { schema: { ...CONSOLE_ROUTE, produces: ['text/html'], params: IdParams, querystring: DoneQuery, description: 'Admin console: one app\'s settings.' } }, async (request, reply) =>
    showApp(request, reply, await authority.apps.getApp(request.params.id), 200, { done: request.query.done }));

  app.post('/apps/:id', { schema: { ...form, params: IdParams, description: 'Admin console: change an app\'s settings (PATCH /admin/api/apps/:id).' } }, async (request, reply) => {
    const record = await authority.apps.getApp(request.params.id);
    const v = { ...readValues(request.body), client_id: record.clientId };
    const current = record.connectors.webhook as Record<string, unknown> | undefined;
    const currentUrl = typeof current?.url === 'string' ? current.url : '';
    // The webhook: unchanged → connectors untouched; a new URL keeps the stored signing
    // secret (never shown); cleared → removed; a first one gets a new secret, shown once.
    let connectors: Record<string, unknown> | undefined;
    if (v.webhook_url !== currentUrl) {
      const { webhook: _old, ...others } = record.connectors;
      connectors = v.webhook_url ? { ...others, webhook: { ...(current ?? {}), url: v.webhook_url } } : others;
    }
    const body = {
      name: v.name, trusted: v.trusted === '1', allowed_origins: lines(v.allowed_origins), return_urls: lines(v.return_urls),
      backchannel_logout_uri: v.backchannel_logout_uri || null, redirect_uris: lines(v.redirect_uris), post_logout_redirect_uris: lines(v.post_logout_redirect_uris),
      ...(connectors ? { connectors } : {}),
    };
    const errors = v.name === '' ? { name: 'Enter a name.' } : checkAgainst(AppPatchBody, body, MESSAGES);
    if (v.webhook_url && !/^https?:\/\/\S+$/.test(v.webhook_url)) errors.connectors = MESSAGES.connectors;
    if (Object.keys(errors).length > 0) return showApp(request, reply, record, 400, { errors, values: v });
    try {
      const { app: updated, webhookSecret } = await authority.apps.updateApp(record.clientId, { name: body.name, trusted: body.trusted, allowedOrigins: body.allowed_origins, returnUrls: body.return_urls, backchannelLogoutUri: body.backchannel_logout_uri, connectors, oidc: oidcMetadataOf(body) }, by);
      if (webhookSecret) return showPage(kit, request, reply, 200, (csrf) => renderConsolePage({ title: 'App saved', section: 'apps', csrf, body: renderSecrets({ app: updated, webhookSecret, what: 'The app is saved with a new webhook.' }) }));
      return seeOther(reply, `/admin/apps/${encodeURIComponent(record.clientId)}?done=saved`);
    } catch (error) {
      const errs = coreErrors(error);
      if (errs) return showApp(request, reply, record, 400, { errors: errs, values: v });
      throw error;
    }
  });

  app.post('/apps/:id/secret', { schema: { ...form, params: IdParams, description: 'Admin console: rotate an app\'s client secret (shown once, on this response).' } }, async (request, reply) => {
    const record = await authority.apps.getApp(request.params.id);
    const clientSecret = await authority.apps.rotateSecret(record.clientId, by);
    const { secretHash: _never, ...shown } = record;
    return showPage(kit, request, reply, 200, (csrf) => renderConsolePage({ title: 'Secret rotated', section: 'apps', csrf, body: renderSecrets({ app: shown, clientSecret, what: 'The client secret is rotated; the old one no longer works.' }) }));
  });

  app.post('/apps/:id/delete', { schema: { ...form, params: IdParams, description: 'Admin console: delete an app; needs the confirmation box.' } }, async (request, reply) => {
    const record = await authority.apps.getApp(request.params.id);
    if (formText(request.body, 'confirm') !== '1') return showApp(request, reply, record, 400, { errors: { confirm: 'Tick this box to confirm the deletion.' } });
    await authority.apps.deleteApp(record.clientId, by);
    return seeOther(reply, '/admin/apps?done=deleted');
  });
}
