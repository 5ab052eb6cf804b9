// Migration 6 (users.email_verified) on a database that already holds users: they come out
// unverified (nobody said their emails were checked), and the flag can be set afterwards.
// On SQLite and PostgreSQL. The "v5 database" is made by migrating and then undoing
// migration 6 by hand, which is what an existing deployment looks like.
import { createPostgresDriver, createSqliteDriver, createSqlStore, type SqlDriver } from '@tessera/store';
import { describe, expect, it } from 'vitest';
import { freshSchemaUrl, postgresTestUrl } from './pg-support.js';

const pgUrl = await postgresTestUrl();

const kinds: Array<[string, () => Promise<{ driver: SqlDriver; done(): Promise<void> }>]> = [
  ['sqlite', async () => ({ driver: createSqliteDriver(':memory:'), done: async () => undefined })],
];
if (pgUrl) {
  kinds.push(['postgres', async () => {
    const schema = await freshSchemaUrl(pgUrl);
    return { driver: createPostgresDriver(schema.url), done: () => schema.drop() };
  }]);
}

describe.each(kinds)('migration 6: users.email_verified (%s)', (_kind, open) => {
  it('adds the column as false for existing users, once, and keeps their data', async () => {
    const { driver, done } = await open();
    const store = createSqlStore(driver);
    try {
      await store.migrate();
      // Back to the schema of version 5, with one user in it.
      await driver.exec('ALTER TABLE users DROP COLUMN email_verified');
      await driver.run('DELETE FROM schema_migrations WHERE version = 6');
      await driver.run(
        'INSERT INTO users (id, username, username_lower, email, email_lower, first_name, last_name, picture, disabled, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        ['usr_old', 'Old', 'old', 'old@example.test', 'old@example.test', null, null, null, 0, null, 1, 1],
      );
      await store.migrate();
      const user = await store.findUserById('usr_old');
      expect(user).toMatchObject({ id: 'usr_old', username: 'Old', email: 'old@example.test', emailVerified: false });
      expect((await store.updateUser('usr_old', { emailVerified: true, updatedAt: 2 }))?.emailVerified).toBe(true);
      // Idempotent: a second run changes nothing.
      await store.migrate();
      expect((await store.findUserById('usr_old'))?.emailVerified).toBe(true);
    } finally {
      await store.close();
      await done();
    }
  });
});
