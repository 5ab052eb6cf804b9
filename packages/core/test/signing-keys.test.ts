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
