// node-oidc-provider (panva) in its default configuration, in a process of its own, for the
// OIDC benchmark: one confidential client, the development interactions (any login) and
// the in-memory adapter it ships with. Only what a client must register is configured.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';
import { stopOnParentExit } from '../lib/children.mjs';

process.once('message', ({ clientId, clientSecret, redirectUri }) => {
  const server = createServer();
  server.listen(0, '127.0.0.1', () => {
    const issuer = `http://127.0.0.1:${server.address().port}`;
    const provider = new Provider(issuer, {
      clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUri], grant_types: ['authorization_code', 'refresh_token'] }],
    });
    server.on('request', provider.callback());
    process.send?.({ url: issuer });
  });
  stopOnParentExit(() => new Promise((resolve) => server.close(resolve)));
});
