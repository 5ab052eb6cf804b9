// Dynamic client registration (RFC 7591) at a listening Tessera, driven by openid-client 6's
// dynamicClientRegistration with an admin token as the initial access token; the registered
// client then signs a user in through the hosted login page. Bad registrations get the RFC
// 7591 §3.2.2 errors, never a 5xx, and register nothing.
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, OIDC_ADMIN_TOKEN, formFields, signInThrough, startOidcNode, type OidcNode } from './oidc-support.js';

const CB = 'https://rp-dcr.example/cb';
const BYE = 'https://rp-dcr.example/bye';
const PASSWORD = 'correct horse battery';

describe('dynamic client registration (RFC 7591)', () => {
  let node: OidcNode;
  let userId: string;
  const insecure = { execute: [client.allowInsecureRequests] };

  beforeAll(async () => {
    node = await startOidcNode();
    userId = await node.createUser('dora', PASSWORD);
  });
  afterAll(async () => node?.close());

  const appCount = async () => (await node.admin<{ apps: unknown[] }>('GET', '/apps')).body.apps.length;

  /** Signs dora in with a registered client's configuration (untrusted: through the consent page). */
  async function signIn(config: client.Configuration) {
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: CB, scope: 'openid profile', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'dcr', nonce });
    const browser = new Browser();
    let landed = await signInThrough(browser, url.toString(), node.url, 'dora', PASSWORD);
    expect(landed.hop.status).toBe(200);
    expect(landed.hop.body).toContain('Allow');
    landed = await browser.follow(`${node.url}/oidc/consent`, node.url, { ...formFields(landed.hop.body), decision: 'allow' });
    return client.authorizationCodeGrant(config, new URL(landed.hop.location!), { pkceCodeVerifier: verifier, expectedState: 'dcr', expectedNonce: nonce, idTokenExpected: true });
  }

  it('registers a confidential client with openid-client, untrusted; it signs a user in and refreshes', async () => {
    const before = await appCount();
    const config = await client.dynamicClientRegistration(new URL(node.url), {
      client_name: 'DCR Wiki',
      redirect_uris: [CB],
      post_logout_redirect_uris: [BYE],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
      // Not understood, or not the client's to choose: ignored (RFC 7591 §2).
      logo_uri: 'https://rp-dcr.example/logo.png',
      trusted: true,
    } as Partial<client.ClientMetadata>, undefined, { ...insecure, initialAccessToken: OIDC_ADMIN_TOKEN });
    const meta = config.clientMetadata();
    expect(meta).toMatchObject({ client_name: 'DCR Wiki', redirect_uris: [CB], post_logout_redirect_uris: [BYE], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'ES256', client_secret_expires_at: 0 });
    expect(meta.client_secret).toEqual(expect.any(String));
    expect(meta.logo_uri).toBeUndefined();
    expect(await appCount()).toBe(before + 1);
    const registered = await node.admin<{ app: Record<string, unknown> }>('GET', `/apps/${meta.client_id}`);
    expect(registered.body.app).toMatchObject({ trusted: false, redirect_uris: [CB], id_token_signed_response_alg: 'ES256' });

    const tokens = await signIn(config);
    expect(tokens.claims()).toMatchObject({ sub: userId, aud: meta.client_id });
    expect(JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()).alg).toBe('ES256');
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.claims()!.sub).toBe(userId);
  });

  it('registers a public client: no secret issued; PKCE sign-in works with client authentication none', async () => {
    const config = await client.dynamicClientRegistration(new URL(node.url), { redirect_uris: [CB], token_endpoint_auth_method: 'none' }, client.None(), { ...insecure, initialAccessToken: OIDC_ADMIN_TOKEN });
    const meta = config.clientMetadata();
    expect(meta.client_secret).toBeUndefined();
    // Without client_name, the name shown on the consent page is the redirect URI's host.
    expect(meta.client_name).toBe('rp-dcr.example');
    expect((await signIn(config)).claims()!.sub).toBe(userId);
  });

  it('refuses a registration without the initial access token, or with a wrong one: 401 invalid_token', async () => {
    const before = await appCount();
    for (const token of [undefined, 'not-an-admin-token']) {
      const failure = await client.dynamicClientRegistration(new URL(node.url), { redirect_uris: [CB] }, undefined, { ...insecure, ...(token ? { initialAccessToken: token } : {}) }).catch((e: unknown) => e);
      expect(failure).toMatchObject({ status: 401 });
      const raw = await fetch(`${node.url}/oidc/register`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify({ redirect_uris: [CB] }) });
      expect(raw.status).toBe(401);
      expect(raw.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      expect(await raw.json()).toMatchObject({ error: 'invalid_token' });
    }
    expect(await appCount()).toBe(before);
  });

  it('answers bad metadata with invalid_redirect_uri or invalid_client_metadata (openid-client sees the error), registering nothing', async () => {
    const before = await appCount();
    const cases: Array<[unknown, string]> = [
      [{}, 'invalid_redirect_uri'],
      [{ redirect_uris: [] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['ftp://rp-dcr.example/cb'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['https://rp-dcr.example/cb#frag'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: 'https://rp-dcr.example/cb' }, 'invalid_redirect_uri'],
      [{ redirect_uris: [CB], response_types: ['token'] }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], response_types: ['code', 'id_token'] }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], grant_types: ['implicit'] }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], grant_types: ['refresh_token'] }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], id_token_signed_response_alg: 'none' }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], post_logout_redirect_uris: ['javascript:alert(1)'] }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], backchannel_logout_uri: 'not a url' }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], client_name: 'x'.repeat(500) }, 'invalid_client_metadata'],
      [{ redirect_uris: [CB], client_name: 'Evil\u202Egnp.exe' }, 'invalid_client_metadata'],
      [[CB], 'invalid_client_metadata'],
      ['redirect_uris', 'invalid_client_metadata'],
    ];
    for (const [body, error] of cases) {
      const res = await fetch(`${node.url}/oidc/register`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${OIDC_ADMIN_TOKEN}` }, body: JSON.stringify(body) });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json(), JSON.stringify(body)).toMatchObject({ error, error_description: expect.any(String) });
    }
    // openid-client reports the error the server named.
    const failure = await client.dynamicClientRegistration(new URL(node.url), { redirect_uris: ['https://rp-dcr.example/cb#x'] }, undefined, { ...insecure, initialAccessToken: OIDC_ADMIN_TOKEN }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(client.ResponseBodyError);
    expect(failure).toMatchObject({ error: 'invalid_redirect_uri', status: 400 });
    // Garbage bodies and content types: a 4xx, never a 5xx.
    for (const [type, text] of [['application/json', '{'], ['application/json', 'null'], ['text/plain', 'x'], ['application/x-www-form-urlencoded', 'redirect_uris=https://x.example/cb']]) {
      const res = await fetch(`${node.url}/oidc/register`, { method: 'POST', headers: { 'content-type': type!, authorization: `Bearer ${OIDC_ADMIN_TOKEN}` }, body: text });
      expect(res.status, `${type} ${text}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${type} ${text}`).toBeLessThan(500);
    }
    expect(await appCount()).toBe(before);
  });

  it('is in the discovery document', async () => {
    const meta = (await (await fetch(`${node.url}/.well-known/openid-configuration`)).json()) as { registration_endpoint: string };
    expect(meta.registration_endpoint).toBe(`${node.url}/oidc/register`);
  });
});
