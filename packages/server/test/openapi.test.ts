import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestServer, type TestServer } from './support.js';

// The contract table of DESIGN.md (v1), less /v1/token, /v1/introspect, /v1/revocations*
// and /.well-known/jwks.json (later steps), plus POST /v1/password.
const CONTRACT: Array<[method: string, path: string, auth: 'none' | 'admin' | 'client' | 'session']> = [
  ['get', '/health', 'none'],
  ['post', '/admin/api/users', 'admin'],
  ['get', '/admin/api/users/{id}', 'admin'],
  ['patch', '/admin/api/users/{id}', 'admin'],
  ['delete', '/admin/api/users/{id}', 'admin'],
  ['post', '/admin/api/apps', 'admin'],
  ['get', '/admin/api/apps', 'admin'],
  ['get', '/admin/api/apps/{id}', 'admin'],
  ['patch', '/admin/api/apps/{id}', 'admin'],
  ['delete', '/admin/api/apps/{id}', 'admin'],
  ['post', '/admin/api/apps/{id}/secret', 'admin'],
  ['get', '/admin/api/users/{id}/sessions', 'admin'],
  ['delete', '/admin/api/users/{id}/sessions', 'admin'],
  ['delete', '/admin/api/sessions/{handle}', 'admin'],
  ['post', '/admin/api/sessions/revoke', 'admin'],
  ['get', '/admin/api/sessions/{handle}/deliveries', 'admin'],
  ['post', '/v1/sessions', 'client'],
  ['get', '/login', 'none'],
  ['post', '/login', 'none'],
  ['get', '/v1/whoami', 'session'],
  ['get', '/v1/sessions', 'session'],
  ['delete', '/v1/sessions', 'session'],
  ['delete', '/v1/sessions/{handle}', 'session'],
  ['post', '/v1/password', 'session'],
  ['get', '/v1/logout/browser', 'none'],
  ['get', '/v1/logout', 'none'],
  ['post', '/v1/logout', 'none'],
  ['delete', '/v1/logout/api', 'none'],
  ['post', '/api/v1/logout', 'client'],
];

interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: Schema }> }>;
  parameters?: Array<{ in: string; name: string; required?: boolean }>;
  security?: Array<Record<string, string[]>>;
  requestBody?: { content?: Record<string, unknown> };
}
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  anyOf?: Schema[];
  required?: string[];
}
interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown>; schemas?: Record<string, Schema> };
}

/** Every property name of a schema tree. */
function propertyNames(schema: Schema | undefined, into: string[] = []): string[] {
  if (!schema) return into;
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    into.push(name);
    propertyNames(child, into);
  }
  propertyNames(schema.items, into);
  for (const alt of schema.anyOf ?? []) propertyNames(alt, into);
  return into;
}

describe('GET /openapi.json', () => {
  let t: TestServer;
  let doc: OpenApiDoc;
  beforeAll(async () => {
    t = await createTestServer();
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.json<OpenApiDoc>();
  });
  afterAll(async () => t.close());

  it('is an OpenAPI 3 document with info, paths and security schemes', () => {
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info.title).toBe('Tessera');
    // One version: the server package's (also what `tessera --version` prints and npm packs).
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(doc.info.version).toBe(pkg.version);
    expect(doc.info.version).toBe(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
    expect(Object.keys(doc.paths).length).toBeGreaterThanOrEqual(20);
    for (const path of Object.keys(doc.paths)) expect(path).toMatch(/^\/[A-Za-z0-9_\-/{}.]*$/);
    // Every $ref points at something that exists.
    const text = JSON.stringify(doc);
    for (const [, ref] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) expect(doc.components.schemas?.[ref!], ref).toBeDefined();
  });

  it('lists every contract path and method', () => {
    const missing = CONTRACT.filter(([method, path]) => !doc.paths[path]?.[method]).map(([m, p]) => `${m.toUpperCase()} ${p}`);
    expect(missing).toEqual([]);
  });

  it('documents a success response for every contract operation, and errors with the {error, message} envelope', () => {
    for (const [method, path] of CONTRACT) {
      const op = doc.paths[path]![method]!;
      const codes = Object.keys(op.responses ?? {});
      if (path !== '/login') expect(codes.some((c) => /^2\d\d$/.test(c)), `${method} ${path}: ${codes.join(',')}`).toBe(true);
      for (const code of codes.filter((c) => /^[45]\d\d$/.test(c))) {
        const schema = op.responses![code]!.content?.['application/json']?.schema;
        expect(schema?.required, `${method} ${path} ${code}`).toEqual(['error', 'message']);
      }
    }
  });

  it('declares every path parameter', () => {
    for (const [method, path] of CONTRACT) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = (doc.paths[path]![method]!.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      expect(declared.sort(), `${method} ${path}`).toEqual(names.sort());
    }
  });

  it('names how each operation authenticates, with schemes that exist', () => {
    const schemes = new Set(Object.keys(doc.components.securitySchemes));
    const expected: Record<string, string[]> = { admin: ['admin'], client: ['client'], session: ['sessionBearer', 'sessionCookie', 'sessionHeader'] };
    for (const [method, path, auth] of CONTRACT) {
      const security = doc.paths[path]![method]!.security;
      for (const entry of security ?? []) for (const name of Object.keys(entry)) expect(schemes.has(name), name).toBe(true);
      if (auth === 'none') continue;
      const names = (security ?? []).flatMap((entry) => Object.keys(entry)).sort();
      expect(names, `${method} ${path}`).toEqual(expected[auth]);
    }
  });

  it('uses snake_case for every JSON field of requests and responses', () => {
    const snake = /^[a-z][a-z0-9_]*$/;
    for (const [method, path] of CONTRACT) {
      const op = doc.paths[path]![method]!;
      const schemas = [
        ...Object.values(op.responses ?? {}).map((r) => r.content?.['application/json']?.schema),
        ...Object.values(op.requestBody?.content ?? {}).map((c) => (c as { schema?: Schema }).schema),
      ];
      for (const schema of schemas) for (const name of propertyNames(schema)) expect(name, `${method} ${path}`).toMatch(snake);
    }
  });

  it('documents both bodies of the server-to-server logout (text/plain and JSON)', () => {
    const content = doc.paths['/api/v1/logout']!.post!.requestBody?.content ?? {};
    expect(Object.keys(content).sort()).toEqual(['application/json', 'text/plain']);
    expect(Object.keys(doc.paths['/login']!.post!.requestBody?.content ?? {})).toEqual(['application/x-www-form-urlencoded']);
  });

  it('never shows internal fields (hashes, token ids) in any schema', () => {
    expect(JSON.stringify(doc)).not.toMatch(/secret_hash|password_hash|token_id|secretHash|passwordHash|tokenId/);
  });

  it('documents only routes that exist: each documented operation is routed', async () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const url = path.replace(/\{\w+\}/g, 'x');
        const res = await t.app.inject({ method: method.toUpperCase() as 'GET', url });
        const code = res.headers['content-type']?.toString().startsWith('application/json') && res.body ? (res.json() as { error?: string }).error : undefined;
        expect(code, `${method.toUpperCase()} ${url}`).not.toBe('NOT_FOUND');
      }
    }
  });
});
