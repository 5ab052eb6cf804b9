import { Type } from '@fastify/type-provider-typebox';
import { TesseraError, type Delivery } from '@tessera/core';
import type { TesseraApp } from '../context.js';
import { describeDevice } from '../pages/index.js';
import { Cursor, HandleParams } from '../schemas.js';
import { formText, seeOther, showPage, type ConsoleKit, CONSOLE_ROUTE } from './kit.js';
import { notice, postButton, renderConsolePage, table, text, time } from './layout.js';

const SESSION_DONE: Record<string, string> = {
  ended: 'The session is ended. The apps that joined it are being told.',
  retried: 'The delivery is queued again and will be sent now.',
};

const form = { ...CONSOLE_ROUTE, consumes: ['application/x-www-form-urlencoded'], produces: ['text/html'] };

/** The status cell of a delivery: delivered (when), pending (next attempt), dead (last error). */
function statusOf(d: Delivery): string {
  const pill = `<span class="pill status-${d.status}" data-status="${d.status}">${d.status}</span>`;
  if (d.status === 'delivered') return `${pill} ${time(d.deliveredAt)}`;
  if (d.status === 'pending') return `${pill} next attempt ${time(d.nextAttemptAt)}`;
  const error = d.lastError ?? 'unknown';
  // The HTTP status, when the error text does not already say it.
  const status = d.lastStatus !== null && !error.includes(String(d.lastStatus)) ? ` (HTTP ${d.lastStatus})` : '';
  return `${pill} last error: ${text(error)}${status}`;
}

/**
 * One session in the console (`GET /admin/sessions/:handle`): who, which device, which apps,
 * and per app the delivery of its logout notice (delivered; pending with the next attempt;
 * dead with the last error), with a retry button for pending and dead ones. The status is
 * core's sessionDeliveries, the same as GET /admin/api/sessions/:handle/deliveries.
 */
export async function sessionsPages(app: TesseraApp, kit: ConsoleKit): Promise<void> {
  const { authority } = kit;

  app.get('/sessions/:handle', { schema: { ...CONSOLE_ROUTE, produces: ['text/html'], params: HandleParams, querystring: Type.Object({ done: Type.Optional(Type.String({ maxLength: 32 })) }), description: 'Admin console: one session and the logout delivery status of each app.' } }, async (request, reply) => {
    const status = await authority.deliveries.sessionDeliveries(request.params.handle);
    if (!status) throw new TesseraError('SESSION_NOT_FOUND');
    const { session, deliveries, pullOnly } = status;
    const [user, apps] = await Promise.all([authority.deps.store.findUserById(session.userId), authority.apps.listApps()]);
    const names = new Map(apps.map((a) => [a.clientId, a.name]));
    const appName = (id: string) => names.get(id) ?? id;
    const body = (csrf: string) => {
      const rows = deliveries.map((d) => [
        text(appName(d.clientId)),
        text(d.channel),
        `<span data-delivery="${d.id}">${statusOf(d)}</span>`,
        String(d.attempts),
        text(d.reason),
        d.status === 'delivered' ? '' : postButton(`/admin/deliveries/${d.id}/retry`, csrf, 'Retry now', { small: true, fields: { handle: session.handle }, name: `Retry now: the delivery to ${appName(d.clientId)}` }),
      ]);
      const joined = session.apps.map((a) => `<li>${text(appName(a.clientId))} — joined ${time(a.joinedAt)}${a.leftAt !== null ? `, left ${time(a.leftAt)}` : ''}</li>`).join('');
      const active = session.endedAt === null;
      return `${notice(request.query.done ? SESSION_DONE[request.query.done] : undefined)}
<dl class="facts"><dt>User</dt><dd>${user ? `<a href="/admin/users/${encodeURIComponent(user.id)}">${text(user.username)}</a>` : text(session.userId)}</dd>
<dt>Handle</dt><dd>${text(session.handle)}</dd><dt>Device</dt><dd>${text(describeDevice(session.userAgent))}</dd><dt>IP</dt><dd>${text(session.ip ?? '—')}</dd>
<dt>Signed in</dt><dd>${time(session.createdAt)}</dd><dt>Last active</dt><dd>${time(session.lastSeenAt)}</dd>
<dt>Status</dt><dd data-session-status="${active ? 'active' : 'ended'}">${active ? `active until ${time(session.idleExpiresAt)} unless used` : `ended ${time(session.endedAt)} (${text(session.endReason ?? '')}, by ${text(session.endedBy ?? '')})`}</dd></dl>
${active ? `<div class="actions">${postButton(`/admin/sessions/${encodeURIComponent(session.handle)}/end`, csrf, 'End this session', { secondary: true })}</div>` : ''}
<h2 id="apps">Apps that joined</h2>${joined ? `<ul>${joined}</ul>` : '<p class="hint">No app joined this session.</p>'}
<h2 id="deliveries">Logout deliveries</h2>
${table('Logout deliveries per app', ['App', 'Channel', 'Status', 'Attempts', 'Reason', 'Action'], rows, active ? 'None yet: the apps are told when the session ends.' : 'No app of this session has a back-channel or webhook.')}
${pullOnly.length > 0 ? `<p class="hint">Without a push channel (they learn of the end on their next check): ${text(pullOnly.map(appName).join(', '))}.</p>` : ''}`;
    };
    return showPage(kit, request, reply, 200, (csrf) => renderConsolePage({ title: 'Session', section: 'users', csrf, body: body(csrf) }));
  });

  app.post('/sessions/:handle/end', { schema: { ...form, params: HandleParams, description: 'Admin console: end one session (DELETE /admin/api/sessions/:handle).' } }, async (request, reply) => {
    await authority.sessions.revokeSession(request.params.handle, { actor: 'admin', reason: 'admin_revoked', ip: request.ip });
    return seeOther(reply, `/admin/sessions/${encodeURIComponent(request.params.handle)}?done=ended`);
  });

  app.post('/deliveries/:id/retry', { schema: { ...form, params: Type.Object({ id: Cursor({ minimum: 1 }) }), description: 'Admin console: send a pending or dead delivery again now (POST /admin/api/deliveries/:id/retry).' } }, async (request, reply) => {
    const retried = await authority.deliveries.retryDelivery(request.params.id, 'admin', request.ip);
    kit.onDeliveriesQueued();
    // Back to the session the button was on; only a well-formed handle is used in the redirect.
    const handle = formText(request.body, 'handle');
    const back = handle && /^[A-Za-z0-9_-]{1,64}$/.test(handle) ? handle : retried.sid;
    return seeOther(reply, back ? `/admin/sessions/${encodeURIComponent(back)}?done=retried` : '/admin');
  });
}
