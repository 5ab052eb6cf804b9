import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '@tessera/core';
import { renderConfigurationDoc, renderErrorsDoc } from '../src/reference-docs.js';

const read = (name: string) => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');

describe('reference docs', () => {
  it('docs/errors.md documents every error code and is up to date (node scripts/gen-docs.mjs)', () => {
    const doc = read('errors.md');
    for (const code of Object.keys(ERROR_CATALOGUE)) expect(doc).toContain(`\`${code}\``);
    expect(doc).toBe(renderErrorsDoc());
  });
  it('docs/configuration.md documents every setting and is up to date', () => {
    const doc = read('configuration.md');
    for (const env of ['TESSERA_PORT', 'TESSERA_HOST', 'TESSERA_ISSUER', 'TESSERA_DATA_DIR', 'TESSERA_DATABASE_URL', 'TESSERA_REDIS_URL', 'TESSERA_ADMIN_TOKEN', 'TESSERA_COOKIE_DOMAIN', 'TESSERA_COOKIE_SECURE']) expect(doc).toContain(env);
    expect(doc).toBe(renderConfigurationDoc());
  });
});
