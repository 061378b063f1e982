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
    expect(loadAppConfig(redis)).toMatchObject({ atomic: false, redisStore: { url: 'redis://127.0.0.1:6379' } });
    expect(loadAppConfig({ ...redis, IDEMPOTENCY_STORE: '' })).toMatchObject({ atomic: true, redisStore: undefined });
    expect(() => loadAppConfig({ ...redis, IDEMPOTENCY_ATOMIC: 'on' })).toThrow(/unset IDEMPOTENCY_STORE/);
    expect(() => loadAppConfig({ IDEMPOTENCY_STORE: 'memcached' })).toThrow(/IDEMPOTENCY_STORE: "memcached"/);
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
