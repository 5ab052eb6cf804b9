import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, createTestServer, createUserWithSessions, expectError, type TestServer } from './support.js';

let t: TestServer;
beforeEach(async () => {
  t = await createTestServer();
});
afterEach(async () => t.close());

describe('operations endpoints', () => {
  it('GET /health/ready answers 200 while the store is reachable and 503 UNAVAILABLE when it is not', async () => {
    const own = await createTestServer();
    const ready = await own.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ok' });
    await own.store.close();
    const down = await own.app.inject({ method: 'GET', url: '/health/ready' });
    expectError(down, 503, 'UNAVAILABLE');
    expect(down.body).not.toContain('at ');
    await own.app.close();
  });

  it('GET /metrics needs the admin token and exposes sessions, revocations, outbox and latency', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/metrics' }), 401, 'INVALID_ADMIN_TOKEN');
    const { sessions } = await createUserWithSessions(t, 2);
    await t.app.inject({ method: 'DELETE', url: `/admin/api/sessions/${sessions[0]!.handle}`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toMatch(/^tessera_active_sessions 1$/m);
    expect(res.body).toMatch(/^tessera_revocations_total\{reason="admin_revoked"\} 1$/m);
    expect(res.body).toMatch(/^tessera_outbox_deliveries\{status="pending"\} 0$/m);
    expect(res.body).toMatch(/^tessera_feed_subscribers 0$/m);
    expect(res.body).toMatch(/tessera_http_request_duration_seconds_count\{route="\/admin\/api\/sessions\/:handle",method="DELETE",status="204"\} 1/);
    // Route patterns only: no raw URL (which could carry a token) becomes a label.
    expect(res.body).not.toContain(sessions[0]!.handle);
  });

  it('echoes a plain x-request-id and replaces anything else', async () => {
    const kept = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc-123' } });
    expect(kept.headers['x-request-id']).toBe('abc-123');
    const replaced = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad\nvalue "quoted"' } });
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
