import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestServer, type TestServer } from './support.js';

describe('GET /health', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await createTestServer();
  });
  afterEach(async () => t.close());

  it('answers 200 {"status":"ok"} to anyone, never cached', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('refuses other methods with the NOT_FOUND envelope', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/health' });
    expect(res.json().error).toBe('NOT_FOUND');
    expect(res.statusCode).toBe(404);
  });
});
