// The HTTP form client (support/form-client.ts, used where no real browser is needed)
// trusts this jar to keep cookies as a browser does (shared across ports, deleted by
// Max-Age=0), so those rules are pinned here.
import { describe, expect, it } from 'vitest';
import { createCookieJar } from './support/cookie-jar.js';

describe('test cookie jar', () => {
  it('shares host cookies across ports but not across hosts', () => {
    const jar = createCookieJar();
    jar.store('http://127.0.0.1:4000/login', ['s=1; Path=/; HttpOnly']);
    expect(jar.headerFor('http://127.0.0.1:3001/')).toBe('s=1');
    expect(jar.headerFor('http://localhost:4000/')).toBe('');
    expect(jar.get('s', 'http://127.0.0.1:3002/')?.httpOnly).toBe(true);
  });

  it('scopes by Path, defaulting to the directory of the request path', () => {
    const jar = createCookieJar();
    jar.store('http://127.0.0.1:4000/login', ['csrf=a; Path=/login']);
    jar.store('http://127.0.0.1:4000/v1/logout', ['d=b']);
    expect(jar.headerFor('http://127.0.0.1:4000/login')).toBe('csrf=a');
    expect(jar.headerFor('http://127.0.0.1:4000/loginx')).toBe('');
    expect(jar.headerFor('http://127.0.0.1:4000/v1/sessions')).toBe('d=b');
    expect(jar.headerFor('http://127.0.0.1:4000/')).toBe('');
  });

  it('replaces by name and path, and deletes on Max-Age=0 or a past Expires', () => {
    let now = 1_000_000;
    const jar = createCookieJar(() => now);
    jar.store('http://127.0.0.1/', ['s=1; Path=/', 't=1; Path=/', 'u=1; Max-Age=10']);
    jar.store('http://127.0.0.1/', ['s=2; Path=/']);
    expect(jar.headerFor('http://127.0.0.1/')).toBe('s=2; t=1; u=1');
    jar.store('http://127.0.0.1/', ['s=; Path=/; Max-Age=0', 't=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT']);
    expect(jar.headerFor('http://127.0.0.1/')).toBe('u=1');
    now += 10_001;
    expect(jar.headerFor('http://127.0.0.1/')).toBe('');
  });

  it('refuses a foreign Domain and Secure cookies over http', () => {
    const jar = createCookieJar();
    jar.store('http://app.example.test/', ['a=1; Domain=other.test', 'b=1; Secure', 'c=1; Domain=example.test']);
    expect(jar.all().map((c) => c.name)).toEqual(['c']);
    expect(jar.headerFor('http://forum.example.test/')).toBe('c=1');
    jar.store('https://app.example.test/', ['b=1; Secure']);
    expect(jar.headerFor('http://app.example.test/')).toBe('c=1');
    expect(jar.headerFor('https://app.example.test/')).toBe('c=1; b=1');
  });
});
