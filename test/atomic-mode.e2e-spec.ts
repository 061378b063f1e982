import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Body,
  Controller,
  HttpException,
  Injectable,
  Module,
  Post,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  IdempotencyModule,
  IdempotencyTransaction,
  Idempotent,
  type IdempotencyModuleOptions,
} from 'nestjs-idempotency';
import request from 'supertest';
import { DataSource } from 'typeorm';
import type { HttpPlatform } from '../src/bootstrap.js';
import { startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';
import { probeDataSourceOptions } from './support/probe-app.js';
import { connectSql } from './support/sql-client.js';
import { queryRows, createTestDatabase, type DatabaseKind } from './support/test-database.js';
import { paymentWrittenUncommitted } from './support/uncommitted-writes.js';

const acme = { 'X-Api-Key': 'key-acme' };
/** The databases atomic mode runs on, on both platforms. */
const ATOMIC_MATRIX: ReadonlyArray<readonly [DatabaseKind, HttpPlatform]> = [
  ['mariadb', 'express'],
  ['mariadb', 'fastify'],
  ['postgres', 'express'],
  ['postgres', 'fastify'],
];

/** Listens once, so that concurrent supertest requests share one server instead of each starting it. */
function listening(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

async function paymentRows(running: RunningPaymentsApp, customerId: string): Promise<number> {
  const [row] = (await queryRows(running.dataSource, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [customerId])) as Array<{
    n: string | number;
  }>;
  return Number(row.n);
}

function paymentBody(customerId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { amount: 1999, currency: 'EUR', customerId, ...extra };
}

describe.each(ATOMIC_MATRIX)('atomic mode on the payments API on %s with %s', (database, platform) => {
  let payments: RunningPaymentsApp;

  beforeAll(async () => {
    payments = await startPaymentsApp(database, platform, 'atomic');
    await listening(payments.server);
  });

  afterAll(async () => {
    await payments?.close();
  });

  it('rolls back the payment row of a handler that throws after writing it: 500 and no row (R22, R14)', async () => {
    const response = await request(payments.server)
      .post('/v1/payments')
      .set(acme)
      .set('Idempotency-Key', randomUUID())
      .send(paymentBody('cus_error_after_write'));
    expect(response.status).toBe(500);
    expect(response.headers['idempotency-replayed']).toBeUndefined();
    expect(await paymentRows(payments, 'cus_error_after_write')).toBe(0);
  });

  it('releases the key after the rolled-back 500: the same key with a corrected body runs fresh and leaves exactly one payment row (R22, R14, R8)', async () => {
    const key = randomUUID();
    const corrected = `cus_ok_${randomUUID().slice(0, 8)}`;
    await request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(paymentBody('cus_error_after_write')).expect(500);

    const fresh = await request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(paymentBody(corrected)).expect(201);
    expect(fresh.headers['idempotency-replayed']).toBeUndefined();
    expect(fresh.body.customerId).toBe(corrected);
    expect(await paymentRows(payments, corrected)).toBe(1);
    expect(await paymentRows(payments, 'cus_error_after_write')).toBe(0);

    const replay = await request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(paymentBody(corrected)).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(fresh.text);
    expect(await paymentRows(payments, corrected)).toBe(1);
  });

  it('answers a fresh 201 and its replay only once the payment row is committed: both ids can be read back (R22, R9)', async () => {
    const key = randomUUID();
    const customer = `cus_ok_${randomUUID().slice(0, 8)}`;
    const fresh = await request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(paymentBody(customer)).expect(201);
    const read = await request(payments.server).get(`/v1/payments/${fresh.body.id}`).set(acme).expect(200);
    expect(read.body).toEqual(fresh.body);

    const replay = await request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(paymentBody(customer)).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    const readReplayed = await request(payments.server).get(`/v1/payments/${replay.body.id}`).set(acme).expect(200);
    expect(readReplayed.body).toEqual(replay.body);
  });

  it('runs 20 concurrent requests with one key and body once: one payment row, every answer the same 201 bytes or 409 idempotency_conflict, never 5xx, and every 201 has its row (R22, R6, R9, R11)', async () => {
    const key = randomUUID();
    const customer = `cus_ok_${randomUUID().slice(0, 8)}`;
    const body = paymentBody(customer, { processingMs: 200 });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(body).buffer(true)),
    );

    const created = answers.filter((answer) => answer.status === 201);
    const others = answers.filter((answer) => answer.status !== 201);
    expect(created.length).toBeGreaterThan(0);
    for (const answer of others) {
      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe('idempotency_conflict');
    }
    for (const answer of created) expect(answer.text).toBe(created[0].text);
    expect(created.filter((answer) => answer.headers['idempotency-replayed'] === undefined)).toHaveLength(1);
    expect(await paymentRows(payments, customer)).toBe(1);

    const read = await request(payments.server).get(`/v1/payments/${created[0].body.id}`).set(acme).expect(200);
    expect(read.body.customerId).toBe(customer);
  });

  /** Sends in the background; settles with the answer, and says whether it has yet. */
  function inBackground(key: string, body: Record<string, unknown>): { answer: Promise<request.Response>; settled: () => boolean } {
    let done = false;
    const answer = request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(body).buffer(true);
    const settledAnswer = answer.then((response) => {
      done = true;
      return response;
    });
    return { answer: settledAnswer, settled: () => done };
  }

  async function untilWrittenUncommitted(customerId: string): Promise<void> {
    const sql = await connectSql(payments.database.databaseUrl ?? '');
    try {
      for (let attempt = 0; !(await paymentWrittenUncommitted(sql, customerId)); attempt++) {
        if (attempt > 200) throw new Error('the first payment was never seen in flight');
        await sleep(20);
      }
    } finally {
      await sql.end();
    }
  }

  it('refuses another body with the key while the first request is still in flight, without waiting for it: 422 at once, though its claim is not committed yet (R10, R22a)', async () => {
    const key = randomUUID();
    const customer = `cus_ok_${randomUUID().slice(0, 8)}`;
    const first = inBackground(key, paymentBody(customer, { processingMs: 1500 }));
    await untilWrittenUncommitted(customer);

    const other = await request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(paymentBody(`${customer}_other`));

    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reuse');
    expect(first.settled()).toBe(false);
    expect((await first.answer).status).toBe(201);
    expect(await paymentRows(payments, customer)).toBe(1);
    expect(await paymentRows(payments, `${customer}_other`)).toBe(0);
  });

  it('lets 30 retries of an uncommitted first request wait without holding a pooled connection (the pool has 10): other requests are served meanwhile, and every retry then gets the replay (R11, R22a)', async () => {
    const key = randomUUID();
    const customer = `cus_ok_${randomUUID().slice(0, 8)}`;
    const body = paymentBody(customer, { processingMs: 1500 });
    const first = inBackground(key, body);
    await untilWrittenUncommitted(customer);

    const retries = Array.from({ length: 30 }, () => inBackground(key, body));
    await sleep(100);
    const listed = await request(payments.server).get('/v1/payments').set(acme);
    expect(listed.status).toBe(200);
    expect(first.settled()).toBe(false);

    const original = await first.answer;
    expect(original.status).toBe(201);
    for (const retry of await Promise.all(retries.map((pending) => pending.answer))) {
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotency-replayed']).toBe('true');
      expect(retry.text).toBe(original.text);
    }
    expect(await paymentRows(payments, customer)).toBe(1);
  });
});

describe('without atomic mode, for contrast, on the payments API on sqlite with express', () => {
  let payments: RunningPaymentsApp;

  beforeAll(async () => {
    payments = await startPaymentsApp('sqlite', 'express', 'atomic_sqlite');
  });

  afterAll(async () => {
    await payments?.close();
  });

  it('keeps the payment row written before a plain Error when atomic mode is off (the partial write atomic mode rolls back), and still releases the key (R22, R14)', async () => {
    const key = randomUUID();
    const before = await paymentRows(payments, 'cus_error_after_write');
    await request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(paymentBody('cus_error_after_write')).expect(500);
    expect(await paymentRows(payments, 'cus_error_after_write')).toBe(before + 1);

    const corrected = `cus_ok_${randomUUID().slice(0, 8)}`;
    const fresh = await request(payments.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(paymentBody(corrected)).expect(201);
    expect(fresh.headers['idempotency-replayed']).toBeUndefined();
    expect(await paymentRows(payments, corrected)).toBe(1);
  });
});

/** Counts handler runs per ledger reference. */
@Injectable()
class LedgerRuns {
  private readonly runs = new Map<string, number>();

  record(ref: string): number {
    const count = (this.runs.get(ref) ?? 0) + 1;
    this.runs.set(ref, count);
    return count;
  }

  count(ref: string): number {
    return this.runs.get(ref) ?? 0;
  }
}

interface LedgerRequest {
  ref: string;
  /** Status of the HttpException the handler throws after its write; none: it succeeds. */
  failWith?: number;
}

const CREATE_LEDGER_TABLE = 'CREATE TABLE ledger_entries (id VARCHAR(64) NOT NULL PRIMARY KEY, ref VARCHAR(64) NOT NULL)';

/** Writes a ledger row through the library's transaction, then answers or throws as asked. */
@Controller('ledger')
class LedgerController {
  constructor(
    private readonly transaction: IdempotencyTransaction,
    private readonly runs: LedgerRuns,
  ) {}

  @Post('entries')
  @Idempotent()
  async create(@Body() body: LedgerRequest): Promise<Record<string, unknown>> {
    const run = this.runs.record(body.ref);
    await this.transaction.manager.createQueryBuilder().insert().into('ledger_entries').values({ id: randomUUID(), ref: body.ref }).execute();
    if (body.failWith) throw new HttpException({ error: { code: `failed_${body.failWith}`, run } }, body.failWith);
    return { ref: body.ref, run, inTransaction: this.transaction.active };
  }
}

/** One route asking for atomic mode by itself, for the start-up refusal. */
@Controller('charges')
class AtomicChargesController {
  @Post()
  @Idempotent({ atomic: true })
  charge(): Record<string, unknown> {
    return { charged: true };
  }
}

interface RunningLedgerApp {
  readonly app: INestApplication;
  readonly server: Server;
  readonly dataSource: DataSource;
  readonly runs: LedgerRuns;
  close(): Promise<void>;
}

/**
 * A small app of its own: the ledger controller (and any other), the library configured by
 * `idempotency`, and a `ledger_entries` table made with raw SQL. The DataSource is opened before the
 * app and handed to TypeOrmModule, so an app that fails to start leaves no connection behind.
 */
async function startLedgerApp(
  kind: DatabaseKind,
  platform: HttpPlatform,
  name: string,
  idempotency: IdempotencyModuleOptions,
  controllers: Type<unknown>[],
): Promise<RunningLedgerApp> {
  const database = await createTestDatabase(kind, name);
  const dataSource = await new DataSource(probeDataSourceOptions(database)).initialize();
  const cleanUp = async () => {
    if (dataSource.isInitialized) await dataSource.destroy();
    await database.drop();
  };
  let app: INestApplication | undefined;
  try {
    await queryRows(dataSource, CREATE_LEDGER_TABLE);

    @Module({
      imports: [
        TypeOrmModule.forRootAsync({ useFactory: () => probeDataSourceOptions(database), dataSourceFactory: async () => dataSource }),
        IdempotencyModule.forRoot(idempotency),
      ],
      controllers,
      providers: [LedgerRuns],
    })
    class LedgerModule {}

    const settings = { logger: ['error' as const], abortOnError: false };
    app =
      platform === 'fastify'
        ? await NestFactory.create(LedgerModule, new (await import('@nestjs/platform-fastify')).FastifyAdapter(), settings)
        : await NestFactory.create(LedgerModule, settings);
    await app.init();
    if (platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
    const started = app;
    return {
      app: started,
      server: started.getHttpServer(),
      dataSource,
      runs: started.get(LedgerRuns),
      async close() {
        await started.close();
        await cleanUp();
      },
    };
  } catch (error) {
    await app?.close().catch(() => undefined);
    await cleanUp();
    throw error;
  }
}

describe.each(ATOMIC_MATRIX)('atomic mode on an app of its own on %s with %s', (database, platform) => {
  let ledger: RunningLedgerApp;

  beforeAll(async () => {
    ledger = await startLedgerApp(database, platform, `atomic_probe_${database}_${platform}`, { atomic: true }, [LedgerController]);
    await listening(ledger.server);
  });

  afterAll(async () => {
    await ledger?.close();
  });

  async function ledgerRows(ref: string): Promise<number> {
    const [row] = (await queryRows(ledger.dataSource, 'SELECT COUNT(*) AS n FROM ledger_entries WHERE ref = ?', [ref])) as Array<{
      n: string | number;
    }>;
    return Number(row.n);
  }

  const send = (key: string, body: LedgerRequest) =>
    request(ledger.server).post('/ledger/entries').set('Idempotency-Key', key).send(body);

  it('commits the handler writes with its stored response: the handler sees the transaction, its row exists, and the replay adds none (R22, R9)', async () => {
    const key = randomUUID();
    const ref = `ok-${randomUUID().slice(0, 8)}`;
    const fresh = await send(key, { ref }).expect(201);
    expect(fresh.body).toEqual({ ref, run: 1, inTransaction: true });
    expect(await ledgerRows(ref)).toBe(1);

    const replay = await send(key, { ref }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(fresh.text);
    expect(ledger.runs.count(ref)).toBe(1);
    expect(await ledgerRows(ref)).toBe(1);
  });

  it('stores a 402 HttpException thrown after a write and keeps that write: the 402 replays and the row stays (R22, R14, R16)', async () => {
    const key = randomUUID();
    const ref = `declined-${randomUUID().slice(0, 8)}`;
    const first = await send(key, { ref, failWith: 402 }).expect(402);
    expect(first.body).toEqual({ error: { code: 'failed_402', run: 1 } });
    expect(first.headers['idempotency-replayed']).toBeUndefined();
    expect(await ledgerRows(ref)).toBe(1);

    const replay = await send(key, { ref, failWith: 402 }).expect(402);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
    expect(ledger.runs.count(ref)).toBe(1);
    expect(await ledgerRows(ref)).toBe(1);
  });

  it('rolls back the write of a handler that throws 503 and frees the key: a retry runs again, and a corrected request then commits once (R22, R14)', async () => {
    const key = randomUUID();
    const ref = `unavailable-${randomUUID().slice(0, 8)}`;
    const first = await send(key, { ref, failWith: 503 }).expect(503);
    expect(first.body).toEqual({ error: { code: 'failed_503', run: 1 } });
    expect(await ledgerRows(ref)).toBe(0);

    const retry = await send(key, { ref, failWith: 503 }).expect(503);
    expect(retry.headers['idempotency-replayed']).toBeUndefined();
    expect(retry.body).toEqual({ error: { code: 'failed_503', run: 2 } });
    expect(await ledgerRows(ref)).toBe(0);

    const corrected = await send(key, { ref }).expect(201);
    expect(corrected.headers['idempotency-replayed']).toBeUndefined();
    expect(corrected.body).toEqual({ ref, run: 3, inTransaction: true });
    expect(await ledgerRows(ref)).toBe(1);
  });
});

describe('atomic mode refused at start-up on sqlite', () => {
  /** Expects the app to fail at start-up, and returns the error for its message. */
  async function startFailure(idempotency: IdempotencyModuleOptions, controllers: Type<unknown>[]): Promise<Error> {
    let started: RunningLedgerApp | undefined;
    try {
      started = await startLedgerApp('sqlite', 'express', 'atomic_sqlite_refusal', idempotency, controllers);
    } catch (error) {
      expect(error).toBeInstanceOf(Error);
      return error as Error;
    }
    await started.close();
    throw new Error('the app started although it asks for atomic mode on SQLite');
  }

  it('refuses IdempotencyModule.forRoot({ atomic: true }) on SQLite with a message naming the option and MySQL/MariaDB (R22)', async () => {
    const error = await startFailure({ atomic: true }, [LedgerController]);
    expect(error.message).toContain('nestjs-idempotency');
    expect(error.message).toContain('IdempotencyModule.forRoot({ atomic: true })');
    expect(error.message).toMatch(/MySQL\/MariaDB|MySQL or MariaDB/);
  });

  it('refuses a route with @Idempotent({ atomic: true }) on SQLite with a message naming Controller.method and MySQL/MariaDB (R22)', async () => {
    const error = await startFailure({}, [LedgerController, AtomicChargesController]);
    expect(error.message).toContain('AtomicChargesController.charge');
    expect(error.message).not.toContain('LedgerController');
    expect(error.message).toMatch(/MySQL\/MariaDB|MySQL or MariaDB/);
  });
});
