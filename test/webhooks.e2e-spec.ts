import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { PLATFORM_MATRIX, startPaymentsApp, TEST_WEBHOOK_SECRET, type RunningPaymentsApp } from './support/payments-app.js';
import { queryRows } from './support/test-database.js';

const PATH = '/v1/webhooks/provider';

function signatureOf(rawBody: string, secret = TEST_WEBHOOK_SECRET): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

function newEventId(): string {
  return `evt_${randomUUID().replaceAll('-', '')}`;
}

/** The exact bytes the provider sends; the signature covers them, so they are sent as they are. */
function eventBody(id: string, data: Record<string, unknown> = { paymentId: 'pay_1', amount: 4200 }): string {
  return JSON.stringify({ id, type: 'payment.succeeded', data });
}

describe.each(PLATFORM_MATRIX)('webhook deliveries processed once on %s with %s', (database, platform) => {
  let running: RunningPaymentsApp;

  beforeAll(async () => {
    running = await startPaymentsApp(database, platform, 'webhooks');
  });

  afterAll(async () => {
    await running?.close();
  });

  /** `signature: null` sends no signature header at all. */
  function deliver(rawBody: string, signature: string | null = signatureOf(rawBody)) {
    const call = request(running.server).post(PATH).set('Content-Type', 'application/json');
    if (signature !== null) call.set('X-Provider-Signature', signature);
    return call.send(rawBody).buffer(true);
  }

  async function rowsOf(table: 'webhook_events' | 'idempotency_records', eventId: string): Promise<Array<{ id?: string }>> {
    const column = table === 'webhook_events' ? 'event_id' : 'idempotency_key';
    return (await queryRows(running.dataSource, `SELECT * FROM ${table} WHERE ${column} = ?`, [eventId])) as Array<{ id?: string }>;
  }

  it('processes an event delivered 20 times at once and 3 times later exactly once; every delivery gets the same receipt byte-for-byte (R23, R9, R11)', async () => {
    const id = newEventId();
    const body = eventBody(id);

    const concurrent = await Promise.all(Array.from({ length: 20 }, () => deliver(body)));
    const later = [];
    for (let i = 0; i < 3; i++) later.push(await deliver(body));

    const received = concurrent.filter((answer) => answer.status === 200);
    const refused = concurrent.filter((answer) => answer.status !== 200);
    expect(received.length).toBeGreaterThan(0);
    // A delivery whose wait for the first one ran out may only be told to retry (R11).
    expect(refused.map((answer) => [answer.status, JSON.parse(answer.text).error?.code])).toEqual(
      refused.map(() => [409, 'idempotency_conflict']),
    );
    expect(later.map((answer) => answer.status)).toEqual([200, 200, 200]);
    const receipt = received[0].text;
    for (const answer of [...received, ...later]) expect(Buffer.from(answer.text).equals(Buffer.from(receipt))).toBe(true);

    const events = await rowsOf('webhook_events', id);
    expect(events).toHaveLength(1);
    expect(JSON.parse(receipt)).toEqual({ received: true, eventId: id, recordId: events[0].id });
  });

  it.each([
    ['a signature made with another secret', (body: string) => signatureOf(body, 'whsec_someone_else')],
    ['a signature of other bytes', (body: string) => signatureOf(`${body} `)],
    ['no signature', () => null],
  ])('answers a delivery with %s 401 invalid_signature and stores nothing for its event id (R23)', async (_case, sign) => {
    const id = newEventId();
    const body = eventBody(id);

    const answer = await deliver(body, sign(body));

    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.text).error.code).toBe('invalid_signature');
    expect(await rowsOf('webhook_events', id)).toHaveLength(0);
    expect(await rowsOf('idempotency_records', id)).toHaveLength(0);
  });

  it('refuses a validly signed event that reuses a processed event id with another payload with 422 idempotency_key_reuse, without processing it; the original still replays (R10, R16a, R23)', async () => {
    const id = newEventId();
    const original = eventBody(id);
    const first = await deliver(original);
    expect(first.status).toBe(200);

    const reused = await deliver(eventBody(id, { paymentId: 'pay_2', amount: 1 }));

    expect(reused.status).toBe(422);
    expect(JSON.parse(reused.text).error.code).toBe('idempotency_key_reuse');
    expect(await rowsOf('webhook_events', id)).toHaveLength(1);
    const redelivery = await deliver(original);
    expect(redelivery.status).toBe(200);
    expect(Buffer.from(redelivery.text).equals(Buffer.from(first.text))).toBe(true);
  });

  it('answers a validly signed event whose id is not evt_... with 400 validation_failed and stores nothing (R23)', async () => {
    const id = `not_an_event_${randomUUID().slice(0, 8)}`;
    const body = eventBody(id);

    const answer = await deliver(body);

    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error.code).toBe('validation_failed');
    expect(await rowsOf('webhook_events', id)).toHaveLength(0);
    expect(await rowsOf('idempotency_records', id)).toHaveLength(0);
  });
});
