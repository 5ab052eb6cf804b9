import { Type } from '@fastify/type-provider-typebox';
import { isTesseraError, type Session, type User } from '@tessera/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TesseraApp } from '../context.js';
import { describeDevice } from '../pages/index.js';
import { IdParams, UserClaims } from '../schemas.js';
import { checkAgainst, formText, seeOther, showPage, type ConsoleKit, CONSOLE_ROUTE } from './kit.js';
import { checkbox, field, formError, hidden, notice, postButton, renderConsolePage, select, table, text, time, type FieldErrors } from './layout.js';

const USER_DONE: Record<string, string> = {
  created: 'The user is created.',
  disabled: 'The user is disabled; all of their sessions ended.',
  enabled: 'The user is enabled again.',
  ended: 'The session is ended.',
  all: 'All of the user\'s sessions are ended.',
  others: 'All of the user\'s sessions but the one kept are ended.',
  app: 'That app\'s part of the user\'s sessions is ended.',
};
const LIST_DONE: Record<string, string> = { deleted: 'The user is deleted; all of their sessions ended.' };

const CREATE_MESSAGES: Record<string, string> = {
  username: 'Enter a username of at most 64 characters, without spaces.',
  email: 'Enter an email of at most 254 characters, or leave it empty.',
  password: 'A password needs 8 to 1024 characters; leave it empty for a user who signs in through an app.',
};

const form = { ...CONSOLE_ROUTE, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] };
const page = { ...CONSOLE_ROUTE, produces: ['text/html'] };
const SearchQuery = Type.Object({ q: Type.Optional(Type.String({ maxLength: 256 })), done: Type.Optional(Type.String({ maxLength: 32 })) });
const DoneQuery = Type.Object({ done: Type.Optional(Type.String({ maxLength: 32 })) });

/** "Session 3 of alice: Chrome 120 on Linux" — the name a session's buttons are read with. */
const sessionLabel = (s: Session) => `${describeDevice(s.userAgent)}, ${s.ip ?? 'unknown IP'}`;

function renderUsers(input: { csrf: string; q: string; users: User[]; done?: string; errors?: FieldErrors; values?: Record<string, string> }): string {
  const rows = input.users.map((u) => [
    `<a href="/admin/users/${encodeURIComponent(u.id)}">${text(u.username)}</a>`,
    text(u.email ?? '—'),
    u.disabled ? '<span class="pill status-dead">disabled</span>' : 'active',
    time(u.createdAt),
  ]);
  const errors = input.errors ?? {};
  const v = input.values ?? {};
  return `${notice(input.done ? LIST_DONE[input.done] : undefined)}
<form method="get" action="/admin/users" role="search" class="inline"><div>${field({ name: 'q', label: 'Search by username or email', type: 'search', value: input.q })}</div><button type="submit">Search</button></form>
${table(input.q ? `Users matching "${input.q}"` : 'Users', ['Username', 'Email', 'Status', 'Created'], rows, input.q ? 'No user matches.' : 'No users yet.')}
<h2 id="create">Create a user</h2>${formError(errors.form)}
<form method="post" action="/admin/users">${hidden('csrf', input.csrf)}
${field({ name: 'username', label: 'Username', required: true, value: v.username, errors, autocomplete: 'off' })}
${field({ name: 'email', label: 'Email (optional)', type: 'email', value: v.email, errors, autocomplete: 'off' })}
${checkbox({ name: 'email_verified', label: 'This email is verified', checked: v.email_verified === '1' })}
${field({ name: 'password', label: 'Password (optional)', type: 'password', errors, autocomplete: 'new-password', hint: 'At least 8 characters. Without one, the user can only sign in through an app.' })}
<button type="submit">Create user</button></form>`;
}

function renderUser(input: { csrf: string; user: User; sessions: Session[]; ended: Session[]; appNames: Map<string, string>; done?: string; errors?: FieldErrors; values?: Record<string, string> }): string {
  const { csrf, user } = input;
  const base = `/admin/users/${encodeURIComponent(user.id)}`;
  const errors = input.errors ?? {};
  const apps = (s: Session) => s.apps.filter((a) => a.leftAt === null).map((a) => input.appNames.get(a.clientId) ?? a.clientId);
  const rows = input.sessions.map((s) => [
    `<a href="/admin/sessions/${encodeURIComponent(s.handle)}">${text(describeDevice(s.userAgent))}</a>`,
    text(s.ip ?? '—'),
    time(s.createdAt),
    time(s.lastSeenAt),
    text(apps(s).join(', ') || 'none'),
    postButton(`/admin/sessions/${encodeURIComponent(s.handle)}/end`, csrf, 'End', { small: true, secondary: true, name: `End session: ${sessionLabel(s)}` }),
  ]);
  const endedRows = input.ended.map((s) => [
    `<a href="/admin/sessions/${encodeURIComponent(s.handle)}">${text(describeDevice(s.userAgent))}</a>`,
    time(s.endedAt),
    text(s.endReason ?? ''),
    text(s.endedBy ?? ''),
  ]);
  const joined = [...new Set(input.sessions.flatMap((s) => s.apps.filter((a) => a.leftAt === null).map((a) => a.clientId)))];
  const v = input.values ?? {};
  const bulk = input.sessions.length === 0 ? '' : `<h2 id="end-many">End several sessions</h2>${formError(errors.form)}
<form method="post" action="${base}/sessions/end">${hidden('csrf', csrf)}
${select({ name: 'scope', label: 'Which sessions', value: v.scope, options: [['all', 'All sessions'], ['except', 'All but the one chosen below'], ['app', 'Only the chosen app\'s part of every session']], errors })}
${select({ name: 'except', label: 'Session to keep (for "all but")', value: v.except, options: [['', '—'], ...input.sessions.map((s) => [s.handle, sessionLabel(s)] as const)], errors })}
${select({ name: 'app', label: 'App (for "only the app\'s part")', value: v.app, options: [['', '—'], ...joined.map((id) => [id, input.appNames.get(id) ?? id] as const)], errors })}
<button type="submit" class="secondary">End sessions</button></form>`;
  return `${notice(input.done ? USER_DONE[input.done] : undefined)}
<dl class="facts"><dt>Id</dt><dd>${text(user.id)}</dd><dt>Username</dt><dd>${text(user.username)}</dd><dt>Email</dt><dd>${text(user.email ?? '—')}${user.email ? (user.emailVerified ? ' (verified)' : ' (not verified)') : ''}</dd>
<dt>Status</dt><dd>${user.disabled ? '<span class="pill status-dead">disabled</span>' : 'active'}</dd><dt>Created</dt><dd>${time(user.createdAt)}</dd></dl>
<div class="actions">${postButton(`${base}/disable`, csrf, user.disabled ? 'Enable user' : 'Disable user', { fields: { disabled: user.disabled ? '0' : '1' }, secondary: !user.disabled })}
<a href="/admin/revocations?user=${encodeURIComponent(user.id)}">Revocations of this user</a></div>
<h2 id="sessions">Active sessions (${input.sessions.length})</h2>
${table(`Active sessions of ${user.username}`, ['Device', 'IP', 'Signed in', 'Last active', 'Apps', 'Action'], rows, 'No active session.')}
${bulk}
<h2 id="ended">Recently ended sessions</h2>
${table(`Recently ended sessions of ${user.username}`, ['Device', 'Ended', 'Reason', 'By'], endedRows, 'None.')}
<h2 id="delete">Delete the user</h2>
<form method="post" action="${base}/delete">${hidden('csrf', csrf)}
${checkbox({ name: 'confirm', label: `Yes, delete ${user.username} and end all of their sessions`, errors })}
<button type="submit" class="secondary">Delete user</button></form>`;
}

/**
 * The console's users: search by username or email, create, and one user's page (disable or
 * enable, delete, their sessions: end one, all, all but one, or one app's part). Each action
 * is the admin API's call (routes/admin.ts) with the actor `admin`.
 */
export async function usersPages(app: TesseraApp, kit: ConsoleKit): Promise<void> {
  const { authority } = kit;
  const by = 'admin' as const;

  async function showList(request: FastifyRequest, reply: FastifyReply, status: number, extra: { q?: string; done?: string; errors?: FieldErrors; values?: Record<string, string> } = {}) {
    const q = extra.q ?? '';
    const found = await authority.users.searchUsers(q, 50);
    // An exact user id finds that user too (ids are what logs and the API print).
    const id = q.trim();
    // Only text shaped like an id is looked up (an id is at most 128 of these characters).
    const byId = /^[A-Za-z0-9_.@:-]{1,128}$/.test(id) && !found.some((u) => u.id === id) ? await authority.deps.store.findUserById(id) : null;
    const users = byId ? [(({ passwordHash: _never, ...u }) => u)(byId), ...found] : found;
    return showPage(kit, request, reply, status, (csrf) => renderConsolePage({ title: 'Users', section: 'users', csrf, body: renderUsers({ csrf, q, users, ...extra }) }));
  }

  async function showUser(request: FastifyRequest, reply: FastifyReply, id: string, status: number, extra: { done?: string; errors?: FieldErrors; values?: Record<string, string> } = {}) {
    const user = await authority.users.getUser(id);
    const [sessions, all, apps] = await Promise.all([authority.sessions.listUserSessions(user.id), authority.deps.store.listSessionsByUser(user.id, { includeEnded: true }), authority.apps.listApps()]);
    const ended = all.filter((s) => s.endedAt !== null).slice(0, 10);
    const appNames = new Map(apps.map((a) => [a.clientId, a.name]));
    const { passwordHash: _never, ...shown } = user;
    return showPage(kit, request, reply, status, (csrf) => renderConsolePage({ title: `User ${user.username}`, section: 'users', csrf, body: renderUser({ csrf, user: shown, sessions, ended, appNames, ...extra }) }));
  }

  app.get('/users', { schema: { ...page, querystring: SearchQuery, description: 'Admin console: search users by username or email; create one.' } }, async (request, reply) =>
    showList(request, reply, 200, { q: request.query.q ?? '', done: request.query.done }));

  app.post('/users', { schema: { ...form, description: 'Admin console: create a user (the admin API\'s POST /admin/api/users).' } }, async (request, reply) => {
    const username = (formText(request.body, 'username') ?? '').trim();
    const email = (formText(request.body, 'email') ?? '').trim();
    const password = formText(request.body, 'password') ?? '';
    const emailVerified = formText(request.body, 'email_verified') === '1';
    const values = { username, email, email_verified: emailVerified ? '1' : '' };
    const body = { username, ...(email ? { email } : {}), ...(password ? { password } : {}), email_verified: emailVerified };
    const errors: FieldErrors = username === '' ? { username: 'Enter a username.' } : email && !/^[^@\s]+@[^@\s]+$/.test(email) ? { email: 'Enter an email address like name@example.com, or leave it empty.' } : checkAgainst(UserClaims, body, CREATE_MESSAGES);
    if (Object.keys(errors).length > 0) return showList(request, reply, 400, { errors, values });
    try {
      const user = await authority.users.createUser({ username, email: email || null, emailVerified, password: password || null }, by);
      return seeOther(reply, `/admin/users/${encodeURIComponent(user.id)}?done=created`);
    } catch (error) {
      if (isTesseraError(error, 'USER_CONFLICT')) return showList(request, reply, 409, { errors: { username: 'A user with this username or email already exists.' }, values });
      if (isTesseraError(error, 'INVALID_NAME')) return showList(request, reply, 400, { errors: { username: error.message }, values });
      throw error;
    }
  });

  app.get('/users/:id', { schema: { ...page, params: IdParams, querystring: DoneQuery, description: 'Admin console: one user, their sessions and actions.' } }, async (request, reply) =>
    showUser(request, reply, request.params.id, 200, { done: request.query.done }));

  app.post('/users/:id/disable', { schema: { ...form, params: IdParams, description: 'Admin console: disable (ending every session) or enable a user.' } }, async (request, reply) => {
    const disabled = formText(request.body, 'disabled') !== '0';
    await authority.users.updateUser(request.params.id, { disabled }, by);
    return seeOther(reply, `/admin/users/${encodeURIComponent(request.params.id)}?done=${disabled ? 'disabled' : 'enabled'}`);
  });

  app.post('/users/:id/delete', { schema: { ...form, params: IdParams, description: 'Admin console: delete a user (ending every session); needs the confirmation box.' } }, async (request, reply) => {
    if (formText(request.body, 'confirm') !== '1') return showUser(request, reply, request.params.id, 400, { errors: { confirm: 'Tick this box to confirm the deletion.' } });
    await authority.users.deleteUser(request.params.id, by);
    return seeOther(reply, '/admin/users?done=deleted');
  });

  app.post('/users/:id/sessions/end', { schema: { ...form, params: IdParams, description: 'Admin console: end all of a user\'s sessions, all but one, or one app\'s part (DELETE /admin/api/users/:id/sessions).' } }, async (request, reply) => {
    const user = await authority.users.getUser(request.params.id);
    const scope = formText(request.body, 'scope');
    const except = formText(request.body, 'except') ?? '';
    const clientId = formText(request.body, 'app') ?? '';
    const values = { scope: scope ?? '', except, app: clientId };
    const again = (errors: FieldErrors) => showUser(request, reply, user.id, 400, { errors, values });
    if (scope !== 'all' && scope !== 'except' && scope !== 'app') return again({ scope: 'Choose which sessions to end.' });
    const sessions = await authority.sessions.listUserSessions(user.id);
    if (scope === 'except' && !sessions.some((s) => s.handle === except)) return again({ except: 'Choose one of the user\'s active sessions to keep.' });
    if (scope === 'app') {
      if (clientId === '') return again({ app: 'Choose the app whose part ends.' });
      try {
        await authority.apps.getApp(clientId);
      } catch (error) {
        if (isTesseraError(error, 'APP_NOT_FOUND')) return again({ app: 'No such app.' });
        throw error;
      }
    }
    await authority.sessions.revokeUserSessions(user.id, { exceptHandle: scope === 'except' ? except : undefined, clientId: scope === 'app' ? clientId : undefined }, { actor: by, reason: 'admin_revoked', ip: request.ip });
    return seeOther(reply, `/admin/users/${encodeURIComponent(user.id)}?done=${scope === 'except' ? 'others' : scope}`);
  });
}
