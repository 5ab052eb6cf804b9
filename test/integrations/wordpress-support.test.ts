// The WordPress harness (support/wordpress.ts) skips with a message saying what is missing,
// and fails instead under TESSERA_REQUIRE_WORDPRESS=1 (as .ci/run sets).
import { describe, expect, it } from 'vitest';
import { findWordPress } from './support/wordpress.js';

describe('finding WordPress', () => {
  it('skips with a message naming a missing WordPress tree, or fails under TESSERA_REQUIRE_WORDPRESS=1', () => {
    expect(findWordPress({ TESSERA_WORDPRESS_DIR: '/nonexistent/wordpress' })).toEqual({ skip: 'TESSERA_WORDPRESS_DIR=/nonexistent/wordpress has no wp-settings.php' });
    expect(() => findWordPress({ TESSERA_WORDPRESS_DIR: '/nonexistent/wordpress', TESSERA_REQUIRE_WORDPRESS: '1' })).toThrow(/TESSERA_REQUIRE_WORDPRESS=1 but WordPress cannot run: TESSERA_WORDPRESS_DIR=\/nonexistent\/wordpress has no wp-settings\.php/);
  });

  it.skipIf(findWordPress().skip !== null)('skips with a message when MariaDB cannot be reached', () => {
    const found = findWordPress({ TESSERA_MARIADB: '127.0.0.1:1' });
    expect(found.skip).toMatch(/^MariaDB is not reachable at 127\.0\.0\.1:1 as root without a password: /);
    expect(() => findWordPress({ TESSERA_MARIADB: '127.0.0.1:1', TESSERA_REQUIRE_WORDPRESS: '1' })).toThrow(/TESSERA_REQUIRE_WORDPRESS=1 but WordPress cannot run: MariaDB is not reachable/);
  });
});
