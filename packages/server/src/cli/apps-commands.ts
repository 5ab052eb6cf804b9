import { AppBody } from '../schemas.js';
import { appJson, oidcMetadataOf } from '../views.js';
import { explain, type Command } from './command.js';
import { formatTable, formatTime, printable } from './output.js';
import { validateInput } from './validate-input.js';

const URL_EXPECTED = 'an http(s) URL, e.g. https://forum.example.com/';

/**
 * `tessera apps create | list | rotate-secret`: register apps and manage their client
 * secrets. A client secret is printed once, when it is created, and never again.
 *
 * @example
 * ```sh
 * tessera apps create --name forum --origin https://forum.example.com --return-url https://forum.example.com/
 * ```
 */
export const appsCommands: Command[] = [
  {
    path: ['apps', 'create'],
    summary: 'Register an app; prints its client id and secret (the secret only this once).',
    options: {
      name: { type: 'string', value: 'NAME', help: 'Display name of the app', required: true },
      'client-id': { type: 'string', value: 'ID', help: 'Client id to use (default: a random app_… id)' },
      trusted: { type: 'boolean', help: 'May start sessions for users it authenticated and create users from claims' },
      origin: { type: 'string', value: 'URL', multiple: true, help: 'Origin allowed to call the XHR logout, e.g. https://forum.example.com (repeatable)' },
      'return-url': { type: 'string', value: 'URL', multiple: true, help: 'Exact URL a browser may return to after login or logout (repeatable)' },
      'backchannel-uri': { type: 'string', value: 'URL', help: 'Back-channel logout endpoint of the app' },
      'redirect-uri': { type: 'string', value: 'URL', multiple: true, help: 'OIDC: exact redirect_uri of the client (repeatable)' },
      'post-logout-redirect-uri': { type: 'string', value: 'URL', multiple: true, help: 'OIDC: exact post_logout_redirect_uri (repeatable)' },
      'grant-type': { type: 'string', value: 'TYPE', multiple: true, help: 'OIDC: authorization_code, refresh_token, client_credentials (SSF receiver; repeatable; default the first two)' },
      'token-endpoint-auth-method': { type: 'string', value: 'METHOD', help: 'OIDC: client_secret_basic (default), client_secret_post, or none (a public client, PKCE required)' },
      'backchannel-session-required': { type: 'boolean', help: 'OIDC: every logout token carries sid (a user-wide end sends one per session)' },
      'id-token-alg': { type: 'string', value: 'ALG', help: 'OIDC: RS256 (default), EdDSA or ES256' },
    },
    async run(ctx, args) {
      const body = {
        name: args.need('name'),
        ...(args.string('client-id') === undefined ? {} : { client_id: args.string('client-id') }),
        trusted: args.flag('trusted'),
        allowed_origins: args.strings('origin'),
        return_urls: args.strings('return-url'),
        backchannel_logout_uri: args.string('backchannel-uri') ?? null,
        ...(args.strings('redirect-uri').length > 0 ? { redirect_uris: args.strings('redirect-uri') } : {}),
        ...(args.strings('post-logout-redirect-uri').length > 0 ? { post_logout_redirect_uris: args.strings('post-logout-redirect-uri') } : {}),
        ...(args.strings('grant-type').length > 0 ? { grant_types: args.strings('grant-type') as Array<'authorization_code' | 'refresh_token' | 'client_credentials'> } : {}),
        ...(args.string('token-endpoint-auth-method') === undefined ? {} : { token_endpoint_auth_method: args.string('token-endpoint-auth-method') as 'client_secret_basic' | 'client_secret_post' | 'none' }),
        ...(args.flag('backchannel-session-required') ? { backchannel_logout_session_required: true } : {}),
        ...(args.string('id-token-alg') === undefined ? {} : { id_token_signed_response_alg: args.string('id-token-alg') as 'RS256' | 'EdDSA' | 'ES256' }),
      };
      validateInput(AppBody, body, {
        client_id: { flag: '--client-id', expected: 'letters, digits and _ . @ : -' },
        allowed_origins: { flag: '--origin', expected: 'an origin: scheme://host[:port], no path, e.g. https://forum.example.com' },
        return_urls: { flag: '--return-url', expected: URL_EXPECTED },
        backchannel_logout_uri: { flag: '--backchannel-uri', expected: URL_EXPECTED },
        redirect_uris: { flag: '--redirect-uri', expected: URL_EXPECTED },
        post_logout_redirect_uris: { flag: '--post-logout-redirect-uri', expected: URL_EXPECTED },
        grant_types: { flag: '--grant-type', expected: 'authorization_code, refresh_token or client_credentials' },
        token_endpoint_auth_method: { flag: '--token-endpoint-auth-method', expected: 'client_secret_basic, client_secret_post or none' },
        id_token_signed_response_alg: { flag: '--id-token-alg', expected: 'RS256, EdDSA or ES256' },
      });
      const authority = await ctx.authority();
      const { app, clientSecret } = await explain(
        authority.apps.registerApp(
          { clientId: body.client_id, name: body.name, trusted: body.trusted, allowedOrigins: body.allowed_origins, returnUrls: body.return_urls, backchannelLogoutUri: body.backchannel_logout_uri, oidc: oidcMetadataOf(body) },
          'admin',
        ),
        { APP_CONFLICT: `an app with client id "${body.client_id}" exists` },
      );
      const once = `The client secret is shown only this once: store it now. A lost secret can be replaced with: tessera apps rotate-secret --client-id ${app.clientId}`;
      if (args.flag('json')) {
        ctx.json({ app: appJson(app), client_secret: clientSecret });
        ctx.note(once);
        return;
      }
      ctx.out(`Registered app "${printable(app.name)}"${app.trusted ? ' (trusted)' : ''}.`);
      ctx.out(`  client_id:      ${app.clientId}`);
      ctx.out(`  client_secret:  ${clientSecret}`);
      ctx.out(once);
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
