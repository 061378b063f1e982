import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';

const SCRIPTS = join(process.cwd(), 'scripts/clusters');

/** The seed nodes of scripts/clusters/redis-cluster.sh, as REDIS_CLUSTER_NODES takes them. */
export const REDIS_CLUSTER_NODES = '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003';
/** The sentinels of scripts/clusters/redis-sentinel.sh, as REDIS_SENTINELS takes them, and its master name. */
export const REDIS_SENTINELS = '127.0.0.1:26381,127.0.0.1:26382,127.0.0.1:26383';
export const REDIS_SENTINEL_NAME = 'idempotency';

/**
 * Runs scripts/clusters/redis-cluster.sh (`start` is idempotent: it only starts what is down and
 * waits for cluster_state:ok with every replica in sync). Output goes to the test's stderr on failure.
 */
export function redisCluster(...args: string[]): string {
  return execFileSync(join(SCRIPTS, 'redis-cluster.sh'), args, { encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs scripts/clusters/redis-sentinel.sh (primary 7101, replicas 7102-7103, sentinels 26381-26383). */
export function redisSentinel(...args: string[]): string {
  return execFileSync(join(SCRIPTS, 'redis-sentinel.sh'), args, { encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A Cluster client set as the example API sets its own (fail fast, no offline queue), connected. */
export async function connectedCluster(): Promise<Cluster> {
  const client = new Cluster(
    REDIS_CLUSTER_NODES.split(',').map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })),
    { lazyConnect: true, enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } },
  );
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** One master and the replica that follows it, by port, as CLUSTER SLOTS says now. */
export interface Shard {
  readonly master: number;
  readonly replicas: readonly number[];
  readonly ranges: ReadonlyArray<readonly [number, number]>;
}

export async function shardsOf(client: Cluster): Promise<Shard[]> {
  const slots = (await client.call('CLUSTER', 'SLOTS')) as Array<[number, number, ...Array<[string, number, string]>]>;
  const shards = new Map<number, { replicas: Set<number>; ranges: Array<[number, number]> }>();
  for (const [from, to, master, ...replicas] of slots) {
    const shard = shards.get(Number(master[1])) ?? { replicas: new Set<number>(), ranges: [] };
    for (const replica of replicas) shard.replicas.add(Number(replica[1]));
    shard.ranges.push([Number(from), Number(to)]);
    shards.set(Number(master[1]), shard);
  }
  return [...shards].map(([master, { replicas, ranges }]) => ({ master, replicas: [...replicas], ranges }));
}

/** The master port serving `key`, as the cluster says (CLUSTER KEYSLOT, then CLUSTER SLOTS). */
export async function masterOf(client: Cluster, key: string, shards?: readonly Shard[]): Promise<number> {
  const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
  const shard = (shards ?? (await shardsOf(client))).find(({ ranges }) => ranges.some(([from, to]) => slot >= from && slot <= to));
  if (!shard) throw new Error(`no master serves slot ${slot}`);
  return shard.master;
}

/** Keys matching `pattern` on each master, by port: read from each node itself, not through the cluster. */
export async function keysByMaster(client: Cluster, pattern: string): Promise<Map<number, string[]>> {
  const found = new Map<number, string[]>();
  for (const node of client.nodes('master')) {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    found.set(Number(node.options.port), keys);
  }
  return found;
}

/** Deletes every key matching `pattern` on every master (never FLUSHALL: the cluster is shared). */
export async function deleteClusterKeys(client: Cluster, pattern: string): Promise<void> {
  for (const keys of (await keysByMaster(client, pattern)).values()) {
    for (const key of keys) await client.del(key);
  }
}

/** Deletes every key matching `pattern` on the Sentinel-managed primary. */
export async function deleteSentinelKeys(pattern: string): Promise<void> {
  const primary = new Redis({ sentinels: REDIS_SENTINELS.split(',').map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })), name: REDIS_SENTINEL_NAME, maxRetriesPerRequest: 1 });
  primary.on('error', () => undefined);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await primary.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await primary.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    primary.disconnect();
  }
}
