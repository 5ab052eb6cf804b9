import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { CREDENTIAL_CHANNEL, REVOCATION_CHANNEL, SSF_CHANNEL, withDefaultUser } from '@tessera/store';
import type { FastifyBaseLogger } from 'fastify';

/**
 * Wake-ups between nodes: "the revocation log has new entries". They only tell a node to
 * read the log again — the log in the database stays the single source of order and
 * completeness — so a lost, duplicated or late wake-up can delay an entry but never skip or
 * reorder one (and each node also polls the log as a last resort).
 *
 * - PostgreSQL: every revoking transaction sends NOTIFY on commit (see the store); each node
 *   LISTENs on one dedicated connection, reconnecting with backoff.
 * - Redis (optional): each node also publishes after its commits and subscribes; ioredis
 *   reconnects and resubscribes by itself. When Redis is down, the NOTIFY path still wakes
 *   every node; when it returns, it is used again without any action. A message names the
 *   node that sent it (`<node id>:<cursor>`), and a node skips its own, as it skips the
 *   NOTIFY echoes of its own commits (a message in the older form, the cursor alone, wakes).
 *
 * @example
 * ```ts
 * const signal = createRevocationSignal({ databaseUrl, redisUrl, log, onSignal: () => hub.wake() });
 * await signal.start();
 * signal.publish(42); // after a local commit
 * ```
 */
export function createRevocationSignal(input: {
  databaseUrl: string | null;
  redisUrl: string | null;
  log: FastifyBaseLogger;
  onSignal: (source: 'postgres' | 'redis') => void;
  /**
   * An app changed on some node (PostgreSQL NOTIFY on the credentials channel, payload: the
   * client id); streams bound to its credentials are re-checked. Called with no id after a
   * (re)connection, when changes may have been missed.
   */
  onCredentialSignal?: (clientId?: string) => void;
  /** New SETs were committed on some node (PostgreSQL NOTIFY on the SSF channel). */
  onSsfSignal?: () => void;
  /**
   * True when a NOTIFY was sent by this node's own store connection (the store's
   * isOwnNotification). This node woke its feed, outbox and push worker in-process right after
   * that commit; waking them again for the echo would only repeat each one's read of the
   * store, once per revocation.
   */
  isOwn?: (processId: number) => boolean;
}) {
  const { log } = input;
  let closed = false;
  let listener: pg.Client | null = null;
  let retry: NodeJS.Timeout | undefined;
  let publisher: Redis | null = null;
  let subscriber: Redis | null = null;
  const health = { postgres: false, redis: false };
  // This process's name on the Redis channel: a random id, as nothing else tells the nodes apart.
  const self = `${randomUUID()}:`;

  async function listen(delayMs = 250): Promise<void> {
    if (closed || !input.databaseUrl) return;
    const client = new pg.Client({ connectionString: withDefaultUser(input.databaseUrl) });
    const again = () => {
      health.postgres = false;
      if (closed || listener !== client) return;
      listener = null;
      client.end().catch(() => undefined);
      retry = setTimeout(() => void listen(Math.min(delayMs * 2, 10_000)), delayMs);
      retry.unref();
    };
    listener = client;
    client.on('error', (error) => {
      log.warn({ err: error }, 'revocation LISTEN connection lost; reconnecting');
      again();
    });
    client.on('end', again);
    client.on('notification', (message) => {
      // Credential changes are re-checked whoever sent them (cheap, and rare).
      if (message.channel !== CREDENTIAL_CHANNEL && input.isOwn?.(message.processId)) return;
      if (message.channel === REVOCATION_CHANNEL) input.onSignal('postgres');
      else if (message.channel === CREDENTIAL_CHANNEL && message.payload) input.onCredentialSignal?.(message.payload);
      else if (message.channel === SSF_CHANNEL) input.onSsfSignal?.();
    });
    try {
      await client.connect();
      // The revocation channel last: operators (and the multi-node test) find the listening
      // backend in pg_stat_activity by its last query, `LISTEN tessera_revocations`.
      await client.query(`LISTEN ${CREDENTIAL_CHANNEL}`);
      await client.query(`LISTEN ${SSF_CHANNEL}`);
      await client.query(`LISTEN ${REVOCATION_CHANNEL}`);
      health.postgres = true;
      // Anything committed while we were not listening is picked up by reading the log now,
      // and every bound stream's credentials are re-checked.
      input.onSignal('postgres');
      input.onCredentialSignal?.();
      input.onSsfSignal?.();
    } catch (error) {
      log.warn({ err: error }, 'revocation LISTEN failed; retrying');
      again();
    }
  }

  function connectRedis(): void {
    if (!input.redisUrl) return;
    const options = { lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (times: number) => Math.min(times * 200, 5_000) };
    publisher = new Redis(input.redisUrl, options);
    subscriber = new Redis(input.redisUrl, { ...options, enableOfflineQueue: true });
    for (const client of [publisher, subscriber]) client.on('error', () => undefined);
    subscriber.on('ready', () => {
      void subscriber!.subscribe(REVOCATION_CHANNEL).then(() => {
        health.redis = true;
        input.onSignal('redis');
      }, () => undefined);
    });
    subscriber.on('end', () => (health.redis = false));
    subscriber.on('close', () => (health.redis = false));
    subscriber.on('message', (channel: string, message: string) => {
      // This node woke in-process after its own commit (see isOwn above).
      if (channel === REVOCATION_CHANNEL && !message.startsWith(self)) input.onSignal('redis');
    });
  }

  return {
    health,
    async start(): Promise<void> {
      connectRedis();
      await listen();
    },
    /** Tells the other nodes (through Redis) that this node committed up to `cursor`. */
    publish(cursor: number): void {
      if (!publisher || publisher.status !== 'ready') return;
      publisher.publish(REVOCATION_CHANNEL, `${self}${cursor}`).catch((error: unknown) => log.debug({ err: error }, 'redis publish failed (NOTIFY covers it)'));
    },
    async close(): Promise<void> {
      closed = true;
      clearTimeout(retry);
      const client = listener;
      listener = null;
      await client?.end().catch(() => undefined);
      publisher?.disconnect();
      subscriber?.disconnect();
    },
  };
}

/** The signal returned by {@link createRevocationSignal}. */
export type RevocationSignal = ReturnType<typeof createRevocationSignal>;
