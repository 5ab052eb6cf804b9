import type { CoreDeps } from './deps.js';
import { TesseraError } from './errors.js';
import type { Actor, App, AppPatch, AppRecord, OidcClientMetadata } from './model.js';
import { randomBytes } from 'node:crypto';
import { hasForbiddenNameChars, normaliseName } from './names.js';
import { hashSecret, randomToken, verifySecret } from './secrets.js';

/** Input for registering an app. */
export interface NewAppInput {
  clientId?: string;
  name: string;
  trusted?: boolean;
  allowedOrigins?: string[];
  returnUrls?: string[];
  backchannelLogoutUri?: string | null;
  connectors?: Record<string, unknown>;
  /** OpenID Connect client metadata; what is left out takes the defaults of {@link DEFAULT_OIDC_METADATA}. */
  oidc?: Partial<OidcClientMetadata>;
}

/** The OIDC metadata of an app registered without any: a confidential client with no redirect URI yet. */
export const DEFAULT_OIDC_METADATA: OidcClientMetadata = Object.freeze({
  redirectUris: [],
  postLogoutRedirectUris: [],
  grantTypes: ['authorization_code', 'refresh_token'],
  tokenEndpointAuthMethod: 'client_secret_basic',
  backchannelLogoutSessionRequired: false,
  idTokenSignedResponseAlg: 'RS256',
}) as OidcClientMetadata;

/**
 * Checks OIDC client metadata (OpenID Connect Core §3.1.2.1, RFC 6749 §3.1.2): redirect and
 * post-logout URIs are absolute http(s) URLs without a fragment. They are later matched as
 * exact strings, so no normalisation happens here either: what is registered is what must
 * be sent.
 */
export function checkOidcMetadata(m: OidcClientMetadata): OidcClientMetadata {
  for (const [name, list] of [['redirect_uris', m.redirectUris], ['post_logout_redirect_uris', m.postLogoutRedirectUris]] as const) {
    for (const uri of list) {
      let parsed: URL | null = null;
      try {
        parsed = new URL(uri);
      } catch {
        parsed = null;
      }
      if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || uri.includes('#')) {
        throw new TesseraError('INVALID_REQUEST', `${name}: "${uri}" must be an absolute http(s) URL without a fragment.`);
      }
    }
  }
  if (m.grantTypes.includes('refresh_token') && !m.grantTypes.includes('authorization_code')) {
    throw new TesseraError('INVALID_REQUEST', 'grant_types: refresh_token needs authorization_code.');
  }
  if (m.grantTypes.includes('client_credentials') && m.tokenEndpointAuthMethod === 'none') {
    // A public client proves nothing: it cannot be given tokens in its own name.
    throw new TesseraError('INVALID_REQUEST', 'grant_types: client_credentials needs a confidential client (token_endpoint_auth_method other than none).');
  }
  return { ...m, redirectUris: [...m.redirectUris], postLogoutRedirectUris: [...m.postLogoutRedirectUris], grantTypes: [...new Set(m.grantTypes)] };
}

/** The public view of an app: never the secret hash. */
export function toPublicApp(app: AppRecord): App {
  const { secretHash: _omit, ...rest } = app;
  return rest;
}

// Compared against when the client id is unknown, so that unknown and known clients with a
// wrong secret cost the same (no client-id enumeration by timing).
const UNKNOWN_CLIENT_HASH = hashSecret(randomToken(32));
// Apps change rarely and are read on every app-authenticated call and CORS preflight; a
// short cache keeps those reads off the store while several nodes still converge quickly.
const CACHE_MS = 2_000;

/**
 * Apps: register, change, rotate secrets, authenticate with client credentials, and answer
 * the allow-list questions (origins, return URLs).
 *
 * @example
 * ```ts
 * const apps = createAppService(deps);
 * const { app, clientSecret } = await apps.registerApp({ name: 'Forum', trusted: true }, 'admin');
 * const same = await apps.authenticateApp(app.clientId, clientSecret);
 * ```
 */
export function createAppService(deps: CoreDeps) {
  const { store, clock, config } = deps;
  let cache: { at: number; apps: AppRecord[] } | null = null;

  async function all(): Promise<AppRecord[]> {
    if (cache && clock.now() - cache.at < CACHE_MS && clock.now() >= cache.at) return cache.apps;
    cache = { at: clock.now(), apps: await store.listApps() };
    return cache.apps;
  }

  async function audit(actor: Actor, action: string, clientId: string): Promise<void> {
    cache = null;
    await store.appendAudit({ at: clock.now(), actor, action, userId: null, sessionHandle: null, clientId, ip: null, details: {} });
    // After the change is stored: connections opened with the old credentials close now.
    deps.onAppChanged?.(clientId);
  }

  /**
   * A webhook connector needs a signing secret (Standard Webhooks `whsec_…`). Tessera makes
   * one when the admin gives none; it is returned once and never shown in app views.
   */
  function withWebhookSecret(connectors: Record<string, unknown> | undefined): { connectors: Record<string, unknown> | undefined; webhookSecret: string | null } {
    const webhook = connectors?.webhook as { url?: unknown; secret?: unknown } | undefined;
    if (!connectors || !webhook || typeof webhook.url !== 'string' || typeof webhook.secret === 'string') return { connectors, webhookSecret: null };
    const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
    return { connectors: { ...connectors, webhook: { ...webhook, secret: webhookSecret } }, webhookSecret };
  }

  async function registerApp(input: NewAppInput, actor: Actor): Promise<{ app: App; clientSecret: string; webhookSecret: string | null }> {
    const now = clock.now();
    const clientSecret = randomToken(32);
    const { connectors, webhookSecret } = withWebhookSecret(input.connectors);
    const app = await store.createApp({
      clientId: input.clientId ?? `app_${randomToken(12)}`,
      // App names are shown to operators and to users (consent, devices list): same rule as user names.
      name: normaliseName(input.name, 'name'),
      trusted: input.trusted ?? false,
      allowedOrigins: input.allowedOrigins ?? [],
      returnUrls: input.returnUrls ?? [],
      backchannelLogoutUri: input.backchannelLogoutUri ?? null,
      connectors: connectors ?? {},
      oidc: checkOidcMetadata({ ...DEFAULT_OIDC_METADATA, ...input.oidc }),
      secretHash: hashSecret(clientSecret),
      createdAt: now,
      updatedAt: now,
    });
    await audit(actor, 'app.created', app.clientId);
    return { app: toPublicApp(app), clientSecret, webhookSecret };
  }

  async function getApp(clientId: string): Promise<AppRecord> {
    const app = await store.findApp(clientId);
    if (!app) throw new TesseraError('APP_NOT_FOUND');
    return app;
  }

  async function updateApp(clientId: string, input: Omit<AppPatch, 'updatedAt' | 'secretHash' | 'oidc'> & { oidc?: Partial<OidcClientMetadata> }, actor: Actor): Promise<{ app: App; webhookSecret: string | null }> {
    const { oidc: oidcChanges, ...rest } = input;
    const changes = rest.name !== undefined ? { ...rest, name: normaliseName(rest.name, 'name') } : rest;
    const { connectors, webhookSecret } = withWebhookSecret(changes.connectors);
    // Metadata is stored as a whole: the given fields over the current ones.
    const defined = oidcChanges ? Object.fromEntries(Object.entries(oidcChanges).filter(([, v]) => v !== undefined)) : {};
    const oidc = Object.keys(defined).length > 0 ? checkOidcMetadata({ ...(await getApp(clientId)).oidc, ...defined }) : undefined;
    const app = await store.updateApp(clientId, { ...changes, ...(connectors ? { connectors } : {}), ...(oidc ? { oidc } : {}), updatedAt: clock.now() });
    if (!app) throw new TesseraError('APP_NOT_FOUND');
    await audit(actor, 'app.updated', clientId);
    return { app: toPublicApp(app), webhookSecret };
  }

  async function rotateSecret(clientId: string, actor: Actor): Promise<string> {
    const clientSecret = randomToken(32);
    const app = await store.updateApp(clientId, { secretHash: hashSecret(clientSecret), updatedAt: clock.now() });
    if (!app) throw new TesseraError('APP_NOT_FOUND');
    await audit(actor, 'app.secret_rotated', clientId);
    return clientSecret;
  }

  async function deleteApp(clientId: string, actor: Actor): Promise<void> {
    if (!(await store.deleteApp(clientId))) throw new TesseraError('APP_NOT_FOUND');
    await audit(actor, 'app.deleted', clientId);
  }

  /**
   * Whether a connection authenticated as `bound` may go on, now that the app reads `current`
   * (null: deleted). It may not once the secret was rotated (the docs promise the old secret
   * "stops working at once", and a stream opened with it is that secret still working) or
   * the app is gone or disabled. The one rule for every long-lived connection.
   */
  function credentialsStillValid(bound: AppRecord, current: AppRecord | null): boolean {
    if (!current || current.secretHash !== bound.secretHash) return false;
    return (current as AppRecord & { disabled?: boolean }).disabled !== true;
  }

  /** The app whose id and secret these are, or null. Constant-time in the secret. */
  async function authenticateApp(clientId: string, secret: string): Promise<AppRecord | null> {
    // A client id with a control character (a NUL from `%00` in Basic credentials) names no
    // app, and PostgreSQL would refuse it as a parameter: answer "unknown client" without asking.
    const app = clientId.length <= 128 && !hasForbiddenNameChars(clientId) ? await store.findApp(clientId) : null;
    const ok = verifySecret(secret, app?.secretHash ?? UNKNOWN_CLIENT_HASH);
    return app && ok ? app : null;
  }

  async function listApps(): Promise<App[]> {
    return (await store.listApps()).map(toPublicApp);
  }

  /** True when some registered app lists this exact origin. */
  async function isRegisteredOrigin(origin: string): Promise<boolean> {
    return (await all()).some((a) => a.allowedOrigins.includes(origin));
  }

  /** Every allowed return URL: the apps' lists, the configured extras and the default pages. */
  async function returnUrlAllowList(): Promise<Set<string>> {
    const set = new Set<string>(config.allowedReturnUrls);
    for (const app of await all()) for (const url of app.returnUrls) set.add(url);
    return set;
  }

  /** The app with this client id, read through the short cache (the OIDC endpoints read it on every call). */
  async function findClient(clientId: string): Promise<AppRecord | null> {
    if (clientId.length > 128) return null;
    return (await all()).find((a) => a.clientId === clientId) ?? null;
  }

  return { findClient, registerApp, getApp, updateApp, rotateSecret, deleteApp, authenticateApp, credentialsStillValid, listApps, isRegisteredOrigin, returnUrlAllowList };
}

/** The app service returned by {@link createAppService}. */
export type AppService = ReturnType<typeof createAppService>;
