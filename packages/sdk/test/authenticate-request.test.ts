// The framework-neutral request check: where the token is read from and what a failure says.
import { describe, expect, it } from 'vitest';
import { readAccessToken, toFailure } from '../src/authenticate-request.js';
import { TesseraSdkError } from '../src/errors.js';

describe('readAccessToken', () => {
  it('reads Authorization: Bearer, case-insensitively, from Node headers and Fetch Headers', () => {
    expect(readAccessToken({ authorization: 'Bearer abc.def.ghi' })).toBe('abc.def.ghi');
    expect(readAccessToken({ authorization: 'bearer   abc ' })).toBe('abc');
    expect(readAccessToken(new Headers({ authorization: 'BEARER abc' }))).toBe('abc');
    expect(readAccessToken({ authorization: 'Basic abc' })).toBeNull();
    expect(readAccessToken({ authorization: 'Bearer ' })).toBeNull();
    expect(readAccessToken({})).toBeNull();
  });

  it('falls back to the named cookie only when asked to, and prefers the header', () => {
    const cookie = 'a=1; app_at=tok%2Ehere; b="2"';
    expect(readAccessToken({ cookie })).toBeNull();
    expect(readAccessToken({ cookie }, 'app_at')).toBe('tok.here');
    expect(readAccessToken({ cookie: 'app_at="quoted"' }, 'app_at')).toBe('quoted');
    expect(readAccessToken({ cookie: 'xapp_at=1' }, 'app_at')).toBeNull();
    expect(readAccessToken({ cookie: 'app_at=%E0%A4%A' }, 'app_at')).toBe('%E0%A4%A');
    expect(readAccessToken({ cookie, authorization: 'Bearer header' }, 'app_at')).toBe('header');
    expect(readAccessToken(new Headers({ cookie }), 'app_at')).toBe('tok.here');
  });
});

describe('toFailure', () => {
  it('maps a code to its status, the error envelope and RFC 6750 headers', () => {
    expect(toFailure(new TesseraSdkError('TOKEN_MISSING'))).toMatchObject({ ok: false, status: 401, body: { error: 'TOKEN_MISSING' }, headers: { 'www-authenticate': 'Bearer', 'cache-control': 'no-store' } });
    expect(toFailure(new TesseraSdkError('TOKEN_REVOKED')).headers['www-authenticate']).toBe('Bearer error="invalid_token", error_description="TOKEN_REVOKED"');
    const unavailable = toFailure(new TesseraSdkError('FEED_UNAVAILABLE'));
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers['www-authenticate']).toBeUndefined();
  });
});
