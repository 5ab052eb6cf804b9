import type { AppRecord, DeliveryChannel, NewDelivery, RevocationEvent, SessionRecord } from './model.js';

/** The channels through which an app hears of logouts, from its settings. */
export function channelsOf(app: AppRecord): DeliveryChannel[] {
  const channels: DeliveryChannel[] = [];
  if (app.backchannelLogoutUri) channels.push('backchannel');
  const webhook = app.connectors.webhook as { url?: unknown } | undefined;
  if (webhook && typeof webhook.url === 'string') channels.push('webhook');
  return channels;
}

/**
 * Plans who must be told of a revocation: one delivery per app (and channel) that joined
 * an ended session — for a session end, per session; for a user-wide end, one per app that
 * joined any of the ended sessions, naming only the user (except to a back-channel client
 * that requires `sid`: it gets one per session). An app that had already left a
 * session was told when it left; an app-scoped end tells only the app that left. Apps with
 * no push channel learn of the end on their next check (whoami, introspection, the feed).
 *
 * @example
 * ```ts
 * const deliveries = planLogout({ events, sessions, apps, userWide: false, now, horizonMs });
 * ```
 */
export function planLogout(input: {
  events: RevocationEvent[];
  sessions: SessionRecord[];
  apps: AppRecord[];
  userWide: boolean;
  now: number;
  horizonMs: number;
}): NewDelivery[] {
  const sessions = new Map(input.sessions.map((s) => [s.handle, s]));
  const apps = new Map(input.apps.map((a) => [a.clientId, a]));
  const base = { createdAt: input.now, horizonAt: input.now + input.horizonMs };
  const planned = new Map<string, NewDelivery>();
  for (const event of input.events) {
    const session = sessions.get(event.sid);
    const targets = event.app !== null ? [event.app] : (session?.apps ?? []).filter((a) => a.leftAt === null || a.leftAt === event.at).map((a) => a.clientId);
    for (const clientId of targets) {
      const app = apps.get(clientId);
      if (!app) continue;
      for (const channel of channelsOf(app)) {
        // A client that registered backchannel_logout_session_required rejects a logout token
        // without `sid` (Back-Channel Logout 1.0 §2.4), so a user-wide end tells it of each
        // session on its own rather than once by `sub`.
        const perUser = input.userWide && event.app === null && !(channel === 'backchannel' && app.oidc?.backchannelLogoutSessionRequired);
        const key = perUser ? `${event.sub}|${clientId}|${channel}` : `${event.cursor}|${clientId}|${channel}`;
        const existing = planned.get(key);
        if (existing) {
          existing.handles.push(event.sid);
          existing.cursor = Math.max(existing.cursor, event.cursor);
          continue;
        }
        planned.set(key, { ...base, cursor: event.cursor, sub: event.sub, sid: perUser ? null : event.sid, handles: [event.sid], clientId, channel, reason: event.reason });
      }
    }
  }
  return [...planned.values()];
}
