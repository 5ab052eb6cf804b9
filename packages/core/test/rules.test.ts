import { describe, expect, it } from 'vitest';
import { createManualClock, hashPassword, idleDeadline, isAllowedReturnUrl, isSessionExpired, originOf, shouldTouch, verifyPassword, TesseraError, ERROR_CATALOGUE, isTesseraError } from '@tessera/core';

describe('lifetimes', () => {
  it('caps the idle deadline at the absolute end', () => {
    expect(idleDeadline(1000, 500, 10_000)).toBe(1500);
    expect(idleDeadline(9_800, 500, 10_000)).toBe(10_000);
  });
  it('expires at either deadline', () => {
    expect(isSessionExpired({ idleExpiresAt: 100, expiresAt: 200 }, 99)).toBe(false);
    expect(isSessionExpired({ idleExpiresAt: 100, expiresAt: 200 }, 100)).toBe(true);
    expect(isSessionExpired({ idleExpiresAt: 300, expiresAt: 200 }, 250)).toBe(true);
  });
  it('touches at most once per interval', () => {
    expect(shouldTouch({ lastSeenAt: 1000 }, 1500, 1000)).toBe(false);
    expect(shouldTouch({ lastSeenAt: 1000 }, 2000, 1000)).toBe(true);
  });
  it('the manual clock moves only when told', () => {
    const clock = createManualClock(5);
    clock.advance(10);
    expect(clock.now()).toBe(15);
    clock.set(1);
    expect(clock.now()).toBe(1);
  });
});

describe('redirect allow-list', () => {
  const allowed = ['https://site.example/bye', 'https://forum.example/'];
  it.each([
    ['https://site.example/bye', true],
    ['https://forum.example/', true],
    ['https://site.example/bye/', false],
    ['https://site.example/bye?x=1', false],
    ['https://site.example/bye/../admin', false],
    ['https://SITE.example/bye', false],
    ['https://site.example.evil.com/bye', false],
    ['//site.example/bye', false],
    ['https://site.example@evil.com/bye', false],
    ['https://forum.example', false],
    ['javascript:alert(1)', false],
  ])('%s allowed: %s', (url, ok) => {
    expect(isAllowedReturnUrl(url, allowed)).toBe(ok);
  });
  it('reads origins of http(s) URLs only', () => {
    expect(originOf('https://a.example:8443/x?y')).toBe('https://a.example:8443');
    expect(originOf('javascript:alert(1)')).toBeNull();
    expect(originOf('not a url')).toBeNull();
  });
});

describe('passwords', () => {
  it('hashes with argon2id and verifies', async () => {
    const stored = await hashPassword('correct horse battery staple');
    expect(stored.startsWith('$argon2id$')).toBe(true);
    expect(await verifyPassword('correct horse battery staple', stored)).toBe(true);
    expect(await verifyPassword('wrong', stored)).toBe(false);
  });
  it('returns false for a missing or corrupt hash', async () => {
    expect(await verifyPassword('x', null)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });
});

describe('errors', () => {
  it('every code has a 4xx/5xx status and a message', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      expect(code).toMatch(/^[A-Z_]+$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.message.length).toBeGreaterThan(5);
    }
  });
  it('exposes 4xx messages and hides 5xx ones', () => {
    expect(new TesseraError('SESSION_NOT_FOUND').expose).toBe(true);
    expect(new TesseraError('INTERNAL').expose).toBe(false);
    expect(isTesseraError(new TesseraError('USER_NOT_FOUND'), 'USER_NOT_FOUND')).toBe(true);
    expect(isTesseraError(new Error('x'))).toBe(false);
  });
});
