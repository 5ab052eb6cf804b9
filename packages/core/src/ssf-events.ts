import { randomUUID } from 'node:crypto';
import { verifiedEmailOf, type Actor, type EndReason, type RevocationEvent, type SessionRecord, type UserRecord } from './model.js';
import { randomToken } from './secrets.js';
import type { NewSsfEvent, SsfStream, SsfStreamSubject } from './ssf-model.js';

/** The event type URIs Tessera transmits (CAEP 1.0, RISC 1.0, SSF 1.0). */
export const SSF_EVENTS = Object.freeze({
  sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  credentialChange: 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  accountDisabled: 'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
  accountEnabled: 'https://schemas.openid.net/secevent/risc/event-type/account-enabled',
  accountPurged: 'https://schemas.openid.net/secevent/risc/event-type/account-purged',
  verification: 'https://schemas.openid.net/secevent/ssf/event-type/verification',
  streamUpdated: 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated',
});

/** The event types a receiver may request (verification and stream-updated are always sent). */
export const SSF_SUPPORTED_EVENTS: readonly string[] = Object.freeze([
  SSF_EVENTS.sessionRevoked,
  SSF_EVENTS.credentialChange,
  SSF_EVENTS.accountDisabled,
  SSF_EVENTS.accountEnabled,
  SSF_EVENTS.accountPurged,
]);

/**
 * A security signal that is not a session end: a password change or reset, an account
 * disabled, enabled or deleted. Planned in the transaction of its cause, like session ends.
 */
export type SecuritySignal =
  | { kind: 'credential-change'; user: UserRecord; at: number; actor: Actor; changeType: 'create' | 'update' | 'delete' }
  | { kind: 'account-disabled' | 'account-enabled' | 'account-purged'; user: UserRecord; at: number; actor: Actor };

/** CAEP §2 `initiating_entity` of a session end. */
function initiatingEntity(actor: Actor, reason: EndReason): 'admin' | 'user' | 'policy' | 'system' {
  // Theft detection and lifetimes are rules Tessera applies, not anyone's decision.
  if (reason === 'token_theft' || reason === 'expired') return 'policy';
  // An admin, or a trusted client acting as one (global token revocation by an upstream provider).
  if (actor === 'admin' || reason === 'admin_revoked') return 'admin';
  if (actor === 'user' || actor.startsWith('app:')) return 'user';
  return 'system';
}

/** Why a session ended, for the receiver's administrators and for the user (CAEP §2, English). */
function reasons(event: RevocationEvent, session: SessionRecord | undefined): { admin: string; user: string } {
  const app = event.actor.startsWith('app:') ? ` (through app ${event.actor.slice(4)})` : '';
  switch (event.reason) {
    case 'logout':
      return { admin: `The user signed out${app}.`, user: 'You signed out.' };
    case 'user_revoked':
      return { admin: 'The user ended this session from their list of devices.', user: 'You ended this session from your list of devices.' };
    case 'admin_revoked':
      return app
        ? { admin: `An authorised client ended every session of the user by global token revocation${app}.`, user: 'Your sessions were ended by your organisation.' }
        : { admin: 'An administrator ended the session.', user: 'An administrator ended your session.' };
    case 'user_disabled':
      return { admin: 'The account was disabled; all of its sessions ended.', user: 'Your account was disabled.' };
    case 'user_deleted':
      return { admin: 'The account was deleted; all of its sessions ended.', user: 'Your account was deleted.' };
    case 'password_changed':
      return { admin: 'The password was changed; the other sessions of the account ended.', user: 'Your password was changed, so you were signed out.' };
    case 'token_theft':
      return { admin: `A spent refresh token was presented again (possible theft); the session was ended${app}.`, user: 'Your session was ended for your security.' };
    case 'upstream_signal':
      return { admin: `A security event from the upstream provider ${event.actor.startsWith('ssf:') ? `"${event.actor.slice(4)}" ` : ''}ended the session (its session-revoked or credential-change).`, user: 'Your sign-in was ended by your identity provider.' };
    case 'expired': {
      const idle = session !== undefined && session.idleExpiresAt < session.expiresAt;
      return idle
        ? { admin: 'The session expired after its idle timeout.', user: 'Your session expired because it was not used for a while.' }
        : { admin: 'The session reached its absolute lifetime.', user: 'Your session expired.' };
    }
  }
}

/** When a session really ended: its deadline for an expiry (the sweep may come later), else the end itself. */
function endedAt(event: RevocationEvent, session: SessionRecord | undefined): number {
  if (event.reason === 'expired' && session) return Math.min(event.at, session.idleExpiresAt, session.expiresAt);
  return event.at;
}

/** The keys a subject rule may name for this user: always the id, the email only when verified. */
function subjectKeys(user: UserRecord | { id: string }): string[] {
  const email = 'email' in user ? verifiedEmailOf(user) : null;
  return [`user:${user.id}`, ...(email ? [`email:${email.toLowerCase()}`] : [])];
}

/** The subject of a user as the stream asks for it (RFC 9493); an unverified email never leaves. */
export function userSubject(issuer: string, user: UserRecord | { id: string }, stream: Pick<SsfStream, 'subjectFormat'>): Record<string, unknown> {
  const email = 'email' in user ? verifiedEmailOf(user) : null;
  if (stream.subjectFormat === 'email' && email) return { format: 'email', email };
  return { format: 'iss_sub', iss: issuer, sub: user.id };
}

/** The subject of a stream itself (verification, stream-updated): SSF §8.1.4.1. */
export function streamSubject(streamId: string): Record<string, unknown> {
  return { format: 'opaque', id: streamId };
}

/** A stream's audience as the `aud` of its SETs and its configuration: one value alone, several as an array. */
export function audClaim(stream: Pick<SsfStream, 'audience'>): string | string[] {
  return stream.audience.length === 1 ? stream.audience[0]! : stream.audience;
}

/** The SET claims of one event to one stream (signed at each attempt, unchanged). */
export function setClaims(input: { issuer: string; stream: Pick<SsfStream, 'audience'>; jti: string; iat: number; txn: string; subject: Record<string, unknown>; eventType: string; event: Record<string, unknown> }): Record<string, unknown> {
  return {
    iss: input.issuer,
    jti: input.jti,
    iat: Math.floor(input.iat / 1000),
    aud: audClaim(input.stream),
    txn: input.txn,
    sub_id: input.subject,
    events: { [input.eventType]: input.event },
  };
}

/** A fresh SET id: 128 random bits. */
export const newJti = (): string => randomToken(16);

/**
 * Plans the SETs of one cause (one committed transaction): a CAEP `session-revoked` for every
 * session it ended, and the signals it carries (credential change, account disabled, enabled,
 * purged), to every stream that is not disabled, asked for that event type, and has not
 * removed the subject. Every SET of the cause shares one `txn` (SSF §4.1.8); each has its
 * own `jti`. `event_timestamp` is when the session really ended, so a late or retried
 * delivery never looks like a newer end. An app leaving a session (scope `app`) ends no
 * session and sends nothing.
 *
 * @example
 * ```ts
 * const sets = planSecurityEvents({ issuer, revocations, sessions, users, signals: [], streams, subjects, now, horizonMs });
 * ```
 */
export function planSecurityEvents(input: {
  issuer: string;
  revocations: RevocationEvent[];
  sessions: SessionRecord[];
  users: UserRecord[];
  signals: SecuritySignal[];
  streams: SsfStream[];
  subjects: SsfStreamSubject[];
  now: number;
  horizonMs: number;
}): NewSsfEvent[] {
  const streams = input.streams.filter((s) => s.status !== 'disabled');
  if (streams.length === 0) return [];
  const sessions = new Map(input.sessions.map((s) => [s.handle, s]));
  const users = new Map(input.users.map((u) => [u.id, u]));
  for (const signal of input.signals) if (!users.has(signal.user.id)) users.set(signal.user.id, signal.user);
  const excluded = new Set(input.subjects.filter((r) => !r.included).map((r) => `${r.streamId}|${r.key}`));
  const txn = randomUUID();
  const planned: NewSsfEvent[] = [];

  const add = (stream: SsfStream, user: UserRecord | { id: string }, eventType: string, subject: Record<string, unknown>, event: Record<string, unknown>) => {
    if (!stream.eventsDelivered.includes(eventType)) return;
    if (subjectKeys(user).some((key) => excluded.has(`${stream.id}|${key}`))) return;
    const jti = newJti();
    planned.push({
      streamId: stream.id,
      jti,
      // Per user: ends and signals about one person reach a receiver in the order they happened.
      subjectKey: `user:${user.id}`,
      eventType,
      claims: setClaims({ issuer: input.issuer, stream, jti, iat: input.now, txn, subject, eventType, event }),
      createdAt: input.now,
      horizonAt: input.now + input.horizonMs,
    });
  };

  for (const event of input.revocations) {
    if (event.app !== null) continue;
    const session = sessions.get(event.sid);
    const user = users.get(event.sub) ?? { id: event.sub };
    const why = reasons(event, session);
    const claims = {
      event_timestamp: Math.floor(endedAt(event, session) / 1000),
      initiating_entity: initiatingEntity(event.actor, event.reason),
      reason_admin: { en: why.admin },
      reason_user: { en: why.user },
    };
    for (const stream of streams) {
      const subject = stream.subjectFormat === 'complex'
        ? { format: 'complex', user: userSubject(input.issuer, user, { subjectFormat: 'iss_sub' }), session: { format: 'opaque', id: event.sid } }
        : userSubject(input.issuer, user, stream);
      add(stream, user, SSF_EVENTS.sessionRevoked, subject, claims);
    }
  }

  for (const signal of input.signals) {
    const base = { event_timestamp: Math.floor(signal.at / 1000), initiating_entity: signal.actor === 'admin' ? 'admin' : signal.actor === 'system' ? 'system' : 'user' };
    for (const stream of streams) {
      const subject = userSubject(input.issuer, signal.user, stream.subjectFormat === 'complex' ? { subjectFormat: 'iss_sub' } : stream);
      if (signal.kind === 'credential-change') {
        add(stream, signal.user, SSF_EVENTS.credentialChange, subject, {
          credential_type: 'password',
          change_type: signal.changeType,
          ...base,
          reason_admin: { en: signal.actor === 'admin' ? 'An administrator set a new password.' : 'The user changed their password.' },
          reason_user: { en: 'Your password was changed.' },
        });
      } else {
        // RISC 1.0 defines no claims of its own for these but the optional `reason` of
        // account-disabled, whose values (hijacking, bulk-account) Tessera cannot know.
        const type = signal.kind === 'account-disabled' ? SSF_EVENTS.accountDisabled : signal.kind === 'account-enabled' ? SSF_EVENTS.accountEnabled : SSF_EVENTS.accountPurged;
        add(stream, signal.user, type, subject, {});
      }
    }
  }
  return planned;
}
