import type { ServerContext, TesseraApp } from '../context.js';
import { authorizeRoutes } from './authorize.js';
import { consentRoutes } from './consents.js';
import { discoveryRoutes } from './discovery.js';
import { endSessionRoutes } from './end-session.js';
import { registrationRoutes } from './registration.js';
import { tokenEndpointRoutes } from './token.js';
import { userinfoRoutes } from './userinfo.js';

export { authorizeRedirectOrigin, isOwnAuthorizeUrl, loginHintOf } from './authorize.js';
export { providerMetadata } from './discovery.js';
export { OIDC_PATHS } from './protocol.js';

/**
 * The OpenID Provider, on Tessera's own sessions (docs/decisions/0007-oidc-provider.md):
 * discovery, the authorization endpoint with its consent form, the token endpoint, userinfo
 * the end-session endpoint with its confirmation form, the user's consents (list, withdraw)
 * and dynamic client registration (RFC 7591, with an admin token). Back-channel logout needs no
 * route: it is the durable outbox, which tells every app that joined an ended session.
 *
 * @example
 * ```ts
 * await app.register(async (scope) => oidcRoutes(scope, context));
 * ```
 */
export async function oidcRoutes(app: TesseraApp, context: ServerContext): Promise<void> {
  await discoveryRoutes(app, context);
  await authorizeRoutes(app, context);
  await tokenEndpointRoutes(app, context);
  await userinfoRoutes(app, context);
  await endSessionRoutes(app, context);
  await consentRoutes(app, context);
  await registrationRoutes(app, context);
}
