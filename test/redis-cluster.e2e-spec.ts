import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Cluster } from 'ioredis';
import { StoreReplicationError, type ClaimRequest, type StoredResponse } from 'nestjs-idempotency';
import { describeStoreContract } from 'nestjs-idempotency/testing';
import { RedisIdempotencyStore, redisRecordKey } from '../libs/idempotency/src/store/redis-idempotency.store.js';
import { send, startAppProcess, type AppProcess, type RawAnswer } from './support/app-process.js';
import {
  deleteClusterKeys,
  keysByMaster,
  masterOf,
  sharedCluster,
  shardsOf,
  type Shard,
} from './support/redis-clusters.js';
import { connectSql, countRows, type SqlClient } from './support/sql-client.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

/** Every key this run writes starts with it; all are deleted at the end (the cluster is shared, never flushed). */
const RUN_PREFIX = `idem-cluster-${randomUUID().slice(0, 8)}:`;
const LONG_MS = 60_000;

const opened: Cluster[] = [];

async function cluster(): Promise<Cluster> {
  const client = await sharedCluster.connect();
  opened.push(client);
  return client;
}

let admin: Cluster;

beforeAll(async () => {
  // Idempotent: starts whatever node is down and waits for cluster_state:ok with replicas in sync.
  sharedCluster.script('start');
  admin = await cluster();
}, 200_000);

afterAll(async () => {
  if (admin) await deleteClusterKeys(admin, `${RUN_PREFIX}*`);
  await Promise.all(opened.map((client) => client.quit().catch(() => client.disconnect())));
});

function claimRequest(account: string, key: string = randomUUID()): ClaimRequest {
  return { account, key, fingerprint: 'f'.repeat(64), ttlMs: LONG_MS, leaseMs: LONG_MS, route: 'POST /cluster-test' };
}

function responseOf(label: string): StoredResponse {
  return { status: 201, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ label, bytes: '\u00e9\u0000' })) };
}

for (const waitForReplicas of [0, 1]) {
  describeStoreContract(
    `RedisIdempotencyStore on a Redis Cluster (3 masters, 3 replicas), waitForReplicas ${waitForReplicas}`,
    {
      async createStore() {
        const client = await cluster();
        return { store: new RedisIdempotencyStore(client, { keyPrefix: `${RUN_PREFIX}contract-${waitForReplicas}:`, waitForReplicas }) };
      },
      expiresRecordsItself: true,
    },
    { describe, beforeAll, afterAll, it },
  );
}

describe('RedisIdempotencyStore on a Redis Cluster', () => {
  const keyPrefix = `${RUN_PREFIX}spread:`;

  it('keeps the records of many keys on all three masters, one slot per record, and replays each byte for byte (R30, R9, R6)', async () => {
    const store = new RedisIdempotencyStore(admin, { keyPrefix, waitForReplicas: 1 });
    const requests = Array.from({ length: 60 }, (_, index) => claimRequest(`acct-${index % 7}`));
    for (const [index, request] of requests.entries()) {
      const outcome = await store.claim(request);
      if (outcome.status !== 'claimed') throw new Error(`a fresh key was found ${outcome.status}`);
      expect(await store.complete(outcome.claim, responseOf(`payment ${index}`), LONG_MS)).toBe(true);
    }

    const byMaster = await keysByMaster(admin, `${keyPrefix}*`);
    const counts = [...byMaster.values()].map((keys) => keys.length);
    expect(counts).toHaveLength(3);
    for (const count of counts) expect(count).toBeGreaterThan(0);
    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(requests.length);
    // Each record is one hash under one key: nothing else of the store lives beside it.
    expect(new Set([...byMaster.values()].flat())).toEqual(new Set(requests.map((request) => redisRecordKey(keyPrefix, request.account, request.key))));

    for (const [index, request] of requests.entries()) {
      const replay = await store.claim(request);
      if (replay.status !== 'completed') throw new Error(`a completed key was found ${replay.status}`);
      expect(replay.response.body.equals(responseOf(`payment ${index}`).body)).toBe(true);
      expect(replay.response.status).toBe(201);
    }
  });

  it('answers a completion sent twice by its owner as done, and one with another response as a lost claim (R20, R29)', async () => {
    const store = new RedisIdempotencyStore(admin, { keyPrefix, waitForReplicas: 1 });
    const outcome = await store.claim(claimRequest('acct-twice'));
    if (outcome.status !== 'claimed') throw new Error('expected a claim');

    expect(await store.complete(outcome.claim, responseOf('first'), LONG_MS)).toBe(true);
    expect(await store.complete(outcome.claim, responseOf('first'), LONG_MS)).toBe(true);
    expect(await store.complete(outcome.claim, responseOf('other'), LONG_MS)).toBe(false);

    const found = await store.inspect('acct-twice', outcome.claim.key);
    expect(found?.status === 'completed' && found.response.body.toString()).toBe(responseOf('first').body.toString());
  });
});

/**
 * One master's replica is killed; WAIT, sent in the pipeline of each script, must run on the master
 * of the record's key: there it finds no replica and refuses, on the two other masters it finds one.
 * A WAIT sent to any other node would let some claims of the orphaned master through and refuse
 * some of the others.
 */
describe("with one master's replica down and IDEMPOTENCY_REDIS_WAIT_REPLICAS=1", () => {
  const keyPrefix = `${RUN_PREFIX}orphan:`;
  let shards: Shard[];
  let orphaned: Shard;
  let database: TestDatabase;
  let app: AppProcess;
  let sql: SqlClient;

  beforeAll(async () => {
    database = await createTestDatabase('mariadb', 'redis_cluster_orphan');
    app = await startAppProcess({
      DATABASE_URL: database.databaseUrl ?? '',
      IDEMPOTENCY_STORE: 'redis',
      REDIS_CLUSTER_NODES: sharedCluster.nodes,
      IDEMPOTENCY_REDIS_KEY_PREFIX: keyPrefix,
      IDEMPOTENCY_REDIS_WAIT_REPLICAS: '1',
      IDEMPOTENCY_STORE_TIMEOUT_MS: '1000',
      IDEMPOTENCY_REPLAY_CACHE: 'off',
    });
    sql = await connectSql(database.databaseUrl ?? '');
    sharedCluster.script('start');
    shards = await shardsOf(admin);
    orphaned = shards[0];
    expect(orphaned.replicas).toHaveLength(1);
    sharedCluster.script('kill', String(orphaned.replicas[0]));
  }, 200_000);

  afterAll(async () => {
    if (orphaned) sharedCluster.script('start-node', String(orphaned.replicas[0]));
    await app?.stop();
    await sql?.end();
    await database?.drop();
  }, 200_000);

  /** `count` fresh keys of `account` whose records live on each master, by port. */
  async function keysPerMaster(account: string, count: number): Promise<Map<number, string[]>> {
    const keys = new Map<number, string[]>(shards.map(({ master }) => [master, []]));
    while ([...keys.values()].some((list) => list.length < count)) {
      const key = randomUUID();
      const list = keys.get(await masterOf(admin, redisRecordKey(keyPrefix, account, key), shards));
      if (list && list.length < count) list.push(key);
    }
    return keys;
  }

  it("refuses a claim on the master without a replica (StoreReplicationError, 0 of 1) and leaves its key free, and claims on the others: WAIT runs on the key's own master (R30, R18)", async () => {
    // WAIT may use 0.8 of the timeout and the release most of the rest: 2 s leaves the refusal 400 ms
    // to arrive before the timeout on a loaded machine (with 500 ms, a 100 ms lag turned it into a timeout).
    const store = new RedisIdempotencyStore(admin, { keyPrefix, timeoutMs: 2000, waitForReplicas: 1 });
    for (const [master, keys] of await keysPerMaster('acct-store', 4)) {
      for (const key of keys) {
        const request = claimRequest('acct-store', key);
        const outcome = await store.claim(request).catch((error: unknown) => error);
        if (master === orphaned.master) {
          expect(outcome).toBeInstanceOf(StoreReplicationError);
          expect(outcome).toMatchObject({ operation: 'claim', acknowledged: 0, required: 1 });
          // Released before the error was thrown: a retry finds the key free.
          expect(await store.inspect(request.account, key)).toBeUndefined();
        } else {
          expect(outcome).toMatchObject({ status: 'claimed' });
        }
      }
    }
  }, 60_000);

  it('answers 503 idempotency_unavailable without charging for a payment whose record would live on that master, and 201 on the others (R30, R18)', async () => {
    // The app's account is "acme" (API key key-acme).
    for (const [master, keys] of await keysPerMaster('acme', 2)) {
      for (const key of keys) {
        const customerId = `cus_${key.slice(0, 12)}`;
        const answer = await send(app.url, 'POST', '/v1/payments', { key, body: { amount: 100, currency: 'EUR', customerId } });
        const charged = await countRows(sql, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [customerId]);
        if (master === orphaned.master) {
          expect(answer.status).toBe(503);
          expect(JSON.parse(answer.body.toString())).toMatchObject({ error: { code: 'idempotency_unavailable' } });
          expect(charged).toBe(0);
        } else {
          expect(answer.status).toBe(201);
          expect(charged).toBe(1);
        }
      }
    }
  }, 60_000);
});

describe('the built example API with REDIS_CLUSTER_NODES', () => {
  const keyPrefix = `${RUN_PREFIX}example:`;
  let database: TestDatabase;
  let app: AppProcess;
  let sql: SqlClient;

  beforeAll(async () => {
    database = await createTestDatabase('mariadb', 'redis_cluster_example');
    app = await startAppProcess({
      DATABASE_URL: database.databaseUrl ?? '',
      IDEMPOTENCY_STORE: 'redis',
      REDIS_CLUSTER_NODES: sharedCluster.nodes,
      IDEMPOTENCY_REDIS_KEY_PREFIX: keyPrefix,
      // Every replay read from the cluster, not from the process's replay cache.
      IDEMPOTENCY_REPLAY_CACHE: 'off',
    });
    sql = await connectSql(database.databaseUrl ?? '');
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    await sql?.end();
    await database?.drop();
  });

  it('answers payments, keeps their records on every master, and replays each byte for byte with Idempotency-Replayed: true, charging once (R8, R9, R13, R30)', async () => {
    const payments = Array.from({ length: 24 }, (_, index) => ({ key: randomUUID(), body: { amount: 100 + index, currency: 'EUR', customerId: `cus_${randomUUID().slice(0, 12)}` } }));
    const fresh: RawAnswer[] = [];
    for (const payment of payments) fresh.push(await send(app.url, 'POST', '/v1/payments', payment));

    for (const [index, payment] of payments.entries()) {
      expect(fresh[index].status).toBe(201);
      expect(fresh[index].headers.get('idempotency-replayed')).toBeNull();
      const replay = await send(app.url, 'POST', '/v1/payments', payment);
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotency-replayed')).toBe('true');
      expect(replay.body.equals(fresh[index].body)).toBe(true);
      expect(replay.headers.get('location')).toBe(fresh[index].headers.get('location'));
      expect(await countRows(sql, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [payment.body.customerId])).toBe(1);
    }
    const byMaster = await keysByMaster(admin, `${keyPrefix}*`);
    expect([...byMaster.values()].filter((keys) => keys.length > 0)).toHaveLength(3);
  });

  it('stops at start-up with a message naming REDIS_CLUSTER_NODES when no node answers (R18)', async () => {
    await expect(
      startAppProcess({ DATABASE_URL: database.databaseUrl ?? '', IDEMPOTENCY_STORE: 'redis', REDIS_CLUSTER_NODES: '127.0.0.1:1,127.0.0.1:2' }),
    ).rejects.toThrow(/no Redis Cluster node of 127\.0\.0\.1:1,127\.0\.0\.1:2 \(REDIS_CLUSTER_NODES\) did not answer/);
  });
});
