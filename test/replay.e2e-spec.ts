import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { PLATFORM_MATRIX, startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';
import { queryRows } from './support/test-database.js';

const acme = { 'X-Api-Key': 'key-acme' };
const payment = { amount: 4200, currency: 'EUR', customerId: 'cus_replay' };

async function paymentCount(running: RunningPaymentsApp): Promise<number> {
  const [row] = (await queryRows(running.dataSource, 'SELECT COUNT(*) AS n FROM payments')) as Array<{ n: string | number }>;
  return Number(row.n);
}

describe.each(PLATFORM_MATRIX)('replay on %s with %s', (database, platform) => {
  let running: RunningPaymentsApp;

  beforeAll(async () => {
    running = await startPaymentsApp(database, platform, 'replay');
  });

  afterAll(async () => {
    await running?.close();
  });

  it('runs the handler for a new key and answers without Idempotency-Replayed (R8, R13)', async () => {
    const before = await paymentCount(running);
    const response = await request(running.server)
      .post('/v1/payments')
      .set(acme)
      .set('Idempotency-Key', randomUUID())
      .send(payment)
      .expect(201);
    expect(response.headers['idempotency-replayed']).toBeUndefined();
    expect(response.headers.location).toBe(`/v1/payments/${response.body.id}`);
    expect(await paymentCount(running)).toBe(before + 1);
  });

  it('replays the stored status, headers and body byte-for-byte without running the handler again (R9, R13, R15)', async () => {
    const key = randomUUID();
    const first = await request(running.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(payment).buffer(true);
    const countAfterFirst = await paymentCount(running);
    const replays = [];
    for (let i = 0; i < 3; i++) {
      replays.push(await request(running.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(payment).buffer(true));
    }
    for (const replay of replays) {
      expect(replay.status).toBe(201);
      expect(Buffer.from(replay.text, 'utf8').equals(Buffer.from(first.text, 'utf8'))).toBe(true);
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expect(replay.headers['content-type']).toBe(first.headers['content-type']);
      expect(replay.headers.location).toBe(first.headers.location);
      expect(replay.headers['content-length']).toBe(first.headers['content-length']);
    }
    expect(await paymentCount(running)).toBe(countAfterFirst);
  });

  it('stores an exception answered by a filter and replays it exactly (R16)', async () => {
    const key = randomUUID();
    const declined = { ...payment, customerId: 'cus_declined' };
    const first = await request(running.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(declined).expect(402);
    const replay = await request(running.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(declined).expect(402);
    expect(first.body.error.code).toBe('card_declined');
    expect(replay.text).toBe(first.text);
    expect(replay.headers['idempotency-replayed']).toBe('true');
  });
});
