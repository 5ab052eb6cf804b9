import { describe, expect, it } from 'vitest';
import { TesseraError, appMay, requireAppMay, type AppRecord } from '@tessera/core';

// The two actions issue-17's routes ask for (activity, logout by the shared cookie), decided
// with the others in app-access.ts. The routes are tested end to end in
// packages/server/test/shared-cookie.test.ts; this pins the decision table itself.
const app = (clientId: string, trusted: boolean) => ({ clientId, trusted }) as AppRecord;
const session = (apps: Array<{ clientId: string; leftAt: number | null }>) => ({ apps: apps.map((a) => ({ ...a, joinedAt: 0 })) });
const codeOf = (fn: () => void) => {
  try {
    fn();
    return null;
  } catch (e) {
    return e instanceof TesseraError ? e.code : String(e);
  }
};

describe('report_activity', () => {
  it('only a current member, trusted or not; refused as SESSION_NOT_FOUND', () => {
    const s = session([{ clientId: 'forum', leftAt: null }, { clientId: 'left', leftAt: 5 }]);
    expect(appMay(app('forum', false), 'report_activity', s)).toBe(true);
    expect(appMay(app('left', false), 'report_activity', s)).toBe(false);
    expect(appMay(app('stranger', true), 'report_activity', s)).toBe(false);
    expect(appMay(app('forum', true), 'report_activity')).toBe(false);
    expect(codeOf(() => requireAppMay(app('stranger', true), 'report_activity', s))).toBe('SESSION_NOT_FOUND');
  });
});

describe('end_by_shared_cookie', () => {
  const s = session([{ clientId: 'forum', leftAt: null }, { clientId: 'shop', leftAt: null }, { clientId: 'left', leftAt: 5 }]);
  it('only the reader (sharedCookie.clientId), and only as a current member', () => {
    expect(appMay(app('forum', false), 'end_by_shared_cookie', s, { sharedCookieReader: 'forum' })).toBe(true);
    // A member that is not the reader, even trusted: every app under the domain receives the cookie.
    expect(appMay(app('shop', true), 'end_by_shared_cookie', s, { sharedCookieReader: 'forum' })).toBe(false);
    expect(appMay(app('left', true), 'end_by_shared_cookie', s, { sharedCookieReader: 'left' })).toBe(false);
    // No reader configured (shared cookie off): nobody.
    expect(appMay(app('forum', true), 'end_by_shared_cookie', s, { sharedCookieReader: null })).toBe(false);
    expect(appMay(app('forum', true), 'end_by_shared_cookie', s)).toBe(false);
  });
  it('refused as TOKEN_INVALID (the cookie is no credential from this app)', () => {
    expect(codeOf(() => requireAppMay(app('shop', true), 'end_by_shared_cookie', s, { sharedCookieReader: 'forum' }))).toBe('TOKEN_INVALID');
    expect(codeOf(() => requireAppMay(app('forum', false), 'end_by_shared_cookie', s, { sharedCookieReader: 'forum' }))).toBeNull();
  });
});
