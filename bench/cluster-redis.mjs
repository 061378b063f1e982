// The Redis store on a Redis Cluster against the same store on one Redis, in one run.
//
//   node bench/cluster-redis.mjs [--duration 3] [--warmup 1] [--rounds 3] [--concurrency 32] [--json out.json] [--markdown out.md]
//
// Needs the built library (npm run build), Redis on 127.0.0.1:6379 (BENCH_REDIS_URL; only this run's
// keys are written, and deleted at the end) and the cluster of scripts/clusters/redis-cluster.sh
// (started here if it is not up). One process, one client per target, as one app instance has:
// - one Redis: an ioredis Redis on 6379;
// - cluster: an ioredis Cluster on 7001-7006 (3 masters, 3 replicas);
// - cluster, waitForReplicas 1: the same, each claim and completion acknowledged by a replica.
// Two scenarios each: fresh (claim a new key, then complete it: two scripts) and replay (claim of
// a completed key: one script that reads). --concurrency operations in flight at once. Every
// (target, scenario) pair runs --rounds times, interleaved with the others, median kept; the ratio is
// to one Redis, same scenario, same run.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { RedisIdempotencyStore } from 'nestjs-idempotency';
import { machine } from './support/report.mjs';

const CLUSTER_SCRIPT = join(import.meta.dirname, '../scripts/clusters/redis-cluster.sh');
const ACCOUNT = 'bench';
const FINGERPRINT = 'f'.repeat(64);
const TTL_MS = 10 * 60_000;
const RESPONSE = {
  status: 201,
  headers: { 'content-type': 'application/json; charset=utf-8', location: '/v1/payments/pay_0123456789abcdef' },
  body: Buffer.from(JSON.stringify({ id: 'pay_0123456789abcdef', amount: 1000, currency: 'EUR', customerId: 'cus_bench', status: 'succeeded' })),
};
/** Completed keys per target that the replay scenario claims in turn. */
const REPLAY_KEYS = 2000;

function claimOf(key) {
  return { account: ACCOUNT, key, fingerprint: FINGERPRINT, ttlMs: TTL_MS, leaseMs: 60_000, route: 'POST /bench' };
}

/** Claims `key` and stores the response: what a fresh request costs the store. */
async function complete(store, key) {
  const outcome = await store.claim(claimOf(key));
  if (outcome.status !== 'claimed') throw new Error(`a fresh key was found ${outcome.status}`);
  if (!(await store.complete(outcome.claim, RESPONSE, TTL_MS))) throw new Error('a completion lost its claim');
}

const fresh = (store) => complete(store, randomUUID());

function replayOf(keys) {
  let next = 0;
  return async (store) => {
    const outcome = await store.claim(claimOf(keys[next++ % keys.length]));
    if (outcome.status !== 'completed') throw new Error(`a completed key was found ${outcome.status}`);
  };
}

/** Runs `operation` with `concurrency` in flight for `durationS`; operations/s and latency percentiles. */
async function drive(store, operation, concurrency, durationS) {
  const latencies = [];
  let errors = 0;
  const until = performance.now() + durationS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const sent = performance.now();
        try {
          await operation(store);
          latencies.push(performance.now() - sent);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (share) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * share))] ?? NaN;
  return { operationsPerSecond: latencies.length / elapsedS, p50: at(0.5), p99: at(0.99), errors };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function connect(client) {
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** One run: every target and scenario, interleaved; returns the rows with their ratios. */
export async function benchClusterRedis({ durationS = 3, warmupS = 1, rounds = 3, concurrency = 32 } = {}) {
  execFileSync(CLUSTER_SCRIPT, ['start'], { stdio: 'inherit', timeout: 180_000 });
  const prefix = `idem-bench-cluster-${randomUUID().slice(0, 8)}:`;
  const single = await connect(new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 }));
  const seeds = [7001, 7002, 7003].map((port) => ({ host: '127.0.0.1', port }));
  const clusterOptions = { lazyConnect: true, enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } };
  const cluster = await connect(new Cluster(seeds, clusterOptions));
  const waitingCluster = await connect(new Cluster(seeds, clusterOptions));
  const targets = [
    { name: 'one Redis', client: single, store: new RedisIdempotencyStore(single, { keyPrefix: prefix }) },
    { name: 'cluster', client: cluster, store: new RedisIdempotencyStore(cluster, { keyPrefix: prefix }) },
    { name: 'cluster, waitForReplicas 1', client: waitingCluster, store: new RedisIdempotencyStore(waitingCluster, { keyPrefix: `${prefix}w:`, waitForReplicas: 1 }) },
  ];
  try {
    for (const target of targets) {
      target.replayKeys = Array.from({ length: REPLAY_KEYS }, () => randomUUID());
      for (let start = 0; start < REPLAY_KEYS; start += 100) {
        await Promise.all(target.replayKeys.slice(start, start + 100).map((key) => complete(target.store, key)));
      }
    }
    const pairs = targets.flatMap((target) => [
      { target, scenario: 'fresh (claim + complete)', operation: fresh },
      { target, scenario: 'replay (claim of a completed key)', operation: replayOf(target.replayKeys) },
    ]);
    for (const pair of pairs) {
      pair.samples = [];
      if (warmupS > 0) await drive(pair.target.store, pair.operation, concurrency, warmupS);
    }
    for (let round = 0; round < rounds; round++) {
      for (const pair of pairs) pair.samples.push(await drive(pair.target.store, pair.operation, concurrency, durationS));
    }
    const rows = pairs.map(({ target, scenario, samples }) => ({
      target: target.name,
      scenario,
      operationsPerSecond: median(samples.map((sample) => sample.operationsPerSecond)),
      p50: median(samples.map((sample) => sample.p50)),
      p99: median(samples.map((sample) => sample.p99)),
      errors: samples.reduce((sum, sample) => sum + sample.errors, 0),
    }));
    return rows.map((row) => {
      const baseline = rows.find((other) => other.target === 'one Redis' && other.scenario === row.scenario);
      return { ...row, ratio: row.operationsPerSecond / baseline.operationsPerSecond };
    });
  } finally {
    await deleteRunKeys(single, [cluster], prefix);
    await Promise.all([single, cluster, waitingCluster].map((client) => client.quit().catch(() => client.disconnect())));
  }
}

async function deleteRunKeys(single, clusters, prefix) {
  const nodes = [single, ...clusters[0].nodes('master')];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      for (const key of keys) await (node === single ? single : clusters[0]).del(key);
      cursor = next;
    } while (cursor !== '0');
  }
}

export function clusterRedisTable(rows) {
  const lines = ['| target | scenario | operations/s | p50 ms | p99 ms | x one Redis | errors |', '|---|---|---:|---:|---:|---:|---:|'];
  for (const row of rows) {
    lines.push(
      `| ${row.target} | ${row.scenario} | ${row.operationsPerSecond.toFixed(0)} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${row.ratio.toFixed(2)} | ${row.errors} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: args } = parseArgs({
    options: {
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '32' },
      json: { type: 'string' },
      markdown: { type: 'string' },
    },
  });
  const settings = { durationS: Number(args.duration), warmupS: Number(args.warmup), rounds: Number(args.rounds), concurrency: Number(args.concurrency) };
  const rows = await benchClusterRedis(settings);
  const header =
    `Measured ${new Date().toISOString()} on ${machine()}; the Redis store in this process, one client per target, ` +
    `${settings.concurrency} operations in flight; ${settings.rounds} x ${settings.durationS} s per row, interleaved, median kept; ` +
    'one Redis on 6379 and the cluster (3 masters, 3 replicas on 7001-7006) share the machine.';
  const table = clusterRedisTable(rows);
  console.log(`\n${header}\n\n${table}\n`);
  if (args.json) writeFileSync(args.json, JSON.stringify({ header, rows }, null, 2) + '\n');
  if (args.markdown) writeFileSync(args.markdown, `${header}\n\n${table}\n`);
}
