import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

// ajv-formats is CommonJS with a default export; under NodeNext the callable sits on .default.
type AddFormats = (ajv: Ajv) => Ajv;
const addFormats: AddFormats = (addFormatsModule as unknown as { default?: AddFormats }).default ?? (addFormatsModule as unknown as AddFormats);

const common: Options = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false, addUsedSchema: false };

/**
 * Request validation with two ajv instances. Query strings, path parameters and headers
 * arrive as text, so they are coerced ("10" → 10). Bodies are JSON with real types, so they
 * are not: `{"session_token": 42}` or `{"handles": "ses_x"}` is a client bug that must get a
 * 400, not be quietly turned into "42" or ["ses_x"].
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const coercing = new Ajv({ ...common, coerceTypes: 'array' });
  const strict = new Ajv({ ...common, coerceTypes: false });
  addFormats(coercing);
  addFormats(strict);
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object);
}
