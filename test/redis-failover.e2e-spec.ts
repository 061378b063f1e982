import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Cluster } from 'ioredis';
import { redisRecordKey } from '../libs/idempotency/src/store/redis-idempotency.store.js';
import { send, startAppProcess, type AppProcess, type RawAnswer } from './support/app-process.js';
import {
  REDIS_SENTINEL_NAME,
  REDIS_SENTINELS,
  deleteClusterKeys,
  deleteSentinelKeys,
  masterOf,
  failoverCluster,
  redisSentinel,
  shardsOf,
} from './support/redis-clusters.js';
import { connectSql, type SqlClient } from './support/sql-client.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

const runScript = promisify(execFile);

const INSTANCES = 3;
const KEYS = 72;
const COPIES = 3;
/** Keys start this far apart, so the load spans the kill, the failover and the restart. */
const KEY_SPACING_MS = 60;
/** A client gives up retrying a key this long after the load started. */
const CLIENT_DEADLINE_MS = 60_000;
/** The handler's own time, so that a kill finds requests in flight. */
const PROCESSING_MS = 150;
/** The kill comes once this many keys of the doomed master were answered with 2xx. */
const ANSWERED_BEFORE_KILL = 5;

/** One answer a client got: its status (0 for a network error), when, and the bytes. */
interface Attempt {
  readonly status: number;
  readonly at: number;
  readonly answer?: RawAnswer;
}

interface KeyRun {
  readonly key: string;
  readonly customerId: string;
  readonly body: { amount: number; currency: string; customerId: string; processingMs: number };
  /** Every answer of every copy, in the order they came. */
  readonly attempts: Attempt[];
  readonly onVictim: boolean;
}

/**
 * A client that retries as the library's own client does (R28): 409 and 503 and network errors
 * are retried with the same key and body after a jittered pause, anything else is final.
 */
async function payUntilAnswered(url: string, keyRun: KeyRun, deadline: number): Promise<void> {
  for (;;) {
    const attempt = await send(url, 'POST', '/v1/payments', { key: keyRun.key, body: keyRun.body, timeoutMs: 15_000 }).then(
      (answer): Attempt => ({ status: answer.status, at: performance.now(), answer }),
      (): Attempt => ({ status: 0, at: performance.now() }),
    );
    keyRun.attempts.push(attempt);
    if (![0, 409, 503].includes(attempt.status) || performance.now() > deadline) return;
    await sleep(100 + Math.random() * 200);
  }
}

function histogram(statuses: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const status of statuses) {
    const label = status === 0 ? 'network error' : String(status);
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}

interface FailoverScenario {
  /** The database of this scenario's own, for the payments every instance shares. */
  readonly databaseName: string;
  readonly keyPrefix: string;
  readonly env: Record<string, string>;
  /** Whether the record of (acme, key) lives on the node the kill takes down. */
  onVictim(recordKey: string): Promise<boolean>;
  /** kill -9 of the node, then its restart (run in the background while the load goes on). */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * The load, the kill mid-load, the restart, and every assertion: exactly one payment per key, no
 * 5xx but 503, every 2xx answered before the kill replayed byte for byte after it (R30, R9, R18).
 */
function describeFailover(name: string, scenario: () => FailoverScenario): void {
  describe(name, () => {
    let setup: FailoverScenario;
    let database: TestDatabase;
    let fleet: AppProcess[] = [];
    let sql: SqlClient;

    beforeAll(async () => {
      setup = scenario();
      database = await createTestDatabase('mariadb', setup.databaseName);
      const env = {
        DATABASE_URL: database.databaseUrl ?? '',
        IDEMPOTENCY_STORE: 'redis',
        IDEMPOTENCY_REDIS_KEY_PREFIX: setup.keyPrefix,
        IDEMPOTENCY_REDIS_WAIT_REPLICAS: '1',
        IDEMPOTENCY_STORE_TIMEOUT_MS: '2000',
        // A claim that reached Redis while its reply was lost in the kill is held by nobody: its
        // key waits out this lease (409s), then exactly one retry takes it over (R20).
        IDEMPOTENCY_LOCK_TIMEOUT_MS: '8000',
        // Replays read from Redis, never from the process that answered first.
        IDEMPOTENCY_REPLAY_CACHE: 'off',
        ...setup.env,
      };
      // The first instance runs the migrations; the others start once the tables exist.
      fleet.push(await startAppProcess(env));
      fleet.push(...(await Promise.all(Array.from({ length: INSTANCES - 1 }, () => startAppProcess(env)))));
      sql = await connectSql(database.databaseUrl ?? '');
    }, 200_000);

    afterAll(async () => {
      await Promise.all(fleet.map((instance) => instance.stop()));
      await sql?.end();
      await database?.drop();
    });

    it(`kill -9 of the node holding the records mid-load, with IDEMPOTENCY_REDIS_WAIT_REPLICAS=1: ${KEYS} keys x ${COPIES} copies over ${INSTANCES} instances, each key charged exactly once, no 5xx but 503, and every 2xx sent before the kill replayed byte for byte after the failover (R30, R9, R13, R18, R20)`, async () => {
      const run = randomUUID().slice(0, 8);
      const keyRuns: KeyRun[] = [];
      for (let index = 0; index < KEYS; index++) {
        const key = randomUUID();
        const customerId = `cus_${run}_${index}`;
        keyRuns.push({
          key,
          customerId,
          body: { amount: 100 + index, currency: 'EUR', customerId, processingMs: PROCESSING_MS },
          attempts: [],
          onVictim: await setup.onVictim(redisRecordKey(setup.keyPrefix, 'acme', key)),
        });
      }
      const victimKeys = keyRuns.filter((keyRun) => keyRun.onVictim);
      expect(victimKeys.length).toBeGreaterThan(ANSWERED_BEFORE_KILL);

      const started = performance.now();
      const deadline = started + CLIENT_DEADLINE_MS;
      const load = Promise.all(
        keyRuns.map(async (keyRun, index) => {
          await sleep(index * KEY_SPACING_MS);
          await Promise.all(Array.from({ length: COPIES }, (_, copy) => payUntilAnswered(fleet[(index + copy) % INSTANCES].url, keyRun, deadline)));
        }),
      );
      const answeredOnVictim = () => victimKeys.filter((keyRun) => keyRun.attempts.some((attempt) => attempt.status >= 200 && attempt.status < 300)).length;
      while (answeredOnVictim() < ANSWERED_BEFORE_KILL) {
        if (performance.now() > deadline) throw new Error(`only ${answeredOnVictim()} keys of the node to kill were answered with 2xx`);
        await sleep(20);
      }
      const killedAt = performance.now();
      await setup.kill();
      const restarted = setup.restart();
      await load;
      await restarted;
      const loadMs = performance.now() - started;

      // After the failover and the restart: every 2xx a client got before the kill, sent again.
      const answeredBeforeKill = keyRuns.flatMap((keyRun) =>
        keyRun.attempts.filter((attempt) => attempt.at < killedAt && attempt.status >= 200 && attempt.status < 300).map((attempt) => ({ keyRun, attempt })),
      );
      const replays = await Promise.all(
        answeredBeforeKill.map(async ({ keyRun }, index) => send(fleet[index % INSTANCES].url, 'POST', '/v1/payments', { key: keyRun.key, body: keyRun.body })),
      );
      const payments = await sql.rows<{ customer_id: string; n: number | string }>(
        'SELECT customer_id, COUNT(*) AS n FROM payments WHERE customer_id LIKE ? GROUP BY customer_id',
        [`cus_${run}_%`],
      );
      const runs = new Map(payments.map((row) => [row.customer_id, Number(row.n)]));
      const statuses = keyRuns.flatMap((keyRun) => keyRun.attempts.map((attempt) => attempt.status));
      process.stdout.write(
        `${name}: ${statuses.length} requests for ${KEYS} keys (${victimKeys.length} on the killed node) in ${(loadMs / 1000).toFixed(1)} s; ` +
          `killed ${((killedAt - started) / 1000).toFixed(1)} s in; statuses ${JSON.stringify(histogram(statuses))}; ` +
          `${answeredBeforeKill.length} 2xx before the kill replayed; runs per key ${JSON.stringify(histogram([...runs.values()]))}\n`,
      );

      for (const [index, { attempt }] of answeredBeforeKill.entries()) {
        expect(replays[index].status).toBe(attempt.status);
        expect(replays[index].headers.get('idempotency-replayed')).toBe('true');
        expect(replays[index].body.equals(attempt.answer?.body ?? Buffer.alloc(0))).toBe(true);
      }
      expect(answeredBeforeKill.filter(({ keyRun }) => keyRun.onVictim).length).toBeGreaterThanOrEqual(ANSWERED_BEFORE_KILL);
      expect(statuses.filter((status) => status >= 500 && status !== 503)).toEqual([]);
      for (const keyRun of keyRuns) {
        // Every client ends with the payment, and every 201 of a key is the same one.
        const created = keyRun.attempts.filter((attempt) => attempt.status === 201);
        expect(created.length).toBeGreaterThan(0);
        for (const attempt of created) expect(attempt.answer?.body.equals(created[0].answer?.body ?? Buffer.alloc(0))).toBe(true);
        expect(runs.get(keyRun.customerId)).toBe(1);
      }
      expect(runs.size).toBe(KEYS);
    }, 180_000);
  });
}

describe('a Redis failover under load, through the example API', () => {
  let cluster: Cluster;
  const clusterPrefix = `idem-failover-${randomUUID().slice(0, 8)}:`;
  const sentinelPrefix = `idem-failover-${randomUUID().slice(0, 8)}:`;

  beforeAll(async () => {
    // Idempotent: each starts whatever is down and waits until it is healthy, replicas in sync.
    failoverCluster.script('start');
    redisSentinel('start');
    cluster = await failoverCluster.connect();
  }, 400_000);

  afterAll(async () => {
    await cluster?.quit().catch(() => cluster.disconnect());
    // A client of its own: the suite's one knew the masters before the failover.
    const cleaner = await failoverCluster.connect();
    await deleteClusterKeys(cleaner, `${clusterPrefix}*`);
    await cleaner.quit();
    await deleteSentinelKeys(`${sentinelPrefix}*`);
  }, 60_000);

  describeFailover('Redis Cluster (3 masters, 3 replicas), a master killed', () => {
    let victim: number | undefined;
    return {
      databaseName: 'redis_failover_cluster',
      keyPrefix: clusterPrefix,
      env: { REDIS_CLUSTER_NODES: failoverCluster.nodes },
      async onVictim(recordKey) {
        const shards = await shardsOf(cluster);
        // The master of the first key dies: a third of the keys, whichever it is.
        victim ??= await masterOf(cluster, recordKey, shards);
        return (await masterOf(cluster, recordKey, shards)) === victim;
      },
      async kill() {
        await failoverCluster.scriptInBackground('kill', String(victim));
      },
      async restart() {
        // Waits for the replica to take over, restarts the node (it rejoins as a replica), waits for ok.
        await failoverCluster.scriptInBackground('start-node', String(victim));
      },
    };
  });

  describeFailover('Redis Sentinel (a primary, 2 replicas, 3 sentinels), the primary killed', () => {
    let primary: string | undefined;
    return {
      databaseName: 'redis_failover_sentinel',
      keyPrefix: sentinelPrefix,
      env: { REDIS_SENTINELS, REDIS_SENTINEL_NAME },
      async onVictim() {
        primary ??= redisSentinel('master').trim();
        return true;
      },
      async kill() {
        await runScript(join(process.cwd(), 'scripts/clusters/redis-sentinel.sh'), ['kill', String(primary)], { timeout: 30_000 });
      },
      async restart() {
        // Waits for the sentinels to promote a replica, restarts the old primary as its replica, waits for health.
        await runScript(join(process.cwd(), 'scripts/clusters/redis-sentinel.sh'), ['start-node', String(primary)], { timeout: 180_000 });
      },
    };
  });
});
