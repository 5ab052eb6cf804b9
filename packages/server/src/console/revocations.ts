import { Type } from '@fastify/type-provider-typebox';
import { END_REASONS, type EndReason } from '@tessera/core';
import type { TesseraApp } from '../context.js';
import { showPage, type ConsoleKit, CONSOLE_ROUTE } from './kit.js';
import { field, renderConsolePage, select, table, text, time } from './layout.js';

const PAGE = 50;
const Reason = Type.Union([Type.Literal(''), ...END_REASONS.map((r) => Type.Literal(r))]);
const LogQuery = Type.Object({
  user: Type.Optional(Type.String({ maxLength: 256 })),
  reason: Type.Optional(Reason),
  app: Type.Optional(Type.String({ maxLength: 128 })),
  before: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
});

/**
 * The revocation log in the console (`GET /admin/revocations`): newest first, filterable by
 * user (id, username or email), reason and app, paged with "older". The entries are the
 * log's own (store.findRevocations), the same log the feed and the outbox are made from.
 */
export async function revocationsPage(app: TesseraApp, kit: ConsoleKit): Promise<void> {
  const { authority } = kit;
  const store = authority.deps.store;

  app.get('/revocations', { schema: { ...CONSOLE_ROUTE, produces: ['text/html'], querystring: LogQuery, description: 'Admin console: the revocation log, newest first, filterable by user, reason and app.' } }, async (request, reply) => {
    const q = request.query;
    const userRef = (q.user ?? '').trim();
    const reason = q.reason ? (q.reason as EndReason) : undefined;
    const clientId = (q.app ?? '').trim();
    // A user given by id, username or email (as the CLI takes it); an unknown one lists nothing.
    const user = userRef ? (await store.findUserById(userRef)) ?? (await authority.deps.store.findUserByLogin(userRef)) : null;
    const apps = await authority.apps.listApps();
    const events = userRef && !user ? [] : await store.findRevocations({ userId: user?.id, reason, clientId: clientId || undefined, before: q.before, limit: PAGE + 1 });
    const more = events.length > PAGE;
    const shown = events.slice(0, PAGE);
    const names = new Map(apps.map((a) => [a.clientId, a.name]));
    const usernames = new Map<string, string>();
    for (const id of new Set(shown.map((e) => e.sub))) {
      const found = await store.findUserById(id);
      if (found) usernames.set(id, found.username);
    }
    const rows = shown.map((e) => [
      String(e.cursor),
      time(e.at),
      usernames.has(e.sub) ? `<a href="/admin/users/${encodeURIComponent(e.sub)}">${text(usernames.get(e.sub)!)}</a>` : text(e.sub),
      `<a href="/admin/sessions/${encodeURIComponent(e.sid)}">${text(e.sid)}</a>`,
      text(e.reason),
      text(e.actor),
      text(e.app ? `only ${names.get(e.app) ?? e.app}` : 'whole session'),
    ]);
    const filter = new URLSearchParams({ ...(userRef ? { user: userRef } : {}), ...(reason ? { reason } : {}), ...(clientId ? { app: clientId } : {}) });
    const older = more ? `<a href="/admin/revocations?${new URLSearchParams({ ...Object.fromEntries(filter), before: String(shown[shown.length - 1]!.cursor) }).toString()}">Older entries</a>` : '';
    const userMissing = Boolean(userRef && !user);
    const body = `<form method="get" action="/admin/revocations" class="inline">
<div>${field({ name: 'user', label: 'User (id, username or email)', value: userRef, errors: userMissing ? { user: `No user is called "${userRef}".` } : {} })}</div>
<div>${select({ name: 'reason', label: 'Reason', value: reason ?? '', options: [['', 'Any reason'], ...END_REASONS.map((r) => [r, r] as const)] })}</div>
<div>${select({ name: 'app', label: 'App', value: clientId, options: [['', 'Any app'], ...apps.map((a) => [a.clientId, a.name] as const)] })}</div>
<button type="submit">Filter</button></form>
${table('Revocation log, newest first', ['Cursor', 'At', 'User', 'Session', 'Reason', 'By', 'Scope'], rows, 'No entries match.')}
${older}`;
    return showPage(kit, request, reply, 200, (csrf) => renderConsolePage({ title: 'Revocation log', section: 'revocations', csrf, body }));
  });
}
