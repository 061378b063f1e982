import type { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { RedisConnectionConfig, RedisNodeAddress } from '../config/app-config.js';

/**
 * An ioredis client for the deployment the config names, connected, with the settings the
 * library recommends: without a connection a command fails at once (503) instead of waiting in a
 * queue, where the store's timeout would give up on it while it stayed queued and could still run
 * later (a claim nobody holds, blocking its key until the lease ends).
 */
export async function connectRedis(config: RedisConnectionConfig, logger: Logger): Promise<Redis | Cluster> {
  // Imported only when this store is chosen: apps on the TypeORM store need no ioredis installed.
  const { Redis, Cluster } = await import('ioredis');
  const client = createClient({ Redis, Cluster }, config);
  // ioredis reconnects by itself; without a listener each failed attempt would print a stack trace.
  client.on('error', (error: Error) => logger.warn(`Redis connection: ${error.message}`));
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new Error(`IDEMPOTENCY_STORE=redis: ${describe(config)} did not answer: ${String(error)}`);
  }
  return client;
}

interface IoRedis {
  readonly Redis: typeof Redis;
  readonly Cluster: typeof Cluster;
}

function createClient(ioredis: IoRedis, config: RedisConnectionConfig): Redis | Cluster {
  switch (config.kind) {
    case 'url':
      return new ioredis.Redis(config.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    case 'cluster':
      return new ioredis.Cluster(
        config.nodes.map(({ host, port }) => ({ host, port })),
        {
          lazyConnect: true,
          // The Cluster's own queue, used while it has no slot map or no connection to a slot's
          // master. Its node connections always queue (ioredis sets it), and never reconnect: a
          // dead node's commands fail with "Connection is closed", which the Cluster retries on
          // the slot's new master once its slot map is refreshed (retryDelayOnFailover), a few
          // times, then fails them.
          enableOfflineQueue: false,
          redisOptions: { maxRetriesPerRequest: 1 },
        },
      );
    case 'sentinel':
      return new ioredis.Redis({
        sentinels: config.sentinels.map(({ host, port }) => ({ host, port })),
        name: config.name,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        // A primary demoted alive (a manual failover, a partition that healed) keeps the connection
        // and answers every write READONLY: reconnect, which asks the sentinels again. Not
        // ioredis's `failoverDetector`: under load, its disconnect on +switch-master, arriving
        // while the client was reconnecting, left the client ended for good (every request 503
        // until a restart) in 4 runs of 4 of test/redis-failover.e2e-spec.ts.
        reconnectOnError: (error: Error) => error.message.startsWith('READONLY'),
      });
  }
}

function describe(config: RedisConnectionConfig): string {
  switch (config.kind) {
    case 'url':
      return `no Redis at ${withoutPassword(config.url)} (REDIS_URL)`;
    case 'cluster':
      return `no Redis Cluster node of ${addresses(config.nodes)} (REDIS_CLUSTER_NODES)`;
    case 'sentinel':
      return `no primary "${config.name}" (REDIS_SENTINEL_NAME) from the sentinels ${addresses(config.sentinels)} (REDIS_SENTINELS)`;
  }
}

function addresses(nodes: readonly RedisNodeAddress[]): string {
  return nodes.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',');
}

function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'REDIS_URL';
  }
}
