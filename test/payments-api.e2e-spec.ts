import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { PLATFORM_MATRIX, startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';
import { queryRows } from './support/test-database.js';

const acme = { 'X-Api-Key': 'key-acme' };
const globex = { 'X-Api-Key': 'key-globex' };
const payment = { amount: 1999, currency: 'USD', customerId: 'cus_ok' };

async function countRows(running: RunningPaymentsApp, table: 'payments' | 'export_jobs', account?: string): Promise<number> {
  const [row] = (await queryRows(running.dataSource, 
    `SELECT COUNT(*) AS n FROM ${table}${account === undefined ? '' : ' WHERE account = ?'}`,
    account === undefined ? [] : [account],
  )) as Array<{ n: string | number }>;
  return Number(row.n);
}

describe.each(PLATFORM_MATRIX)('payments API on %s with %s', (database, platform) => {
  let running: RunningPaymentsApp;

  beforeAll(async () => {
    running = await startPaymentsApp(database, platform, 'payments_api');
  });

  afterAll(async () => {
    await running?.close();
  });

  const pay = (key: string, body: object, auth: Record<string, string> = acme) =>
    request(running.server).post('/v1/payments').set(auth).set('Idempotency-Key', key).send(body);

  it('answers a missing or unknown X-Api-Key with 401 unauthorized, runs nothing and stores nothing for the key (R14)', async () => {
    const before = await countRows(running, 'payments');
    const key = randomUUID();
    const missing = await request(running.server).post('/v1/payments').set('Idempotency-Key', key).send(payment);
    const unknown = await pay(key, payment, { 'X-Api-Key': 'key-nobody' });
    const listing = await request(running.server).get('/v1/payments');
    for (const response of [missing, unknown, listing]) {
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    }
    expect(await countRows(running, 'payments')).toBe(before);
    const records = (await queryRows(running.dataSource, 'SELECT COUNT(*) AS n FROM idempotency_records WHERE idempotency_key = ?', [
      key,
    ])) as Array<{ n: string | number }>;
    expect(Number(records[0].n)).toBe(0);
  });

  it('answers a payment without Idempotency-Key with 400 idempotency_key_missing and charges nothing (R2, R17)', async () => {
    const before = await countRows(running, 'payments');
    const response = await request(running.server).post('/v1/payments').set(acme).send(payment).expect(400);
    expect(response.body).toEqual({ error: { code: 'idempotency_key_missing', message: expect.any(String) } });
    expect(await countRows(running, 'payments')).toBe(before);
  });

  it.each([
    ['a zero amount', { ...payment, amount: 0 }],
    ['a fractional amount', { ...payment, amount: 1.5 }],
    ['a lower-case currency', { ...payment, currency: 'eur' }],
    ['no customerId', { amount: 100, currency: 'EUR' }],
    ['an unknown field', { ...payment, coupon: 'FREE' }],
  ])('answers a body with %s with 400 validation_failed, charges nothing, and lets the key be used again (R14)', async (_case, body) => {
    const key = randomUUID();
    const before = await countRows(running, 'payments');
    const response = await pay(key, body).expect(400);
    expect(response.body).toEqual({
      error: { code: 'validation_failed', message: expect.any(String), details: expect.any(Array) },
    });
    expect(await countRows(running, 'payments')).toBe(before);
    const corrected = await pay(key, payment).expect(201);
    expect(corrected.headers['idempotency-replayed']).toBeUndefined();
    expect(await countRows(running, 'payments')).toBe(before + 1);
  });

  it('creates a payment: 201, the payment, and its Location (R8, R13)', async () => {
    const before = await countRows(running, 'payments', 'acme');
    const response = await pay(randomUUID(), payment).expect(201);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^pay_[0-9a-f]{32}$/),
      amount: 1999,
      currency: 'USD',
      customerId: 'cus_ok',
      status: 'succeeded',
      createdAt: expect.any(String),
    });
    expect(new Date(response.body.createdAt).toISOString()).toBe(response.body.createdAt);
    expect(response.headers.location).toBe(`/v1/payments/${response.body.id}`);
    expect(response.headers['idempotency-replayed']).toBeUndefined();
    expect(await countRows(running, 'payments', 'acme')).toBe(before + 1);
  });

  it('replays the same key and body byte-for-byte with Idempotency-Replayed and charges once (R9, R13)', async () => {
    const key = randomUUID();
    const first = await pay(key, payment).expect(201);
    const after = await countRows(running, 'payments');
    const replay = await pay(key, payment).expect(201);
    expect(replay.text).toBe(first.text);
    expect(replay.headers.location).toBe(first.headers.location);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(await countRows(running, 'payments')).toBe(after);
  });

  it('stores a declined card (402 card_declined) and replays it on retry (R14, R16)', async () => {
    const key = randomUUID();
    const declined = { ...payment, customerId: 'cus_declined' };
    const first = await pay(key, declined).expect(402);
    expect(first.body.error.code).toBe('card_declined');
    expect(first.headers['idempotency-replayed']).toBeUndefined();
    const retry = await pay(key, declined).expect(402);
    expect(retry.text).toBe(first.text);
    expect(retry.headers['idempotency-replayed']).toBe('true');
  });

  it('releases the key after a 500, so a retry with a corrected body succeeds with the same key (R14)', async () => {
    const key = randomUUID();
    const before = await countRows(running, 'payments');
    await pay(key, { ...payment, customerId: 'cus_error' }).expect(500);
    expect(await countRows(running, 'payments')).toBe(before);
    const retry = await pay(key, { ...payment, customerId: 'cus_ok' }).expect(201);
    expect(retry.headers['idempotency-replayed']).toBeUndefined();
    expect(retry.body.customerId).toBe('cus_ok');
    expect(await countRows(running, 'payments')).toBe(before + 1);
  });

  it("lists only the account's own payments, newest first (example API)", async () => {
    const theirs = await pay(randomUUID(), { ...payment, customerId: 'cus_globex' }, globex).expect(201);
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      created.push((await pay(randomUUID(), { ...payment, amount: 100 + i }).expect(201)).body.id);
      // createdAt has millisecond resolution: keep the three apart so "newest first" is one order.
      await sleep(3);
    }
    const response = await request(running.server).get('/v1/payments').set(acme).expect(200);
    const ids = (response.body.data as Array<{ id: string }>).map((item) => item.id);
    expect(ids.slice(0, 3)).toEqual([...created].reverse());
    expect(ids).not.toContain(theirs.body.id);
    expect(ids).toHaveLength(await countRows(running, 'payments', 'acme'));
    expect(response.body.data[0]).toEqual({
      id: created[2],
      amount: 102,
      currency: 'USD',
      customerId: 'cus_ok',
      status: 'succeeded',
      createdAt: expect.any(String),
    });
  });

  it("shows a payment to its account and answers 404 to another account's request for it (example API)", async () => {
    const created = await pay(randomUUID(), payment).expect(201);
    const mine = await request(running.server).get(`/v1/payments/${created.body.id}`).set(acme).expect(200);
    expect(mine.body).toEqual(created.body);
    const other = await request(running.server).get(`/v1/payments/${created.body.id}`).set(globex).expect(404);
    expect(other.body.error.code).toBe('not_found');
  });

  it('runs an export without a key each time, and replays one with a key (R2, R9)', async () => {
    const before = await countRows(running, 'export_jobs');
    const a = await request(running.server).post('/v1/exports').set(acme).send({ datastreamId: 7 }).expect(202);
    const b = await request(running.server).post('/v1/exports').set(acme).send({ datastreamId: 7 }).expect(202);
    expect(a.body.id).not.toBe(b.body.id);
    expect(await countRows(running, 'export_jobs')).toBe(before + 2);

    const key = randomUUID();
    const first = await request(running.server).post('/v1/exports').set(acme).set('Idempotency-Key', key).send({ datastreamId: 8 }).expect(202);
    expect(first.body).toEqual({ id: expect.stringMatching(/^exp_/), datastreamId: 8, status: 'queued' });
    expect(first.headers['idempotency-replayed']).toBeUndefined();
    const replay = await request(running.server).post('/v1/exports').set(acme).set('Idempotency-Key', key).send({ datastreamId: 8 }).expect(202);
    expect(replay.text).toBe(first.text);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(await countRows(running, 'export_jobs')).toBe(before + 3);
  });

  it('deletes an export with a key, replays the deletion for that key, and answers 404 to a new delete (R9)', async () => {
    const exportJob = await request(running.server).post('/v1/exports').set(acme).send({ datastreamId: 9 }).expect(202);
    const id = exportJob.body.id as string;
    const key = randomUUID();
    const deleted = await request(running.server).delete(`/v1/exports/${id}`).set(acme).set('Idempotency-Key', key).expect(200);
    expect(deleted.body).toEqual({ id, deleted: true });
    expect(deleted.headers['idempotency-replayed']).toBeUndefined();
    const replay = await request(running.server).delete(`/v1/exports/${id}`).set(acme).set('Idempotency-Key', key).expect(200);
    expect(replay.text).toBe(deleted.text);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    const again = await request(running.server).delete(`/v1/exports/${id}`).set(acme).expect(404);
    expect(again.body.error.code).toBe('not_found');
  });

  it('answers GET /healthz without an API key (example API)', async () => {
    const response = await request(running.server).get('/healthz').expect(200);
    expect(response.body).toEqual({ status: 'ok' });
  });
});
