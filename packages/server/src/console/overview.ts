import { END_REASONS } from '@tessera/core';
import type { TesseraApp } from '../context.js';
import { barChart } from './charts.js';
import { showPage, type ConsoleKit, CONSOLE_ROUTE } from './kit.js';
import { renderConsolePage, text } from './layout.js';

const HOUR_MS = 3_600_000;

/**
 * The console's overview (`GET /admin`): active sessions, logout deliveries by status and
 * the revocations of the last hour by reason, as figures and small charts. The figures come
 * from the same store reads as the metrics endpoint (operationalCounts) and the admin API's
 * delivery listing (countDeliveries).
 */
export async function overviewPage(app: TesseraApp, kit: ConsoleKit): Promise<void> {
  const store = kit.authority.deps.store;
  app.get('/', { schema: { ...CONSOLE_ROUTE, description: 'Admin console: overview with counts and small charts.', produces: ['text/html'] } }, async (request, reply) => {
    const now = kit.authority.deps.clock.now();
    const [ops, deliveries, recent] = await Promise.all([store.operationalCounts(), store.countDeliveries(), store.countRevocationsSince(now - HOUR_MS)]);
    const reasons = END_REASONS.map((reason) => ({ label: reason, value: recent[reason] ?? 0, className: 'bar-reason' }));
    const lastHour = reasons.reduce((n, r) => n + r.value, 0);
    const body = `<div class="cards">
<section class="card" aria-labelledby="h-sessions"><h2 id="h-sessions">Active sessions</h2><p class="figure" data-count="active-sessions">${ops.activeSessions}</p>${ops.estimated ? '<p class="hint">Estimated by PostgreSQL\'s planner statistics.</p>' : ''}<a href="/admin/users">Find a user</a></section>
<section class="card" aria-labelledby="h-deliveries"><h2 id="h-deliveries">Logout deliveries</h2>${barChart({ id: 'chart-deliveries', title: 'Logout deliveries by status', bars: [
      { label: 'delivered', value: deliveries.delivered, className: 'bar-delivered' },
      { label: 'pending', value: deliveries.pending, className: 'bar-pending' },
      { label: 'dead', value: deliveries.dead, className: 'bar-dead' },
    ] })}<p class="hint"><span data-count="pending-deliveries">${deliveries.pending}</span> pending, <span data-count="dead-deliveries">${deliveries.dead}</span> dead.</p></section>
<section class="card" aria-labelledby="h-revocations"><h2 id="h-revocations">Revocations in the last hour</h2><p class="figure" data-count="revocations-hour">${lastHour}</p>${barChart({ id: 'chart-reasons', title: 'Revocations in the last hour by reason', bars: reasons })}<a href="/admin/revocations">Open the revocation log</a></section>
</div>
<p class="hint">As of ${text(new Date(now).toISOString())}.</p>`;
    return showPage(kit, request, reply, 200, (csrf) => renderConsolePage({ title: 'Overview', section: 'overview', csrf, body }));
  });
}
