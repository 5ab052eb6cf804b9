// A stand-in issuer for cases Tessera itself never produces (foreign issuers, odd claims,
// ES256, key rotation on demand, back-channel logout tokens before the server sends them):
// a node:http server publishing a JWKS that the test controls, plus a signer.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface SigningKey {
  kid: string;
  alg: 'EdDSA' | 'ES256' | 'RS256' | 'PS256';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface JwksServer {
  url: string;
  jwksUri: string;
  /** How many times the key set was fetched. */
  readonly fetches: number;
  /** Answer the key set requests with this status instead (null: normal). */
  failWith(status: number | null): void;
  /** Creates a key; published unless `publish` is false. */
  addKey(alg?: 'EdDSA' | 'ES256' | 'RS256' | 'PS256', publish?: boolean): Promise<SigningKey>;
  sign(key: SigningKey, claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

let kids = 0;

export async function startJwksServer(): Promise<JwksServer> {
  const published: JWK[] = [];
  let fetches = 0;
  let failure: number | null = null;
  const server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
    fetches++;
    if (failure !== null) return void res.writeHead(failure).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    jwksUri: `${url}/.well-known/jwks.json`,
    get fetches() {
      return fetches;
    },
    failWith(status) {
      failure = status;
    },
    async addKey(alg = 'EdDSA', publish = true) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const kid = `k${++kids}`;
      const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
      if (publish) published.push(publicJwk);
      return { kid, alg, privateKey, publicJwk };
    },
    sign(key, claims, header = {}) {
      return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header }).sign(key.privateKey);
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
