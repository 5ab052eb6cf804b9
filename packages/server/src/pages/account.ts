import Bowser from 'bowser';
import type { Session } from '@tessera/core';
import { escapeHtml, renderPage } from './render.js';

/** What the last action of the devices page did (the `done` query of the redirect after it). */
export type AccountDone = 'device' | 'others' | 'password' | 'gone' | 'consent' | 'no_consent';

const DONE_NOTICES: Record<AccountDone, string> = {
  device: 'That device is signed out.',
  others: 'All your other devices are signed out.',
  password: 'Your password is changed. All your other devices are signed out.',
  gone: 'That device was already signed out.',
  consent: 'The app\'s access is withdrawn. It will ask you again the next time you sign in to it.',
  no_consent: 'That app had no access to withdraw.',
};

/** An app the user allowed on the consent page (the OpenID Provider's), as the page lists it. */
export interface AccountConsent {
  clientId: string;
  appName: string;
  scope: string;
  grantedAt: number;
}

/** One session as the devices page shows it (no token, no token id, no hash). */
export interface AccountDevice {
  session: Session;
  /** Names of the apps that joined the session and have not left it. */
  appNames: string[];
}

/** Errors of the change-password form, shown next to their field. */
export interface PasswordErrors {
  current?: string;
  next?: string;
  form?: string;
}

/**
 * "Browser on OS" from a User-Agent header, with bowser (a maintained parser, MIT): the
 * header is whatever the client sent, so an unparsable one reads "Unknown browser".
 */
export function describeDevice(userAgent: string | null): string {
  if (!userAgent) return 'Unknown device';
  const parsed = Bowser.parse(userAgent);
  const browser = parsed.browser.name ? `${parsed.browser.name}${parsed.browser.version ? ` ${parsed.browser.version.split('.')[0]}` : ''}` : 'Unknown browser';
  const os = parsed.os.name ? `${parsed.os.name}${parsed.os.versionName ? ` ${parsed.os.versionName}` : parsed.os.version ? ` ${parsed.os.version}` : ''}` : undefined;
  return os ? `${browser} on ${os}` : browser;
}

/** "just now", "5 minutes ago", "3 days ago": the exact time goes in `<time>` beside it. */
export function relativeTime(at: number, now: number): string {
  const seconds = Math.round((now - at) / 1000);
  if (seconds < 45) return 'just now';
  const units: Array<[number, string]> = [[60, 'minute'], [3600, 'hour'], [86_400, 'day']];
  let [size, name] = units[0]!;
  for (const unit of units) if (seconds >= unit[0]) [size, name] = unit;
  const n = Math.max(1, Math.round(seconds / size));
  return `${n} ${name}${n === 1 ? '' : 's'} ago`;
}

function time(at: number, now: number): string {
  const iso = new Date(at).toISOString();
  // The relative text for reading, the exact time on hover (title) and for machines (datetime).
  return `<time datetime="${iso}" title="${iso}">${escapeHtml(relativeTime(at, now))}</time>`;
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;

/**
 * The "your devices" page: every active session of the signed-in user (the current one
 * marked), a sign-out form per device, one for every other device, and the change-password
 * form. Every form carries the CSRF token; every interpolated value is escaped.
 */
export function renderAccountPage(input: {
  username: string;
  csrf: string;
  currentHandle: string;
  devices: AccountDevice[];
  /** The apps the user allowed on the consent page, newest first. */
  consents?: AccountConsent[];
  now: number;
  done?: AccountDone | undefined;
  passwordErrors?: PasswordErrors | undefined;
}): string {
  const { csrf, now } = input;
  // The current session first, then the most recently active.
  const devices = [...input.devices].sort((a, b) => Number(b.session.handle === input.currentHandle) - Number(a.session.handle === input.currentHandle) || b.session.lastSeenAt - a.session.lastSeenAt);
  const items = devices.map(({ session, appNames }) => {
    const current = session.handle === input.currentHandle;
    return `<li${current ? ' class="current" aria-current="true"' : ''} data-session="${escapeHtml(session.handle)}"><strong>${escapeHtml(describeDevice(session.userAgent))}</strong>${current ? '<span class="badge">This device</span>' : ''}
<dl><dt>IP</dt><dd>${escapeHtml(session.ip ?? 'unknown')}</dd><dt>Signed in</dt><dd>${time(session.createdAt, now)}</dd><dt>Last active</dt><dd>${time(session.lastSeenAt, now)}</dd><dt>Apps</dt><dd>${appNames.length > 0 ? escapeHtml(appNames.join(', ')) : 'none yet'}</dd></dl>
<form method="post" action="/account/sign-out">${hidden('csrf', csrf)}${hidden('handle', session.handle)}<button type="submit" class="secondary">Sign out this device</button></form></li>`;
  });
  const others = devices.length > 1
    ? `<form method="post" action="/account/sign-out-others">${hidden('csrf', csrf)}<button type="submit" class="secondary">Sign out all other devices</button></form><p class="hint">Ends every session of yours except this one, in every app.</p>`
    : '';
  const consentItems = (input.consents ?? []).map((c) => `<li data-consent="${escapeHtml(c.clientId)}"><strong>${escapeHtml(c.appName)}</strong>
<dl><dt>May read</dt><dd>${escapeHtml(c.scope)}</dd><dt>Allowed</dt><dd>${time(c.grantedAt, now)}</dd></dl>
<form method="post" action="/account/consents/withdraw">${hidden('csrf', csrf)}${hidden('client_id', c.clientId)}<button type="submit" class="secondary" aria-label="Withdraw access of ${escapeHtml(c.appName)}">Withdraw access</button></form></li>`);
  const consents = consentItems.length > 0
    ? `<ul class="devices">${consentItems.join('\n')}</ul><p class="hint">Withdrawing does not sign you out; the app asks for your consent again next time.</p>`
    : '<p class="hint">You have not allowed any app on a consent page.</p>';
  const errors = input.passwordErrors ?? {};
  const fieldError = (id: string, message: string | undefined) => (message ? `<p class="field-error" id="${id}-error">${escapeHtml(message)}</p>` : '');
  const described = (id: string, message: string | undefined) => (message ? ` aria-invalid="true" aria-describedby="${id}-error"` : '');
  return renderPage(
    'Your devices',
    `<h1>Your devices</h1><p>Signed in as <strong>${escapeHtml(input.username)}</strong>.</p>
${input.done ? `<p class="notice" role="status">${escapeHtml(DONE_NOTICES[input.done])}</p>` : ''}
<ul class="devices">${items.join('\n')}</ul>
${others}
<h2>Apps you allowed</h2>${consents}
<h2>Change password</h2>${errors.form ? `<p class="error" role="alert">${escapeHtml(errors.form)}</p>` : ''}
<form method="post" action="/account/password">${hidden('csrf', csrf)}
<label for="current_password">Current password</label><input id="current_password" name="current_password" type="password" autocomplete="current-password" required${described('current_password', errors.current)}>${fieldError('current_password', errors.current)}
<label for="new_password">New password</label><input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="8" required${described('new_password', errors.next)}>${fieldError('new_password', errors.next)}
<p class="hint">At least 8 characters. Your other devices will be signed out.</p>
<button type="submit">Change password</button></form>`,
  );
}
