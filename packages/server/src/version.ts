import { readFileSync } from 'node:fs';

/**
 * The version of Tessera, from this package's package.json — the one place it is written.
 * The OpenAPI document, `tessera --version` and the tarball `npm run pack` writes all show
 * it. (`../package.json` from both src/ and dist/.)
 */
export const TESSERA_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
