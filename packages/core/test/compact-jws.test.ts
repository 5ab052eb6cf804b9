import { describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
import { randomToken } from '@tessera/core';
import { importJwsSigningKey, signCompactJws, signCompactJwsInPool } from '../src/compact-jws.js';

const ALGS = ['EdDSA', 'ES256', 'RS256'] as const;

async function keysOf(alg: (typeof ALGS)[number]) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  // As the key table stores it: the JWK with its kid and alg.
  const jwk = { ...(await exportJWK(privateKey)), kid: 'tk-7', alg };
  return { publicKey, jose: await importJWK(jwk, alg), signer: importJwsSigningKey(jwk, 'tk-7', alg) };
}

describe('compact JWS with node:crypto', () => {
  it.each(ALGS)('%s: the token jose\'s SignJWT made, byte for byte (ES256 signatures are randomised: the same header and payload, and jose verifies it)', async (alg) => {
    const { publicKey, jose, signer } = await keysOf(alg);
    const claims = { sid: 'ses_1', client_id: 'forum', scope: 'openid', iss: 'https://id.example.test', sub: 'usr_1', aud: 'forum', iat: 1_700_000_000, exp: 1_700_000_900, jti: 'j-1' };
    const ours = signCompactJws(signer, 'at+jwt', claims);
    const theirs = await new SignJWT({ sid: 'ses_1', client_id: 'forum', scope: 'openid' })
      .setProtectedHeader({ alg, kid: 'tk-7', typ: 'at+jwt' })
      .setIssuer('https://id.example.test')
      .setSubject('usr_1')
      .setAudience('forum')
      .setIssuedAt(1_700_000_000)
      .setExpirationTime(1_700_000_900)
      .setJti('j-1')
      .sign(jose);
    if (alg === 'ES256') {
      expect(ours.split('.').slice(0, 2)).toEqual(theirs.split('.').slice(0, 2));
      // JWS's r || s, not DER.
      expect(Buffer.from(ours.split('.')[2]!, 'base64url')).toHaveLength(64);
    } else {
      expect(ours).toBe(theirs);
    }
    const { payload, protectedHeader } = await jwtVerify(ours, publicKey, { algorithms: [alg], typ: 'at+jwt', currentDate: new Date(1_700_000_100_000) });
    expect(protectedHeader).toEqual({ alg, kid: 'tk-7', typ: 'at+jwt' });
    expect(payload).toEqual(claims);
  });

  it.each(ALGS)('%s: signed in the thread pool, the same token (and each typ its own header)', async (alg) => {
    const { publicKey, signer } = await keysOf(alg);
    const claims = { iss: 'https://id.example.test', sub: 'usr_1', iat: 1_700_000_000, jti: 'j-2' };
    const pooled = await signCompactJwsInPool(signer, 'secevent+jwt', claims);
    if (alg !== 'ES256') expect(pooled).toBe(signCompactJws(signer, 'secevent+jwt', claims));
    expect((await jwtVerify(pooled, publicKey, { algorithms: [alg], typ: 'secevent+jwt' })).protectedHeader.typ).toBe('secevent+jwt');
    expect((await jwtVerify(signCompactJws(signer, 'JWT', claims), publicKey, { algorithms: [alg], typ: 'JWT' })).protectedHeader.typ).toBe('JWT');
  });
});

describe('random tokens from the pool', () => {
  it('gives every caller its own bytes, across refills of the pool, at every size', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      for (const bytes of [16, 32, 7]) {
        const token = randomToken(bytes);
        expect(Buffer.from(token, 'base64url')).toHaveLength(bytes);
        if (bytes >= 16) {
          expect(seen.has(token)).toBe(false);
          seen.add(token);
        }
      }
    }
    expect(Buffer.from(randomToken(), 'base64url')).toHaveLength(32);
    // Larger than the pool hands out: straight from the generator.
    expect(Buffer.from(randomToken(4096), 'base64url')).toHaveLength(4096);
    expect(randomToken(4096)).not.toBe(randomToken(4096));
  });
});
