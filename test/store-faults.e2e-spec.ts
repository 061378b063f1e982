import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Post } from '@nestjs/common';
import { IdempotencyTransaction, Idempotent, StoreTimeoutError, TypeOrmIdempotencyStore, type ClaimRequest } from 'nestjs-idempotency';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { HandlerRuns, probeDataSourceOptions, startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/test-database.js';

/**
 * The store's fault paths (R18, R20a, R22a, R12): what a silent network, a full pool, a handler
 * busy in one long statement and a brief outage at completion must never cost: a stuck pool, a
 * claim nobody waits for, a failed handler, a second run.
 */
const SLEEP_SQL: Record<Exclude<DatabaseKind, 'sqlite'>, string> = {
  mariadb: 'SELECT SLEEP(1.5) AS slept',
  postgres: 'SELECT pg_sleep(1.5) AS slept',
};

function claimRequest(key = randomUUID()): ClaimRequest {
  return { account: 'faults', key, fingerprint: 'f'.repeat(64), ttlMs: 60_000, leaseMs: 60_000, route: 'POST /faults' };
}

function proxiedUrl(database: TestDatabase, proxy: TcpProxy): string {
  const url = new URL(database.databaseUrl ?? '');
  url.port = String(proxy.port);
  return url.toString();
}

function newProxy(database: TestDatabase): TcpProxy {
  const url = new URL(database.databaseUrl ?? '');
  return new TcpProxy(url.hostname, Number(url.port || (database.kind === 'postgres' ? 5432 : 3306)));
}

/** Whether the store claims again within `attempts` tries 100 ms apart, once the network is back (R18). */
async function claimsAgainWithin(store: TypeOrmIdempotencyStore, attempts: number): Promise<boolean> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if ((await store.claim(claimRequest()).then((outcome) => outcome.status, () => undefined)) === 'claimed') return true;
    await sleep(100);
  }
  return false;
}

async function dataSourceFor(database: TestDatabase, url: string, poolSize: number, connectTimeoutMs = 5000): Promise<DataSource> {
  const connectTimeout = database.kind === 'postgres' ? { connectTimeoutMS: connectTimeoutMs } : { connectTimeout: connectTimeoutMs };
  const options = { ...probeDataSourceOptions(database), url, poolSize, ...connectTimeout } as ConstructorParameters<typeof DataSource>[0];
  const dataSource = new DataSource(options);
  await dataSource.initialize();
  await dataSource.runMigrations();
  return dataSource;
}

describe.each(['mariadb', 'postgres'] as const)('store faults on %s', (kind) => {
  describe('the TypeORM store itself', () => {
    let database: TestDatabase;
    let proxy: TcpProxy;
    const opened: DataSource[] = [];

    beforeAll(async () => {
      database = await createTestDatabase(kind, 'store_faults');
      proxy = newProxy(database);
      await proxy.start();
    });

    afterEach(async () => {
      proxy.restore();
      for (const dataSource of opened.splice(0)) await dataSource.destroy().catch(() => undefined);
    });

    afterAll(async () => {
      await proxy?.stop();
      await database?.drop();
    });

    it('gives up connections a silent network holds forever, so the pool serves again once the network is back (R18)', async () => {
      const dataSource = await dataSourceFor(database, proxiedUrl(database, proxy), 2);
      opened.push(dataSource);
      const store = new TypeOrmIdempotencyStore(dataSource, { timeoutMs: 300 });
      expect((await store.claim(claimRequest())).status).toBe('claimed');

      proxy.blackhole();
      const during = await Promise.allSettled([store.claim(claimRequest()), store.claim(claimRequest()), store.claim(claimRequest())]);
      for (const outcome of during) expect(outcome).toMatchObject({ status: 'rejected', reason: expect.any(StoreTimeoutError) });

      // The blackholed sockets stay open and silent: only the store can give them up.
      proxy.forwardNewConnections();
      expect(await claimsAgainWithin(store, 20)).toBe(true);
    });

    it('frees a pool slot whose connection was being opened when the network went silent, once its connect timeout ends (R18)', async () => {
      // One slot: after the silent network, every claim needs a connection opened into the silence.
      const dataSource = await dataSourceFor(database, proxiedUrl(database, proxy), 1, 1000);
      opened.push(dataSource);
      const store = new TypeOrmIdempotencyStore(dataSource, { timeoutMs: 300 });
      expect((await store.claim(claimRequest())).status).toBe('claimed');

      proxy.blackhole();
      // The first gives up the pooled connection; the second opens one that the silence never answers.
      await expect(store.claim(claimRequest())).rejects.toBeInstanceOf(StoreTimeoutError);
      await expect(store.claim(claimRequest())).rejects.toBeInstanceOf(StoreTimeoutError);

      proxy.forwardNewConnections();
      // Without a connect timeout the opening connection held the only slot for good: nothing was claimed again.
      expect(await claimsAgainWithin(store, 40)).toBe(true);
    });

    it('never sends a claim that timed out waiting for a pooled connection: the key stays free for the retry (R18)', async () => {
      const dataSource = await dataSourceFor(database, database.databaseUrl ?? '', 1);
      opened.push(dataSource);
      const store = new TypeOrmIdempotencyStore(dataSource, { timeoutMs: 300 });
      await store.purgeExpired(1);
      const holder = dataSource.createQueryRunner();
      await holder.connect();
      const request = claimRequest();
      try {
        await expect(store.claim(request)).rejects.toBeInstanceOf(StoreTimeoutError);
      } finally {
        await holder.release();
      }
      // The slot is free now: a claim queued for it would run here and hold the key for nobody.
      await sleep(300);
      expect(await store.inspect(request.account, request.key)).toBeUndefined();
      expect((await store.claim(request)).status).toBe('claimed');
    });
  });

  describe('atomic routes and completions, through a real app', () => {
    let running: RunningProbeApp;
    let proxy: TcpProxy;
    let database: TestDatabase;

    @Controller('faults')
    class FaultsController {
      constructor(
        private readonly tx: IdempotencyTransaction,
        private readonly runs: HandlerRuns,
      ) {}

      /** One statement longer than the store's timeout and the lease's renewal interval. */
      @Post('long-statement')
      @Idempotent({ atomic: true, lockTimeoutMs: 600 })
      async longStatement(): Promise<Record<string, unknown>> {
        await this.tx.manager.query(SLEEP_SQL[kind]);
        return { run: this.runs.record('long-statement') };
      }

      /** Records that expire after a second, and a handler that takes `ms`. */
      @Post('short-lived')
      @Idempotent({ atomic: true, ttl: 1000 })
      async shortLived(@Body() body: { v: string; ms?: number }): Promise<Record<string, unknown>> {
        await this.tx.manager.query('SELECT 1');
        await sleep(body.ms ?? 0);
        return { run: this.runs.record(`short-lived-${body.v}`), v: body.v };
      }

      /** Not atomic: its completion is a store call of its own, after the handler. */
      @Post('slow')
      @Idempotent({ lockTimeoutMs: 4000, inFlightWaitMs: 200 })
      async slow(@Body() body: { ms: number }): Promise<Record<string, unknown>> {
        await sleep(body.ms);
        return { run: this.runs.record('faults-slow') };
      }
    }

    beforeAll(async () => {
      database = await createTestDatabase(kind, 'store_faults_app');
      proxy = newProxy(database);
      await proxy.start();
      running = await startProbeApp({
        database: kind,
        platform: 'express',
        suite: 'store_faults_app',
        controllers: [FaultsController],
        options: { storeTimeoutMs: 400, replayCache: false },
        dataSource: { url: proxiedUrl(database, proxy) },
        logger: ['error'],
      });
    });

    afterAll(async () => {
      await running?.close();
      await proxy?.stop();
      await database?.drop();
    });

    it('lets an atomic handler spend longer than the store timeout in one statement: the renewal waits behind it (R20, R22a)', async () => {
      const response = await request(running.server).post('/faults/long-statement').set('Idempotency-Key', randomUUID()).send({});
      expect(response.status).toBe(201);
      expect(response.body).toEqual({ run: expect.any(Number) });
    });

    it('does not replay an expired record to a retry while another request takes its key over (R12, R10)', async () => {
      const key = randomUUID();
      const first = await request(running.server).post('/faults/short-lived').set('Idempotency-Key', key).send({ v: 'a' });
      expect(first.status).toBe(201);
      await sleep(1200);
      const takeover = request(running.server).post('/faults/short-lived').set('Idempotency-Key', key).send({ v: 'b', ms: 1500 }).then((r) => r);
      await sleep(400);
      const retryOfExpired = await request(running.server).post('/faults/short-lived').set('Idempotency-Key', key).send({ v: 'a' });
      expect(retryOfExpired.status).toBe(422);
      expect(retryOfExpired.body.error.code).toBe('idempotency_key_reuse');
      expect((await takeover).status).toBe(201);
    });

    it('retries a completion the store missed for less than the lease: the retry is a replay and the handler ran once (R20a)', async () => {
      const key = randomUUID();
      const before = running.runs.count('faults-slow');
      const first = request(running.server).post('/faults/slow').set('Idempotency-Key', key).send({ ms: 600 }).then((r) => r);
      await sleep(300);
      proxy.refuse();
      await sleep(1200);
      proxy.restore();
      const answer = await first;
      expect(answer.status).toBe(201);
      const retry = await request(running.server).post('/faults/slow').set('Idempotency-Key', key).send({ ms: 600 });
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotency-replayed']).toBe('true');
      expect(retry.text).toBe(answer.text);
      expect(running.runs.count('faults-slow')).toBe(before + 1);
    });
  });
});
