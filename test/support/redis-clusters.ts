import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';

const SCRIPTS = join(process.cwd(), 'scripts/clusters');

/** The sentinels of scripts/clusters/redis-sentinel.sh, as REDIS_SENTINELS takes them, and its master name. */
export const REDIS_SENTINELS = '127.0.0.1:26381,127.0.0.1:26382,127.0.0.1:26383';
export const REDIS_SENTINEL_NAME = 'idempotency';

const runScript = promisify(execFile);

/** One cluster of scripts/clusters/redis-cluster.sh: six nodes from `firstPort`, 3 masters and 3 replicas. */
export interface RedisClusterFixture {
  /** Its seed nodes, as REDIS_CLUSTER_NODES takes them. */
  readonly nodes: string;
  /** Runs the script on this cluster (`start` is idempotent: it starts what is down and waits for ok, replicas in sync). */
  script(...args: string[]): string;
  /** The same without blocking the event loop, for a kill or restart while a test's load runs. */
  scriptInBackground(...args: string[]): Promise<string>;
  /** A Cluster client set as the example API sets its own (fail fast, no offline queue), connected. */
  connect(): Promise<Cluster>;
}

function redisClusterAt(firstPort: number): RedisClusterFixture {
  const seeds = [firstPort, firstPort + 1, firstPort + 2];
  const options = { env: { ...process.env, REDIS_CLUSTER_PORT: String(firstPort) }, encoding: 'utf8' as const, timeout: 180_000 };
  return {
    nodes: seeds.map((port) => `127.0.0.1:${port}`).join(','),
    script: (...args) => execFileSync(join(SCRIPTS, 'redis-cluster.sh'), args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] }),
    scriptInBackground: async (...args) => (await runScript(join(SCRIPTS, 'redis-cluster.sh'), args, options)).stdout,
    async connect() {
      const client = new Cluster(
        seeds.map((port) => ({ host: '127.0.0.1', port })),
        { lazyConnect: true, enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } },
      );
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
  };
}

/** The cluster suites share (7001-7006, as .ci/run and the benches start it); nothing kills its masters. */
export const sharedCluster = redisClusterAt(7001);
/** The failover suite's own (7011-7016): it kills masters, which a suite running beside it must never see. */
export const failoverCluster = redisClusterAt(7011);

/** Runs scripts/clusters/redis-sentinel.sh (primary 7101, replicas 7102-7103, sentinels 26381-26383). */
export function redisSentinel(...args: string[]): string {
  return execFileSync(join(SCRIPTS, 'redis-sentinel.sh'), args, { encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'pipe'] });
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
