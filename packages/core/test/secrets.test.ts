import { describe, expect, it } from 'vitest';
import { createHandle, createSplitToken, hashSecret, splitToken, verifySecret } from '@tessera/core';

describe('split tokens', () => {
  it('creates <id>.<secret> whose secret verifies only against its own hash', () => {
    const a = createSplitToken();
    const b = createSplitToken();
    const parts = splitToken(a.token)!;
    expect(parts.id).toBe(a.id);
    expect(verifySecret(parts.secret, a.secretHash)).toBe(true);
    expect(verifySecret(parts.secret, b.secretHash)).toBe(false);
    expect(a.secretHash).toBe(hashSecret(parts.secret));
    expect(a.secretHash).not.toContain(parts.secret);
  });

  it('has 256 bits of secret and distinct ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => createSplitToken().id));
    expect(ids.size).toBe(1000);
    expect(Buffer.from(splitToken(createSplitToken().token)!.secret, 'base64url').length).toBe(32);
  });

  it.each([undefined, null, 42, '', 'abc', 'a.b', '.x', 'x.', 'a.b.c', 'a'.repeat(20) + '.' + 'b'.repeat(400), 'aaaaaaaa.bbbbbbb!', 'ééééééééé.bbbbbbbbbbb', 'aaaaaaaa bbbbbbbbbbb'])(
    'rejects malformed token %j without throwing',
    (value) => {
      expect(splitToken(value)).toBeNull();
    },
  );

  it('stores SHA-256 in lower-case hex (FIPS 180-2 test vector), so hashes written before stay valid', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(verifySecret('abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')).toBe(true);
    // One hex digit off, same length: still false.
    expect(verifySecret('abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae')).toBe(false);
  });

  it('rejects a stored hash of the wrong shape', () => {
    expect(verifySecret('secret', 'not-hex')).toBe(false);
    expect(verifySecret('secret', '')).toBe(false);
  });

  it('makes prefixed public handles', () => {
    expect(createHandle('ses')).toMatch(/^ses_[A-Za-z0-9_-]{22}$/);
  });
});
