import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@tessera/core';

describe('loadConfig', () => {
  it('fills defaults and freezes the result', () => {
    const config = loadConfig({ env: {} });
    expect(config.port).toBe(4000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.issuer).toBe('http://127.0.0.1:4000');
    expect(config.cookie).toEqual({ name: 'tessera_session', domain: null, secure: true });
    expect(config.databaseUrl).toBeNull();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.cookie)).toBe(true);
  });

  it('reads the documented environment names, converting types', () => {
    const config = loadConfig({
      env: {
        TESSERA_PORT: '4100',
        TESSERA_HOST: '0.0.0.0',
        TESSERA_ISSUER: 'https://auth.example.com/',
        TESSERA_DATA_DIR: '/var/lib/tessera',
        TESSERA_DATABASE_URL: 'postgres://db/tessera',
        TESSERA_DATABASE_POOL_SIZE: '4',
        TESSERA_REDIS_URL: 'redis://cache:6379',
        TESSERA_ADMIN_TOKEN: 'z'.repeat(32),
        TESSERA_COOKIE_DOMAIN: '.example.com',
        TESSERA_COOKIE_SECURE: 'true',
      },
    });
    expect(config.port).toBe(4100);
    expect(config.issuer).toBe('https://auth.example.com');
    expect(config.dataDir).toBe('/var/lib/tessera');
    expect(config.databaseUrl).toBe('postgres://db/tessera');
    expect(config.databasePoolSize).toBe(4);
    expect(config.redisUrl).toBe('redis://cache:6379');
    expect(config.cookie.domain).toBe('.example.com');
  });

  it('lets the environment win over the file', () => {
    const config = loadConfig({ file: { port: 5000, session: { idleTimeoutSeconds: 60 } }, env: { TESSERA_PORT: '5001' } });
    expect(config.port).toBe(5001);
    expect(config.session.idleTimeoutSeconds).toBe(60);
    expect(config.session.absoluteLifetimeSeconds).toBe(30 * 86_400);
  });

  it.each([
    [{ env: { TESSERA_PORT: 'abc' } }, 'port'],
    [{ env: { TESSERA_PORT: '70000' } }, 'port'],
    [{ env: { TESSERA_DATABASE_URL: 'mysql://x' } }, 'databaseUrl'],
    [{ env: { TESSERA_DATABASE_POOL_SIZE: '0' } }, 'databasePoolSize'],
    [{ env: { TESSERA_ADMIN_TOKEN: 'short' } }, 'adminToken'],
    [{ env: { TESSERA_ISSUER: 'ftp://x' } }, 'issuer'],
    [{ file: { session: { idleTimeoutSeconds: 0 } } }, 'session.idleTimeoutSeconds'],
    [{ file: { cookie: { nmae: 'x' } } }, 'cookie'],
    [{ file: { unknownKey: 1 } }, '(root)'],
    [{ file: [] }, '(file)'],
    [{ file: { outbox: { timeoutMs: 60_000, leaseSeconds: 30 } } }, 'outbox.timeoutMs'],
  ])('rejects %j naming the key %s', (sources, key) => {
    let caught: unknown;
    try {
      loadConfig(sources as Parameters<typeof loadConfig>[0]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).key.startsWith(key)).toBe(true);
    expect((caught as ConfigError).message).toContain(key);
  });

  it('names the environment variable of a bad key', () => {
    expect(() => loadConfig({ env: { TESSERA_PORT: 'abc' } })).toThrow(/TESSERA_PORT/);
  });

  it('allows insecure cookies only for a loopback issuer', () => {
    expect(loadConfig({ env: { TESSERA_COOKIE_SECURE: 'false' } }).cookie.secure).toBe(false);
    expect(() => loadConfig({ env: { TESSERA_COOKIE_SECURE: 'false', TESSERA_ISSUER: 'http://auth.example.com' } })).toThrow(/cookie\.secure/);
  });

  it('takes SSF upstreams from the file: names unique, keys over https except on loopback, no unknown member', () => {
    const upstream = { name: 'idp', issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks' };
    expect(loadConfig().ssf.upstreams).toEqual([]);
    expect(loadConfig({ file: { ssf: { upstreams: [upstream, { ...upstream, name: 'local', jwksUri: 'http://127.0.0.1:8080/jwks' }] } } }).ssf.upstreams.map((u) => u.name)).toEqual(['idp', 'local']);
    expect(() => loadConfig({ file: { ssf: { upstreams: [upstream, upstream] } } })).toThrow(/ssf\.upstreams\[1\]\.name.*used twice/);
    expect(() => loadConfig({ file: { ssf: { upstreams: [{ ...upstream, jwksUri: 'http://idp.example.com/jwks' }] } } })).toThrow(/ssf\.upstreams\[0\]\.jwksUri.*https/);
    expect(() => loadConfig({ file: { ssf: { upstreams: [{ ...upstream, name: 'Bad Name' }] } } })).toThrow(/ssf\.upstreams/);
    expect(() => loadConfig({ file: { ssf: { upstreams: [{ ...upstream, authorizationHeader: 'short' }] } } })).toThrow(/ssf\.upstreams/);
    expect(() => loadConfig({ file: { ssf: { upstreams: [{ ...upstream, secret: 'x'.repeat(20) }] } } })).toThrow(/ssf\.upstreams/);
  });
});
