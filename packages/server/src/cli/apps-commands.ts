import type { Static } from '@fastify/type-provider-typebox';
import { AppBody, AppPatchBody } from '../schemas.js';
import { appChangesOf, appJson, oidcMetadataOf } from '../views.js';
import { explain, UsageError, type Args, type Command, type OptionSpec } from './command.js';
import { formatTable, formatTime, printable } from './output.js';
import { validateInput, type FlagNames } from './validate-input.js';

const URL_EXPECTED = 'an http(s) URL, e.g. https://forum.example.com/';

/**
 * The app settings the CLI takes, under the standard OpenID Connect client metadata names
 * (RFC 7591, as in the admin API's JSON) with the earlier kebab-case flags as aliases. A
 * list flag may be repeated; both spellings of one list add up.
 */
const SETTINGS = {
  client_name: { alias: 'name', type: 'string', value: 'NAME', help: 'Display name of the app (client_name)' },
  redirect_uris: { alias: 'redirect-uri', type: 'list', value: 'URL', help: 'OIDC: exact redirect_uri of the client (repeatable)', expected: URL_EXPECTED },
  post_logout_redirect_uris: { alias: 'post-logout-redirect-uri', type: 'list', value: 'URL', help: 'OIDC: exact post_logout_redirect_uri (repeatable)', expected: URL_EXPECTED },
  grant_types: { alias: 'grant-type', type: 'list', value: 'TYPE', help: 'OIDC: authorization_code, refresh_token, client_credentials (a Shared Signals receiver; repeatable; default the first two)', expected: 'authorization_code, refresh_token or client_credentials' },
  token_endpoint_auth_method: { alias: 'token-endpoint-auth-method', type: 'string', value: 'METHOD', help: 'OIDC: client_secret_basic (default), client_secret_post, or none (a public client, PKCE required)', expected: 'client_secret_basic, client_secret_post or none' },
  backchannel_logout_uri: { alias: 'backchannel-uri', type: 'string', value: 'URL', help: 'Back-channel logout endpoint of the app', expected: URL_EXPECTED },
  backchannel_logout_session_required: { alias: 'backchannel-session-required', type: 'boolean', help: 'OIDC: every logout token carries sid (a user-wide end sends one per session)' },
  id_token_signed_response_alg: { alias: 'id-token-alg', type: 'string', value: 'ALG', help: 'OIDC: RS256 (default), EdDSA or ES256', expected: 'RS256, EdDSA or ES256' },
  allowed_origins: { alias: 'origin', type: 'list', value: 'URL', help: 'Origin allowed to call the XHR logout, e.g. https://forum.example.com (repeatable)', expected: 'an origin: scheme://host[:port], no path, e.g. https://forum.example.com' },
  return_urls: { alias: 'return-url', type: 'list', value: 'URL', help: 'Exact URL a browser may return to after login or logout (repeatable)', expected: URL_EXPECTED },
} as const satisfies Record<string, { alias: string; type: 'string' | 'list' | 'boolean'; value?: string; help: string; expected?: string }>;
type Setting = keyof typeof SETTINGS;

/** Both spellings of every setting as parseArgs options; `update` adds --no-… for the booleans. */
function settingOptions(forUpdate: boolean): Record<string, OptionSpec> {
  const options: Record<string, OptionSpec> = {};
  for (const [name, s] of Object.entries(SETTINGS)) {
    const spec: OptionSpec = { type: s.type === 'boolean' ? 'boolean' : 'string', ...('value' in s ? { value: s.value } : {}), help: s.help, ...(s.type === 'list' ? { multiple: true } : {}) };
    options[name] = spec;
    options[s.alias] = { ...spec, help: `Same as --${name}` };
    if (forUpdate && s.type === 'boolean') options[`no-${name}`] = { type: 'boolean', help: `Turn --${name} off` };
  }
  options.connectors = { type: 'string', value: 'JSON', help: 'Connector settings as JSON, e.g. \'{"webhook":{"url":"https://forum.example.com/hook"}}\' (replaces all; \'{}\' removes them)' };
  options.trusted = { type: 'boolean', help: 'May start sessions for users it authenticated and create users from claims' };
  if (forUpdate) options['no-trusted'] = { type: 'boolean', help: 'Turn --trusted off' };
  return options;
}

/**
 * The admin API body of the settings given on the command line, and the flag each field
 * came from (to name it in an error). With `clearing` (update), a list given once as ''
 * becomes empty and an empty --backchannel_logout_uri removes it.
 */
function settingsBody(args: Args, clearing: boolean): { body: Record<string, unknown>; flags: FlagNames } {
  const body: Record<string, unknown> = {};
  const flags: FlagNames = {};
  for (const [name, s] of Object.entries(SETTINGS) as Array<[Setting, (typeof SETTINGS)[Setting]]>) {
    const given = [name, s.alias].filter((f) => (s.type === 'list' ? args.strings(f).length > 0 : s.type === 'boolean' ? args.flag(f) : args.string(f) !== undefined));
    const off = s.type === 'boolean' && args.flag(`no-${name}`);
    if (given.length === 0 && !off) continue;
    const flag = `--${given[0] ?? `no-${name}`}`;
    flags[name] = { flag, ...('expected' in s ? { expected: s.expected } : {}) };
    if (s.type === 'boolean') {
      if (off && given.length > 0) throw new UsageError(`--${name} and --no-${name} contradict each other`);
      body[name] = !off;
    } else if (s.type === 'list') {
      const values = [...args.strings(name), ...args.strings(s.alias)];
      body[name] = clearing && values.length === 1 && values[0] === '' ? [] : values;
    } else {
      const values = given.map((f) => args.string(f)!);
      if (values.length === 2 && values[0] !== values[1]) throw new UsageError(`--${name} and --${s.alias} differ; give one of them`);
      body[name] = clearing && name === 'backchannel_logout_uri' && values[0] === '' ? null : values[0];
    }
  }
  const connectors = args.string('connectors');
  if (connectors !== undefined) {
    try {
      body.connectors = JSON.parse(connectors) as unknown;
    } catch {
      throw new UsageError('--connectors: not valid JSON');
    }
    flags.connectors = { flag: '--connectors', expected: 'a JSON object' };
  }
  if (args.flag('trusted') && args.flag('no-trusted')) throw new UsageError('--trusted and --no-trusted contradict each other');
  if (args.flag('trusted')) body.trusted = true;
  if (args.flag('no-trusted')) body.trusted = false;
  return { body, flags };
}

const register: Command = {
  path: ['apps', 'register'],
  summary: 'Register an app; prints its client id and secret (the secret only this once).',
  notes: ['The settings take the standard OpenID Connect client metadata names (--redirect_uris, --token_endpoint_auth_method, …) or the short kebab-case flags; `apps create` is the same command.'],
  options: {
    'client-id': { type: 'string', value: 'ID', help: 'Client id to use (default: a random app_… id)' },
    ...settingOptions(false),
  },
  async run(ctx, args) {
    const { body: settings, flags } = settingsBody(args, false);
    const body = {
      ...(args.string('client-id') === undefined ? {} : { client_id: args.string('client-id') }),
      trusted: false,
      ...settings,
    } as Static<typeof AppBody>;
    validateInput(AppBody, body, { client_id: { flag: '--client-id', expected: 'letters, digits and _ . @ : -' }, ...flags });
    const name = body.client_name;
    if (name === undefined || name === '') throw new UsageError('missing --name (or --client_name)');
    const authority = await ctx.authority();
    const { app, clientSecret, webhookSecret } = await explain(
      authority.apps.registerApp(
        { clientId: body.client_id, name, trusted: body.trusted, allowedOrigins: body.allowed_origins, returnUrls: body.return_urls, backchannelLogoutUri: body.backchannel_logout_uri ?? null, connectors: body.connectors as Record<string, unknown> | undefined, oidc: oidcMetadataOf(body) },
        'admin',
      ),
      { APP_CONFLICT: `an app with client id "${body.client_id}" exists` },
    );
    const once = `The client secret is shown only this once: store it now. A lost secret can be replaced with: tessera apps rotate-secret --client-id ${app.clientId}`;
    if (args.flag('json')) {
      ctx.json({ app: appJson(app), client_secret: clientSecret, ...(webhookSecret ? { webhook_secret: webhookSecret } : {}) });
      ctx.note(once);
      return;
    }
    ctx.out(`Registered app "${printable(app.name)}"${app.trusted ? ' (trusted)' : ''}.`);
    ctx.out(`  client_id:      ${app.clientId}`);
    ctx.out(`  client_secret:  ${clientSecret}`);
    if (webhookSecret) ctx.out(`  webhook_secret: ${webhookSecret}`);
    ctx.out(once);
  },
};

/**
 * `tessera apps register | create | update | list | rotate-secret`: register apps, change
 * their settings and OIDC client metadata, and manage their client secrets. A client
 * secret is printed once, when it is created, and never again.
 *
 * @example
 * ```sh
 * tessera apps register --client_name wiki --redirect_uris https://wiki.example.com/cb --token_endpoint_auth_method none
 * tessera apps update wiki --post_logout_redirect_uris https://wiki.example.com/bye
 * ```
 */
export const appsCommands: Command[] = [
  register,
  { ...register, path: ['apps', 'create'], summary: 'Register an app (the same as apps register).' },
  {
    path: ['apps', 'update'],
    summary: 'Change an app\'s settings and OIDC client metadata (what PATCH /admin/api/apps/:id changes, checked the same way).',
    positional: { value: 'CLIENT_ID', help: 'the app to change (or --client-id)' },
    notes: [
      'Only the settings given change. A list flag replaces the whole list (repeat it for several values); give it once as \'\' to empty the list. --backchannel_logout_uri \'\' removes the back-channel endpoint.',
    ],
    options: {
      'client-id': { type: 'string', value: 'ID', help: 'The app (instead of the CLIENT_ID argument)' },
      ...settingOptions(true),
    },
    async run(ctx, args) {
      const positional = args.positional();
      const flag = args.string('client-id');
      if (positional !== undefined && flag !== undefined && positional !== flag) throw new UsageError('the CLIENT_ID argument and --client-id differ');
      const clientId = positional ?? flag;
      if (clientId === undefined || clientId === '') throw new UsageError('missing CLIENT_ID (the app to change)');
      const { body, flags } = settingsBody(args, true);
      if (Object.keys(body).length === 0) throw new UsageError('nothing to change: give at least one setting');
      validateInput(AppPatchBody, body, flags);
      const patch = body as Static<typeof AppPatchBody>;
      const authority = await ctx.authority();
      const { app, webhookSecret } = await explain(authority.apps.updateApp(clientId, appChangesOf(patch), 'admin'), { APP_NOT_FOUND: `no such app "${clientId}"` });
      // A webhook set without its own secret gets a generated one, shown only this once.
      if (args.flag('json')) return ctx.json({ app: appJson(app), ...(webhookSecret ? { webhook_secret: webhookSecret } : {}) });
      ctx.out(`Updated app ${app.clientId} ("${printable(app.name)}"): ${Object.keys(body).join(', ')}.`);
      if (webhookSecret) ctx.out(`  webhook_secret: ${webhookSecret} (shown only this once)`);
    },
  },
  {
    path: ['apps', 'list'],
    summary: 'List the registered apps (never their secrets).',
    options: {},
    async run(ctx, args) {
      const apps = await (await ctx.authority()).apps.listApps();
      if (args.flag('json')) return ctx.json({ apps: apps.map(appJson) });
      if (apps.length === 0) return ctx.out('No apps registered yet. Register one with: tessera apps create --name NAME');
      const list = (values: string[]) => (values.length === 0 ? '-' : values.join(','));
      const rows = apps.map((a) => [a.clientId, a.name, a.trusted ? 'yes' : 'no', list(a.allowedOrigins), list(a.returnUrls), a.backchannelLogoutUri ?? '-', formatTime(a.createdAt)]);
      for (const line of formatTable(['CLIENT_ID', 'NAME', 'TRUSTED', 'ORIGINS', 'RETURN_URLS', 'BACKCHANNEL', 'CREATED'], rows)) ctx.out(line);
    },
  },
  {
    path: ['apps', 'rotate-secret'],
    summary: 'Replace an app\'s client secret; prints the new one (only this once). The old secret stops working at once.',
    options: { 'client-id': { type: 'string', value: 'ID', help: 'The app', required: true } },
    async run(ctx, args) {
      const clientId = args.need('client-id');
      const authority = await ctx.authority();
      const secret = await explain(authority.apps.rotateSecret(clientId, 'admin'), { APP_NOT_FOUND: `no such app "${clientId}"` });
      const once = 'The new client secret is shown only this once: store it now. The previous secret no longer works.';
      if (args.flag('json')) {
        ctx.json({ client_id: clientId, client_secret: secret });
        ctx.note(once);
        return;
      }
      ctx.out(`New secret for app ${clientId}.`);
      ctx.out(`  client_secret:  ${secret}`);
      ctx.out(once);
    },
  },
];
