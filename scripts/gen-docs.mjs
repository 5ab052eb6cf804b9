// Writes docs/errors.md and docs/configuration.md from the code (run after `npm run build`).
import { writeFileSync } from 'node:fs';
import { renderConfigurationDoc, renderErrorsDoc } from '../packages/server/dist/reference-docs.js';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigurationDoc());
console.log('docs/errors.md and docs/configuration.md written');
