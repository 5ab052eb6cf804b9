import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

// ajv-formats is CommonJS with a default export; under NodeNext the callable sits on .default.
type AddFormats = (ajv: Ajv) => Ajv;
const addFormats: AddFormats = (addFormatsModule as unknown as { default?: AddFormats }).default ?? (addFormatsModule as unknown as AddFormats);

// strictNumbers: NaN and ±Infinity are not numbers (ajv lets Infinity pass as an integer
// otherwise, and `?after=1e309` reached the store as Infinity).
const common: Options = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false, addUsedSchema: false, strictNumbers: true };

/** The most nested a free-form JSON value may be (`x-max-depth`); see {@link jsonShape}. */
export const MAX_DEPTH_KEYWORD = 'x-max-depth';
/** The largest a free-form JSON value may be, in bytes of its JSON text (`x-max-bytes`). */
export const MAX_BYTES_KEYWORD = 'x-max-bytes';

/**
 * Depth and approximate JSON size of a value, walked without recursion (a value nested
 * 30 000 deep must not overflow the stack here either); stops as soon as a bound is passed.
 */
export function jsonShape(value: unknown, bounds: { depth: number; bytes: number }): { depth: number; bytes: number } {
  let depth = 0;
  let bytes = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0 && depth <= bounds.depth && bytes <= bounds.bytes) {
    const [node, level] = stack.pop()!;
    if (node !== null && typeof node === 'object') {
      depth = Math.max(depth, level);
      bytes += 2;
      for (const [key, child] of Object.entries(node)) {
        if (!Array.isArray(node)) bytes += key.length + 3;
        stack.push([child, level + 1]);
      }
    } else {
      depth = Math.max(depth, level - 1);
      bytes += typeof node === 'string' ? node.length + 2 : String(node).length + 1;
    }
  }
  return { depth, bytes };
}

function addJsonBounds(ajv: Ajv): void {
  const bound = (keyword: string, field: 'depth' | 'bytes', say: string) => {
    const validate = (limit: number, data: unknown): boolean => {
      const shape = jsonShape(data, field === 'depth' ? { depth: limit, bytes: Infinity } : { depth: Infinity, bytes: limit });
      if (shape[field] <= limit) return true;
      (validate as { errors?: Partial<ErrorObject>[] }).errors = [{ keyword, message: `must be ${say} ${limit}`, params: { limit } }];
      return false;
    };
    ajv.addKeyword({ keyword, schemaType: 'number', errors: true, validate });
  };
  bound(MAX_DEPTH_KEYWORD, 'depth', 'nested at most');
  bound(MAX_BYTES_KEYWORD, 'bytes', 'at most this many bytes of JSON:');
}

// A decimal integer as text: no exponent, hex, sign games, fraction or spaces. ajv's
// coercion would turn "0x10" into 16 and "1e3" into 1000.
const DECIMAL = /^-?(0|[1-9][0-9]{0,15})$/;

/**
 * Query strings, path parameters and headers are text; an integer there must be written as
 * one. The schema's own minimum and maximum then bound it.
 */
function strictIntegers(schema: { properties?: Record<string, { type?: unknown }> }, validate: ValidateFunction): ValidateFunction {
  const integers = Object.entries(schema.properties ?? {}).filter(([, p]) => p.type === 'integer').map(([name]) => name);
  if (integers.length === 0) return validate;
  const checked = ((data: Record<string, unknown> | undefined) => {
    for (const name of integers) {
      const raw = data?.[name];
      const texts = Array.isArray(raw) ? raw : [raw];
      if (texts.some((t) => typeof t === 'string' && !DECIMAL.test(t))) {
        checked.errors = [{ instancePath: `/${name}`, schemaPath: `#/properties/${name}/type`, keyword: 'type', params: { type: 'integer' }, message: 'must be a decimal integer' }];
        return false;
      }
    }
    const ok = validate(data);
    checked.errors = validate.errors;
    return ok;
  }) as ValidateFunction;
  return checked;
}

/**
 * Request validation with two ajv instances. Query strings, path parameters and headers
 * arrive as text, so they are coerced ("10" → 10, decimal digits only). Bodies are JSON with
 * real types, so they are not: `{"session_token": 42}` or `{"handles": "ses_x"}` is a client
 * bug that must get a 400, not be quietly turned into "42" or ["ses_x"].
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const coercing = new Ajv({ ...common, coerceTypes: 'array' });
  const strict = new Ajv({ ...common, coerceTypes: false });
  for (const ajv of [coercing, strict]) {
    addFormats(ajv);
    addJsonBounds(ajv);
  }
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict.compile(schema as object) : strictIntegers(schema as object, coercing.compile(schema as object)));
}
