import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { HttpPlatform } from '../src/bootstrap.js';
import { loadAppConfig } from '../src/config/app-config.js';
import { send, startAppProcess, type AppProcess } from './support/app-process.js';
import { connectSql, countRows, type SqlClient } from './support/sql-client.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

/** A database index of this suite's own, and a prefix of this run's own: it never touches other suites' keys. */
const REDIS_URL = 'redis://127.0.0.1:6379/7';
const RUN_PREFIX = `idem-example-${randomUUID().slice(0, 8)}:`;

const PAYMENT = { amount: 100, currency: 'EUR' } as const;

describe('the example API with IDEMPOTENCY_STORE=redis', () => {
  it('defaults atomic mode to off on the Redis store, and refuses IDEMPOTENCY_ATOMIC=on with a message that says what to do (R22)', () => {
    const redis = { DATABASE_URL: 'mysql://root@127.0.0.1:3306/unused', IDEMPOTENCY_STORE: 'redis' };
    expect(loadAppConfig(redis)).toMatchObject({ atomic: false, redisStore: { connection: { kind: 'url', url: 'redis://127.0.0.1:6379' } } });
    expect(loadAppConfig({ ...redis, IDEMPOTENCY_STORE: '' })).toMatchObject({ atomic: true, redisStore: undefined });
    expect(() => loadAppConfig({ ...redis, IDEMPOTENCY_ATOMIC: 'on' })).toThrow(/unset IDEMPOTENCY_STORE/);
    expect(() => loadAppConfig({ IDEMPOTENCY_STORE: 'memcached' })).toThrow(/IDEMPOTENCY_STORE: "memcached"/);
  });

  it('reads a Redis Cluster from REDIS_CLUSTER_NODES and a Sentinel-managed primary from REDIS_SENTINELS, and refuses two deployments at once (R30)', () => {
    const redis = { IDEMPOTENCY_STORE: 'redis' };
    expect(loadAppConfig({ ...redis, REDIS_CLUSTER_NODES: '127.0.0.1:7001, 127.0.0.1:7002,[::1]:7003' }).redisStore?.connection).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7001 },
        { host: '127.0.0.1', port: 7002 },
        { host: '::1', port: 7003 },
      ],
    });
    expect(loadAppConfig({ ...redis, REDIS_SENTINELS: 'sentinel-a:26381,sentinel-b:26382' }).redisStore?.connection).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 'sentinel-a', port: 26381 },
        { host: 'sentinel-b', port: 26382 },
      ],
      name: 'mymaster',
    });
    expect(loadAppConfig({ ...redis, REDIS_SENTINELS: '127.0.0.1:26381', REDIS_SENTINEL_NAME: 'idempotency' }).redisStore?.connection).toMatchObject({ name: 'idempotency' });

    expect(() => loadAppConfig({ ...redis, REDIS_CLUSTER_NODES: '127.0.0.1' })).toThrow(/REDIS_CLUSTER_NODES: "127.0.0.1" is not host:port/);
    expect(() => loadAppConfig({ ...redis, REDIS_CLUSTER_NODES: '127.0.0.1:70001' })).toThrow(/REDIS_CLUSTER_NODES: "127.0.0.1:70001" is not host:port/);
    expect(() => loadAppConfig({ ...redis, REDIS_SENTINELS: 'redis://127.0.0.1:26381' })).toThrow(/REDIS_SENTINELS: "redis:\/\/127.0.0.1:26381" is not host:port/);
    expect(() => loadAppConfig({ ...redis, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7001' })).toThrow(
      /REDIS_URL and REDIS_CLUSTER_NODES are both set: set one of them/,
    );
    expect(() => loadAppConfig({ ...redis, REDIS_SENTINEL_NAME: 'idempotency' })).toThrow(/REDIS_SENTINEL_NAME is set, but REDIS_SENTINELS is not/);
  });

  it('passes IDEMPOTENCY_REDIS_WAIT_REPLICAS and the store timeout to the Redis store, and refuses a count that is not a whole number (R30, R18)', () => {
    const redis = { IDEMPOTENCY_STORE: 'redis', REDIS_CLUSTER_NODES: '127.0.0.1:7001' };
    expect(loadAppConfig({ ...redis, IDEMPOTENCY_REDIS_WAIT_REPLICAS: '1', IDEMPOTENCY_STORE_TIMEOUT_MS: '2000' }).redisStore).toMatchObject({
      waitForReplicas: 1,
      timeoutMs: 2000,
    });
    expect(loadAppConfig({ ...redis, IDEMPOTENCY_REDIS_WAIT_REPLICAS: '0' }).redisStore?.waitForReplicas).toBeUndefined();
    for (const invalid of ['-1', '1.5', 'one', '1e2']) {
      expect(() => loadAppConfig({ ...redis, IDEMPOTENCY_REDIS_WAIT_REPLICAS: invalid })).toThrow(
        new RegExp(`IDEMPOTENCY_REDIS_WAIT_REPLICAS: "${invalid.replace('.', '\\.')}" is not a whole number of replicas`),
      );
    }
    expect(() => loadAppConfig({ IDEMPOTENCY_REDIS_WAIT_REPLICAS: '1' })).toThrow(/IDEMPOTENCY_REDIS_WAIT_REPLICAS is set, but the records are not in Redis/);
  });
});

describe.each(['express', 'fastify'] as const)('the built example API on %s with IDEMPOTENCY_STORE=redis', (platform: HttpPlatform) => {
  const keyPrefix = `${RUN_PREFIX}${platform}:`;
  let database: TestDatabase;
  let app: AppProcess;
  let sql: SqlClient;
  let redis: Redis;

  beforeAll(async () => {
    database = await createTestDatabase('mariadb', `example_redis_store_${platform}`);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    sql = await connectSql(database.databaseUrl ?? '');
    app = await startAppProcess({
      DATABASE_URL: database.databaseUrl ?? '',
      HTTP_PLATFORM: platform,
      IDEMPOTENCY_STORE: 'redis',
      REDIS_URL,
      IDEMPOTENCY_REDIS_KEY_PREFIX: keyPrefix,
      // Every replay read from Redis, not from the process's replay cache.
      IDEMPOTENCY_REPLAY_CACHE: 'off',
    });
  });

  afterAll(async () => {
    await app?.stop();
    await sql?.end();
    await database?.drop();
    if (redis) {
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });

  it('replays a payment byte for byte with Idempotency-Replayed: true from the record in Redis, not in the SQL table, and charges once (R8, R9, R13)', async () => {
    const key = randomUUID();
    const body = { ...PAYMENT, customerId: `cus_${randomUUID().slice(0, 8)}` };

    const fresh = await send(app.url, 'POST', '/v1/payments', { key, body });
    expect(fresh.status).toBe(201);
    expect(fresh.headers.get('idempotency-replayed')).toBeNull();
    const retry = await send(app.url, 'POST', '/v1/payments', { key, body });

    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotency-replayed')).toBe('true');
    expect(retry.body.equals(fresh.body)).toBe(true);
    expect(retry.headers.get('location')).toBe(fresh.headers.get('location'));
    const records = await redis.keys(`${keyPrefix}*:${key}`);
    expect(records).toHaveLength(1);
    expect(await redis.hget(records[0], 'state')).toBe('completed');
    expect(await countRows(sql, 'SELECT COUNT(*) AS n FROM idempotency_records')).toBe(0);
    expect(await countRows(sql, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [body.customerId])).toBe(1);
  });
});
