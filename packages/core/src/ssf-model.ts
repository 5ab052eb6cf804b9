import type { OutboxAttemptState } from './model.js';

/**
 * The records of the Shared Signals (SSF 1.0) transmitter: streams, their subjects, and the
 * outbox of Security Event Tokens. Times are epoch milliseconds.
 */

/** How a stream's SETs reach the receiver. */
export type SsfDeliveryMethod = 'push' | 'poll';

/** SSF §8.1.2: `enabled` delivers, `paused` holds, `disabled` drops. */
export type SsfStreamStatus = 'enabled' | 'paused' | 'disabled';

/**
 * The subject identifier format a receiver asked for (Tessera's stream field `format`):
 * `iss_sub` (the default), `email` (only a verified email leaves Tessera; otherwise
 * `iss_sub`), or `complex` (user and session, for session events).
 */
export type SsfSubjectFormat = 'iss_sub' | 'email' | 'complex';

/** One SSF stream, owned by one receiver client. */
export interface SsfStream {
  id: string;
  clientId: string;
  /** The `aud` of every SET of this stream. */
  audience: string[];
  eventsRequested: string[];
  eventsDelivered: string[];
  deliveryMethod: SsfDeliveryMethod;
  /** Push: the receiver's endpoint; poll: the stream's own poll URL (made by Tessera). */
  endpointUrl: string;
  /**
   * Push: the exact `Authorization` header value the receiver asked Tessera to send (RFC
   * 8935 via SSF §8.1.1). It is the receiver's credential that Tessera must present, so it
   * is kept as given (a hash could not be sent) and never shown in a listing.
   */
  authorizationHeader: string | null;
  description: string | null;
  status: SsfStreamStatus;
  statusReason: string | null;
  subjectFormat: SsfSubjectFormat;
  /** Seconds between two verification requests the receiver may make. */
  minVerificationInterval: number;
  lastVerificationAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** Fields of a stream that can change. */
export type SsfStreamPatch = Partial<Pick<SsfStream, 'audience' | 'eventsRequested' | 'eventsDelivered' | 'deliveryMethod' | 'endpointUrl' | 'authorizationHeader' | 'description' | 'status' | 'statusReason' | 'subjectFormat' | 'lastVerificationAt'>> & { updatedAt: number };

/**
 * A subject added to or removed from a stream (SSF §8.1.3), by key: `user:<id>` or
 * `email:<lowercased>`. With `default_subjects` ALL, a removed subject is left out.
 */
export interface SsfStreamSubject {
  streamId: string;
  key: string;
  included: boolean;
  createdAt: number;
}

/** Where an SSF event stands. */
export type SsfEventStatus = 'pending' | 'delivered' | 'dead';

/** A SET to one stream, as planned (the claims are signed at each attempt, unchanged). */
export interface NewSsfEvent {
  streamId: string;
  /** The SET's `jti`: the same on every attempt, so a receiver deduplicates on it. */
  jti: string;
  /** Events with the same key (one user, or the stream itself) are delivered in order. */
  subjectKey: string;
  /** The event type URI (the single member of `events`). */
  eventType: string;
  /** The SET claims, without the signature: iss, jti, iat, aud, txn, sub_id, events. */
  claims: Record<string, unknown>;
  createdAt: number;
  /** After this moment an undelivered (or unacknowledged) event is given up: status `dead`. */
  horizonAt: number;
}

/** An event of the SSF outbox. */
export interface SsfEvent extends NewSsfEvent, OutboxAttemptState {
  id: number;
  status: SsfEventStatus;
}

/** The outcome of one push attempt (or an acknowledgement). */
export type SsfEventOutcome =
  | { status: 'delivered'; at: number; httpStatus: number | null }
  | { status: 'pending' | 'dead'; at: number; nextAttemptAt: number; error: string; httpStatus: number | null };

/** Delivery figures of one stream, for the admin API and the console. */
export interface SsfStreamDeliveryState {
  pending: number;
  delivered: number;
  dead: number;
  oldestPendingAt: number | null;
  lastDeliveredAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
}
