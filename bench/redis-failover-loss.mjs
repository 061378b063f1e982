// How many acknowledged outcomes a Redis Cluster failover loses, with and without waitForReplicas.
//
//   node bench/redis-failover-loss.mjs [--rounds 3] [--wait 0,1] [--clients 4] [--concurrency 16]
//                                      [--before 2] [--after 8] [--json out.json]
//
// Needs the cluster of scripts/clusters/redis-cluster.sh (started here if it is not up) and the built
// library (npm run build). Each round, for each waitForReplicas value: clients (each its own ioredis
// Cluster) run claim, then complete, on fresh keys as fast as they can, as many at once as
// --concurrency per client; --before seconds in, one master is killed with kill -9; load goes on for
// --after seconds (its replica takes over after about 2 s), then stops. Once the killed node is back
// (as a replica), every key whose claim and completion both succeeded, an outcome a client was sent,
// is read back: a key found without its completed record is a lost outcome, and a retry of it
// would run its handler a second time. Masters are killed in turn, so each round kills another.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Cluster } from 'ioredis';
import { RedisIdempotencyStore } from 'nestjs-idempotency';
import { machine } from './support/report.mjs';

const CLUSTER_SCRIPT = join(import.meta.dirname, '../scripts/clusters/redis-cluster.sh');
const SEED_NODES = [7001, 7002, 7003].map((port) => ({ host: '127.0.0.1', port }));
const ACCOUNT = 'loss';
const FINGERPRINT = 'f'.repeat(64);
const RESPONSE = { status: 201, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"id":"pay_1"}') };
const LEASE_MS = 60_000;
const TTL_MS = 3_600_000;

export function clusterScript(...args) {
  return execFileSync(CLUSTER_SCRIPT, args, { encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The cluster's clients as the example API makes them: fail fast while a node is unreachable. */
export function clusterClient() {
  const client = new Cluster(SEED_NODES, { lazyConnect: true, enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } });
  client.on('error', () => undefined);
  return client;
}

/** One round: load, kill -9 of `victim` mid-load, restart, then every acknowledged key read back. */
async function round({ waitForReplicas, victim, clients, concurrency, beforeS, afterS }) {
  const prefix = `idem-loss-${randomUUID().slice(0, 8)}:`;
  const connections = await Promise.all(
    Array.from({ length: clients }, async () => {
      const client = clusterClient();
      await client.connect();
      return client;
    }),
  );
  const stores = connections.map((client) => new RedisIdempotencyStore(client, { keyPrefix: prefix, timeoutMs: 2000, waitForReplicas }));
  const acknowledged = [];
  const errors = {};
  let requests = 0;
  let stopping = false;
  const worker = async (store) => {
    while (!stopping) {
      const key = randomUUID();
      requests++;
      try {
        const outcome = await store.claim({ account: ACCOUNT, key, fingerprint: FINGERPRINT, ttlMs: TTL_MS, leaseMs: LEASE_MS, route: 'POST /loss' });
        if (outcome.status !== 'claimed') throw new Error(`a fresh key was found ${outcome.status}`);
        if (await store.complete(outcome.claim, RESPONSE, TTL_MS)) acknowledged.push({ key, at: performance.now() });
      } catch (error) {
        const name = error instanceof Error ? `${error.name}: ${error.message.replace(/[0-9a-f-]{36}|\d+/g, 'N').slice(0, 80)}` : String(error);
        errors[name] = (errors[name] ?? 0) + 1;
        // A client would back off too; without it a dead node's errors would spin.
        await sleep(20);
      }
    }
  };
  const victimSlots = await slotsOf(connections[0], victim);
  const started = performance.now();
  const load = Promise.all(stores.flatMap((store) => Array.from({ length: concurrency }, () => worker(store))));
  await sleep(beforeS * 1000);
  const killedAt = performance.now();
  clusterScript('kill', String(victim));
  await sleep(afterS * 1000);
  stopping = true;
  await load;
  const loadS = (performance.now() - started) / 1000;
  clusterScript('start-node', String(victim));

  const reader = stores[0];
  let lost = 0;
  let onVictim = 0;
  let lostAckedBeforeKill = 0;
  for (const { key, at } of acknowledged) {
    const found = await reader.inspect(ACCOUNT, key);
    const slot = Number(await connections[0].call('CLUSTER', 'KEYSLOT', `${prefix}${ACCOUNT.length}:${ACCOUNT}:${key}`));
    if (victimSlots(slot)) onVictim++;
    if (found?.status !== 'completed') {
      lost++;
      if (at < killedAt) lostAckedBeforeKill++;
    }
  }
  await cleanUp(connections[0], prefix);
  await Promise.all(connections.map((client) => client.quit().catch(() => client.disconnect())));
  return { waitForReplicas, victim, requests, loadS, acknowledged: acknowledged.length, onVictim, lost, lostAckedBeforeKill, errors };
}

/** Whether a slot is served by the master on `port`, as the cluster says now. */
export async function slotsOf(client, port) {
  const shards = await client.call('CLUSTER', 'SLOTS');
  const ranges = shards.filter((shard) => Number(shard[2][1]) === port).map(([from, to]) => [Number(from), Number(to)]);
  if (ranges.length === 0) throw new Error(`127.0.0.1:${port} serves no slot`);
  return (slot) => ranges.some(([from, to]) => slot >= from && slot <= to);
}

async function cleanUp(client, prefix) {
  await Promise.all(
    client.nodes('master').map(async (node) => {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        for (const key of keys) await client.del(key);
        cursor = next;
      } while (cursor !== '0');
    }),
  );
}

function masters() {
  return clusterScript('masters').trim().split('\n').map(Number);
}

/** Runs the measurement; returns one row per (round, waitForReplicas). */
export async function measureFailoverLoss({ rounds = 3, waits = [0, 1], clients = 4, concurrency = 16, beforeS = 2, afterS = 8 } = {}) {
  clusterScript('start');
  const rows = [];
  for (let index = 0; index < rounds; index++) {
    for (const waitForReplicas of waits) {
      const current = masters();
      const victim = current[(rows.length) % current.length];
      const row = await round({ waitForReplicas, victim, clients, concurrency, beforeS, afterS });
      rows.push(row);
      console.log(
        `round ${index + 1}, waitForReplicas ${waitForReplicas}: killed ${victim}; ${row.requests} requests in ${row.loadS.toFixed(1)} s, ` +
          `${row.acknowledged} acknowledged (${row.onVictim} on the killed master), lost ${row.lost} (${row.lostAckedBeforeKill} acknowledged before the kill)`,
      );
    }
  }
  return rows;
}

function summary(rows) {
  const lines = ['| waitForReplicas | rounds | requests | acknowledged | on the killed master | lost (a retry runs again) |', '|---:|---:|---:|---:|---:|---:|'];
  for (const wait of [...new Set(rows.map((row) => row.waitForReplicas))]) {
    const mine = rows.filter((row) => row.waitForReplicas === wait);
    const sum = (field) => mine.reduce((total, row) => total + row[field], 0);
    lines.push(`| ${wait} | ${mine.length} | ${sum('requests')} | ${sum('acknowledged')} | ${sum('onVictim')} | ${sum('lost')} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: args } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      wait: { type: 'string', default: '0,1' },
      clients: { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '16' },
      before: { type: 'string', default: '2' },
      after: { type: 'string', default: '8' },
      json: { type: 'string' },
    },
  });
  const rows = await measureFailoverLoss({
    rounds: Number(args.rounds),
    waits: args.wait.split(',').map(Number),
    clients: Number(args.clients),
    concurrency: Number(args.concurrency),
    beforeS: Number(args.before),
    afterS: Number(args.after),
  });
  const header = `Measured ${new Date().toISOString()} on ${machine()}; Redis Cluster 3 masters + 3 replicas on 127.0.0.1, kill -9 of one master per round`;
  console.log(`\n${header}\n\n${summary(rows)}\n`);
  for (const row of rows) console.log(`  wait ${row.waitForReplicas}, killed ${row.victim}: errors ${JSON.stringify(row.errors)}`);
  if (args.json) writeFileSync(args.json, JSON.stringify({ header, rows }, null, 2) + '\n');
}
