import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { FingerprintInput } from 'nestjs-idempotency';
import request from 'supertest';
import { PLATFORM_MATRIX } from './support/payments-app.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { bytes, expectFresh, expectReplayOf, json, type SentResponse } from './support/raw-responses.js';

// Body parsers' default limits: Express (body-parser) 100 kB, Fastify 1 MiB. Stay under each.
const LARGE_BODY_BYTES = { express: 90_000, fastify: 900_000 } as const;
const NESTING_DEPTH = 5000;


function expectReuseRefusal(response: SentResponse): void {
  expect(response.status).toBe(422);
  expect(json(response)).toEqual({ error: { code: 'idempotency_key_reuse', message: expect.any(String) } });
  expect(response.headers['idempotency-replayed']).toBeUndefined();
}

/** Items whose compact JSON is about `size` bytes. */
function largeData(size: number): { items: Array<{ id: number; label: string; tags: string[] }> } {
  const items: Array<{ id: number; label: string; tags: string[] }> = [];
  let length = 12;
  for (let id = 0; length < size; id++) {
    const item = { id, label: `item number ${id}`, tags: ['alpha', 'beta'] };
    items.push(item);
    length += JSON.stringify(item).length + 1;
  }
  return { items };
}

/** The same data with every object's keys in reverse order, as another client library might write it. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).reverse().map(([name, item]) => [name, reversedKeys(item)]));
  }
  return value;
}

function deeplyNested(depth: number, leaf: number): string {
  return `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
}

describe.each(PLATFORM_MATRIX)('fingerprint on %s with %s', (database, platform) => {
  describe('built-in fingerprint', () => {
    let running: RunningProbeApp;

    beforeAll(async () => {
      running = await startProbeApp({ database, platform, suite: 'fingerprint' });
    });

    afterAll(async () => {
      await running?.close();
    });

    const post = (path: string, key: string) => bytes(request(running.server).post(path).set('Idempotency-Key', key));

    it('replays a JSON body re-serialised with other key order and whitespace (R7, R9, R13)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      const first = await post('/probe/echo', key)
        .set('Content-Type', 'application/json')
        .send('{"order":{"id":"ord_1","lines":[{"sku":"a","qty":2},{"sku":"b","qty":1}]},"amount":4200}');
      expect(first.status).toBe(201);
      expectFresh(first);

      const reserialised = await post('/probe/echo', key)
        .set('Content-Type', 'application/json')
        .send('{\n  "amount" : 4200,\r\n\t"order": { "lines": [ {"qty":2, "sku":"a"}, {"qty": 1,"sku": "b"} ],\n "id":"ord_1" }\n}\n');
      expectReplayOf(reserialised, first);
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('answers 422 idempotency_key_reuse to a different body under a completed key (R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      const first = await post('/probe/echo', key).send({ amount: 4200 });
      expect(first.status).toBe(201);
      expectReuseRefusal(await post('/probe/echo', key).send({ amount: 4201 }));
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('answers 422 to a different body at once while the first request is still in flight (R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('slow');
      const settledOrder: string[] = [];
      const first = post('/probe/slow', key)
        .send({ ms: 1500 })
        .then((response) => {
          settledOrder.push('first');
          return response;
        });
      // The handler has started, so the first request holds the key.
      while (running.runs.count('slow') === before) await sleep(10);

      const mismatch = await post('/probe/slow', key).send({ ms: 1499 });
      settledOrder.push('mismatch');
      expectReuseRefusal(mismatch);
      expect(running.runs.count('slow')).toBe(before + 1);
      expect(settledOrder).toEqual(['mismatch']);

      const firstResponse = await first;
      expect(firstResponse.status).toBe(201);
      expectFresh(firstResponse);
      expect(settledOrder).toEqual(['mismatch', 'first']);
      expect(running.runs.count('slow')).toBe(before + 1);
    });

    it('answers 422 when only a path parameter differs (R7, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('items');
      expect((await post('/probe/items/1', key).send({ note: 'same' })).status).toBe(201);
      expectReuseRefusal(await post('/probe/items/2', key).send({ note: 'same' }));
      expect(running.runs.count('items')).toBe(before + 1);
    });

    it('answers 422 when only the query string differs (R7, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      expect((await post('/probe/echo?currency=EUR', key).send({ amount: 1 })).status).toBe(201);
      expectReuseRefusal(await post('/probe/echo?currency=USD', key).send({ amount: 1 }));
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('answers 422 when the same key and body come with another method on another route (R7, R10)', async () => {
      const key = randomUUID();
      const echoBefore = running.runs.count('echo');
      const putBefore = running.runs.count('put');
      expect((await post('/probe/echo', key).send({ amount: 1 })).status).toBe(201);
      expectReuseRefusal(await bytes(request(running.server).put('/probe/put').set('Idempotency-Key', key)).send({ amount: 1 }));
      expect(running.runs.count('echo')).toBe(echoBefore + 1);
      expect(running.runs.count('put')).toBe(putBefore);
    });

    it('answers 422 when a header named in fingerprintHeaders differs (R7, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('tenant-header');
      expect((await post('/probe/tenant-header', key).set('X-Tenant-Region', 'eu').send({ amount: 1 })).status).toBe(201);
      expectReuseRefusal(await post('/probe/tenant-header', key).set('X-Tenant-Region', 'us').send({ amount: 1 }));
      expect(running.runs.count('tenant-header')).toBe(before + 1);
    });

    it('replays when a header named in fingerprintHeaders has the same value (R7, R9)', async () => {
      const key = randomUUID();
      const before = running.runs.count('tenant-header');
      const first = await post('/probe/tenant-header', key).set('X-Tenant-Region', 'eu').send({ amount: 1 });
      expect(first.status).toBe(201);
      expectFresh(first);
      expectReplayOf(await post('/probe/tenant-header', key).set('X-Tenant-Region', 'eu').send({ amount: 1 }), first);
      expect(running.runs.count('tenant-header')).toBe(before + 1);
    });

    it('fixes the fingerprint when the key is claimed: a handler that mutates its input does not break the retry (R7, R9)', async () => {
      const key = randomUUID();
      const before = running.runs.count('mutate');
      const first = await post('/probe/mutate', key).send({ amount: 7 });
      expect(first.status).toBe(201);
      expectFresh(first);
      expectReplayOf(await post('/probe/mutate', key).send({ amount: 7 }), first);
      expect(running.runs.count('mutate')).toBe(before + 1);
    });

    it('replays a large JSON body re-serialised, and refuses one that differs only at its end (R7, R9, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      const data = largeData(LARGE_BODY_BYTES[platform]);
      const first = await post('/probe/echo', key).set('Content-Type', 'application/json').send(JSON.stringify(data));
      expect(first.status).toBe(201);
      expectFresh(first);

      const reordered = await post('/probe/echo', key)
        .set('Content-Type', 'application/json')
        .send(JSON.stringify(reversedKeys(data)));
      expectReplayOf(reordered, first);

      const items = [...data.items];
      items[items.length - 1] = { ...items[items.length - 1], label: 'changed' };
      expectReuseRefusal(
        await post('/probe/echo', key).set('Content-Type', 'application/json').send(JSON.stringify({ items })),
      );
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    // On /probe/mutate, which answers { run }: echoing the body back would make the response
    // serialiser itself (not the library) recurse this deep.
    it(`replays a JSON body nested ${NESTING_DEPTH} levels deep, never answering 500 (R7, R9, R10)`, async () => {
      const key = randomUUID();
      const before = running.runs.count('mutate');
      const deep = (leaf: number) => post('/probe/mutate', key).set('Content-Type', 'application/json').send(deeplyNested(NESTING_DEPTH, leaf));
      const first = await deep(1);
      expect(first.status).toBe(201);
      expectFresh(first);
      expectReplayOf(await deep(1), first);
      expectReuseRefusal(await deep(2));
      expect(running.runs.count('mutate')).toBe(before + 1);
    });

    it('still replays the original response byte-for-byte after a 422 refusal of the same key (R16a)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      const first = await post('/probe/echo', key).send({ amount: 10 });
      expect(first.status).toBe(201);
      expectReuseRefusal(await post('/probe/echo', key).send({ amount: 11 }));
      expectReplayOf(await post('/probe/echo', key).send({ amount: 10 }), first);
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('still replays the original response byte-for-byte after 400 invalid_idempotency_key refusals naming the key (R4, R16a)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      const first = await post('/probe/echo', key).send({ amount: 20 });
      expect(first.status).toBe(201);

      // An array value goes out as two header lines (Node's setHeader), as R4 describes.
      const twoHeaders = await bytes(
        request(running.server).post('/probe/echo').set('Idempotency-Key', [key, key] as unknown as string),
      ).send({ amount: 21 });
      const malformed = await post('/probe/echo', `${key}-x`).send({ amount: 21 });
      for (const refused of [twoHeaders, malformed]) {
        expect(refused.status).toBe(400);
        expect(json(refused)).toEqual({ error: { code: 'invalid_idempotency_key', message: expect.any(String) } });
      }

      expectReplayOf(await post('/probe/echo', key).send({ amount: 20 }), first);
      expect(running.runs.count('echo')).toBe(before + 1);
    });
  });

  describe('custom fingerprint option', () => {
    let running: RunningProbeApp;
    // Only the order id identifies the request: path, query, method and other fields are ignored.
    const byOrderId = (input: FingerprintInput): string =>
      createHash('sha256')
        .update(String((input.body as { orderId?: unknown } | undefined)?.orderId))
        .digest('hex');

    beforeAll(async () => {
      running = await startProbeApp({ database, platform, suite: 'fingerprint', options: { fingerprint: byOrderId } });
    });

    afterAll(async () => {
      await running?.close();
    });

    const post = (path: string, key: string) => bytes(request(running.server).post(path).set('Idempotency-Key', key));

    it('replays a request that the built-in fingerprint would refuse, when the custom one matches (R7)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      const first = await post('/probe/echo', key).send({ orderId: 'ord_1', note: 'first try' });
      expect(first.status).toBe(201);
      expectFresh(first);
      expectReplayOf(await post('/probe/echo?attempt=2', key).send({ orderId: 'ord_1', note: 'second try' }), first);
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('answers 422 when the custom fingerprint differs, though the built-in one would match the rest (R7, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      expect((await post('/probe/echo', key).send({ orderId: 'ord_1' })).status).toBe(201);
      expectReuseRefusal(await post('/probe/echo', key).send({ orderId: 'ord_2' }));
      expect(running.runs.count('echo')).toBe(before + 1);
    });
  });
});
