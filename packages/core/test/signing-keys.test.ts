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
    table.rows.splice(1);
    expect(table.rows.map((k) => k.kid)).toEqual(['tk-525960']);

    racing = true;
    const late = createKeyManager({ store: table.store, clock, config });
    const published = (await late.publicJwks()).keys.map((k) => [k.kid, k.x === 'the-other-node']);
    expect(published).toEqual([['tk-525960', false], ['tk-525961', true]]);
  });

  it('two nodes starting on an empty table end up with the same two keys', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1, 0, 30));
    const table = sharedKeyTable();
    const [a, b] = [createKeyManager({ store: table.store, clock, config }), createKeyManager({ store: table.store, clock, config })];
    const [ja, jb] = await Promise.all([a.publicJwks(), b.publicJwks()]);
    expect(ja.keys.map((k) => k.kid)).toEqual(['tk-525960', 'tk-525961']);
    expect(jb).toEqual(ja);
    expect(table.rows).toHaveLength(2);
    expect((await a.signingKey()).kid).toBe('tk-525960');
  });
});

describe('ID token key series', () => {
  it('a series for another algorithm is published for this and the next period as soon as a client asks for it; other nodes keep it going', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1, 0, 30));
    const table = sharedKeyTable();
    const a = createKeyManager({ store: table.store, clock, config });
    expect((await a.publicJwks()).keys.map((k) => k.kid)).toEqual(['tk-525960', 'tk-525961']);
    await a.ensureAlgorithm('RS256');
    expect((await a.publicJwks()).keys.map((k) => [k.kid, k.alg]).sort()).toEqual([
      ['tk-525960', 'EdDSA'], ['tk-525960-rs256', 'RS256'], ['tk-525961', 'EdDSA'], ['tk-525961-rs256', 'RS256'],
    ]);
    expect((await a.signingKey('RS256')).kid).toBe('tk-525960-rs256');
    // Access and logout tokens stay on the main series.
    expect((await a.signingKey()).kid).toBe('tk-525960');
    expect((await a.signingKey('EdDSA')).kid).toBe('tk-525960');

    // A node that never registered such a client finds the series in the store and, a period
    // later, makes the next key of it too (published a period before it signs).
    clock.advance(3600_000);
    const b = createKeyManager({ store: table.store, clock, config });
    expect((await b.publicJwks()).keys.map((k) => k.kid)).toEqual(expect.arrayContaining(['tk-525962', 'tk-525962-rs256']));
    expect((await b.signingKey('RS256')).kid).toBe('tk-525961-rs256');
    // Its public key verifies what it signs, found by kid.
    const found = await b.verificationKey('tk-525961-rs256');
    expect(found?.alg).toBe('RS256');
    expect(await b.verificationKey('tk-525961-es256')).toBeNull();
  });
});
