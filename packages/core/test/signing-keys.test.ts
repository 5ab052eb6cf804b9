import { describe, expect, it } from 'vitest';
import { createKeyManager, createManualClock, loadConfig, type SigningKeyRecord, type Store } from '@tessera/core';

/**
 * The three signing-key operations of the store port over one shared array, as two nodes
 * see one database; `beforeInsert` lets a test slip another node's write in first.
 */
function sharedKeyTable(beforeInsert: (key: SigningKeyRecord, rows: SigningKeyRecord[]) => void = () => {}) {
  const rows: SigningKeyRecord[] = [];
  const store = {
    async listSigningKeys(now: number) {
      return rows.filter((k) => k.expiresAt > now).map((k) => ({ ...k }));
    },
    async insertSigningKey(key: SigningKeyRecord) {
      beforeInsert(key, rows);
      if (rows.some((k) => k.kid === key.kid)) return false;
      rows.push({ ...key });
      return true;
    },
    async deleteExpiredSigningKeys(now: number) {
      const before = rows.length;
      rows.splice(0, rows.length, ...rows.filter((k) => k.expiresAt > now));
      return before - rows.length;
    },
  };
  return { rows, store: store as unknown as Store };
}

const config = loadConfig({ env: { TESSERA_ADMIN_TOKEN: 'a'.repeat(40), TESSERA_COOKIE_SECURE: 'false', TESSERA_KEY_ROTATION: '3600' } });

describe('signing keys shared by several nodes', () => {
  it('a node that loses the race to create the next period\'s key still publishes the winner\'s key', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1, 0, 30));
    let racing = false;
    const table = sharedKeyTable((key, rows) => {
      // Another node commits the next period's key between this node's read and its insert.
      if (racing && key.kid === 'tk-525961' && !rows.some((k) => k.kid === key.kid)) {
        rows.push({ ...key, publicJwk: { ...key.publicJwk, x: 'the-other-node' } });
      }
    });
    // The current period's key exists already (a node started earlier); the next one not yet.
    const first = createKeyManager({ store: table.store, clock, config });
    await first.publicJwks();
    table.rows.splice(0, table.rows.length, ...table.rows.filter((k) => k.kid !== 'tk-525961'));
    expect(table.rows.map((k) => k.kid)).not.toContain('tk-525961');

    racing = true;
    const late = createKeyManager({ store: table.store, clock, config });
    const published = (await late.publicJwks()).keys.filter((k) => /^tk-\d+$/.test(k.kid as string)).map((k) => [k.kid, k.x === 'the-other-node']);
    expect(published).toEqual([['tk-525960', false], ['tk-525961', true]]);
  });

  it('two nodes starting on an empty table end up with the same keys: this and the next period of each of the three series', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1, 0, 30));
    const table = sharedKeyTable();
    const [a, b] = [createKeyManager({ store: table.store, clock, config }), createKeyManager({ store: table.store, clock, config })];
    const [ja, jb] = await Promise.all([a.publicJwks(), b.publicJwks()]);
    expect(ja.keys.map((k) => k.kid).sort()).toEqual(['tk-525960', 'tk-525960-es256', 'tk-525960-rs256', 'tk-525961', 'tk-525961-es256', 'tk-525961-rs256']);
    expect(jb).toEqual(ja);
    expect(table.rows).toHaveLength(6);
    expect((await a.signingKey()).kid).toBe('tk-525960');
  });
});

describe('ID token key series', () => {
  it('a fresh JWKS publishes EdDSA, ES256 and RS256 keys for this and the next period; rotation keeps all three series on every node', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1, 0, 30));
    const table = sharedKeyTable();
    const a = createKeyManager({ store: table.store, clock, config });
    const algsOf = (keys: Array<Record<string, unknown>>) => keys.map((k) => [k.kid, k.alg]).sort();
    expect(algsOf((await a.publicJwks()).keys)).toEqual([
      ['tk-525960', 'EdDSA'], ['tk-525960-es256', 'ES256'], ['tk-525960-rs256', 'RS256'],
      ['tk-525961', 'EdDSA'], ['tk-525961-es256', 'ES256'], ['tk-525961-rs256', 'RS256'],
    ]);
    // Registering a client with one of them changes nothing: the series exist already.
    await a.ensureAlgorithm('ES256');
    expect(table.rows).toHaveLength(6);
    expect((await a.signingKey('RS256')).kid).toBe('tk-525960-rs256');
    expect((await a.signingKey('ES256')).kid).toBe('tk-525960-es256');
    // Access and logout tokens stay on the main series.
    expect((await a.signingKey()).kid).toBe('tk-525960');
    expect((await a.signingKey('EdDSA')).kid).toBe('tk-525960');

    // A period later, another node makes the next key of every series (published a period
    // before it signs) and signs with the key of the period that began.
    clock.advance(3600_000);
    const b = createKeyManager({ store: table.store, clock, config });
    expect((await b.publicJwks()).keys.map((k) => k.kid)).toEqual(expect.arrayContaining(['tk-525962', 'tk-525962-rs256', 'tk-525962-es256']));
    expect((await b.signingKey('RS256')).kid).toBe('tk-525961-rs256');
    expect((await b.signingKey('ES256')).kid).toBe('tk-525961-es256');
    // Its public key verifies what it signs, found by kid; an unknown series is unknown.
    expect((await b.verificationKey('tk-525961-rs256'))?.alg).toBe('RS256');
    expect((await b.verificationKey('tk-525961-es256'))?.alg).toBe('ES256');
    expect(await b.verificationKey('tk-525961-ps256')).toBeNull();
  });

  it('with ES256 as the main algorithm the other two series are EdDSA and RS256', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1, 0, 30));
    const table = sharedKeyTable();
    const es = loadConfig({ env: { TESSERA_ADMIN_TOKEN: 'a'.repeat(40), TESSERA_COOKIE_SECURE: 'false', TESSERA_KEY_ROTATION: '3600' }, file: { tokens: { algorithm: 'ES256' } } });
    const a = createKeyManager({ store: table.store, clock, config: es });
    const current = (await a.publicJwks()).keys.filter((k) => String(k.kid).startsWith('tk-525960')).map((k) => [k.kid, k.alg]).sort();
    expect(current).toEqual([['tk-525960', 'ES256'], ['tk-525960-eddsa', 'EdDSA'], ['tk-525960-rs256', 'RS256']]);
    expect((await a.signingKey('ES256')).kid).toBe('tk-525960');
  });
});
