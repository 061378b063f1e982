import { createHash, randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { IDEMPOTENCY_CHANNELS, type FingerprintInput, type IdempotencyStoreCallMessage } from 'nestjs-idempotency';
import request from 'supertest';
import { PLATFORM_MATRIX } from './support/payments-app.js';
import { startProbeApp, UNPARSED_MEDIA_TYPE, type RunningProbeApp } from './support/probe-app.js';
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

/** Collects the store's claims made for one route, published on the library's store channel (R27). */
function watchClaims(routeFragment: string): { readonly claims: IdempotencyStoreCallMessage[]; stop(): void } {
  const claims: IdempotencyStoreCallMessage[] = [];
  const onStoreCall = (message: unknown): void => {
    const call = message as IdempotencyStoreCallMessage;
    if (call.operation === 'claim' && call.route.includes(routeFragment)) claims.push(call);
  };
  subscribe(IDEMPOTENCY_CHANNELS.store, onStoreCall);
  return { claims, stop: () => unsubscribe(IDEMPOTENCY_CHANNELS.store, onStoreCall) };
}

/** Keeps every warning an app logs, for start-up checks. */
class WarningLog implements LoggerService {
  readonly warnings: string[] = [];
  log(): void {}
  error(): void {}
  warn(message: unknown): void {
    this.warnings.push(String(message));
  }
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

  describe('exact bodies and spellings, with rawBody: true', () => {
    let running: RunningProbeApp;
    const warnings = new WarningLog();
    // Fastify refuses media types it has no parser for (415) before any handler, the library's included.
    const unparsedByPlatform = platform === 'fastify';

    beforeAll(async () => {
      running = await startProbeApp({ database, platform, suite: 'fingerprint_exact', rawBody: true, logger: warnings });
    });

    afterAll(async () => {
      await running?.close();
    });

    const post = (path: string, key: string) => bytes(request(running.server).post(path).set('Idempotency-Key', key));
    const postJson = (path: string, key: string, text: string) => post(path, key).set('Content-Type', 'application/json').send(text);
    const remove = (path: string, key: string) => bytes(request(running.server).delete(path).set('Idempotency-Key', key));

    it('logs no raw-body warning when the app has rawBody on (R7)', () => {
      expect(warnings.warnings.filter((line) => line.includes('rawBody'))).toEqual([]);
    });

    it('answers 422 to -1e400 under a key first used with null: a non-finite number is never null (R7, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      expect((await postJson('/probe/echo', key, '{"datastreamId":5,"processingMs":null}')).status).toBe(201);
      expectReuseRefusal(await postJson('/probe/echo', key, '{"datastreamId":5,"processingMs":-1e400}'));
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('answers 422 to 2^53+1 under a key first used with 2^53: integers beyond a double stay exact (R7, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      expect((await postJson('/probe/echo', key, '{"datastreamId":9007199254740992}')).status).toBe(201);
      expectReuseRefusal(await postJson('/probe/echo', key, '{"datastreamId":9007199254740993}'));
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('replays 1e3, 1000.0 and 1E+3 to a key first used with 1000: one decimal value (R7, R9)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      const first = await postJson('/probe/echo', key, '{"amount":1000}');
      expect(first.status).toBe(201);
      expectFresh(first);
      for (const spelling of ['1e3', '1000.0', '1E+3', '10000e-1']) {
        expectReplayOf(await postJson('/probe/echo', key, `{"amount":${spelling}}`), first);
      }
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('answers 422 to another text/plain body, and replays the same one (R7, R9, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('delete');
      const send = (text: string) => remove('/probe/delete/exp_1', key).set('Content-Type', 'text/plain').send(text);
      const first = await send('reason=A');
      expect(first.status).toBe(200);
      expectFresh(first);
      expectReuseRefusal(await send('reason=B'));
      expectReplayOf(await send('reason=A'), first);
      expect(running.runs.count('delete')).toBe(before + 1);
    });

    describe.each([
      ['application/octet-stream', 'application/octet-stream'],
      ['XML', 'application/xml'],
      ['no content type', undefined],
    ])('a body sent as %s', (_label, contentType) => {
      const send = (key: string, text: string) => {
        const call = remove('/probe/delete/exp_1', key);
        return (contentType === undefined ? call : call.set('Content-Type', contentType)).send(Buffer.from(text));
      };

      if (unparsedByPlatform) {
        it('is refused by Fastify with 415 before the handler runs (R7)', async () => {
          const before = running.runs.count('delete');
          const refused = await send(randomUUID(), '<reason>A</reason>');
          expect(refused.status).toBe(415);
          expect(running.runs.count('delete')).toBe(before);
        });
        return;
      }

      it('counts by its bytes: 422 to another body, a replay of the same (R7, R9, R10)', async () => {
        const key = randomUUID();
        const before = running.runs.count('delete');
        const first = await send(key, '<reason>A</reason>');
        expect(first.status).toBe(200);
        expectFresh(first);
        expectReuseRefusal(await send(key, '<reason>B</reason>'));
        expectReplayOf(await send(key, '<reason>A</reason>'), first);
        expect(running.runs.count('delete')).toBe(before + 1);
      });
    });

    it('replays a query with its parameters in another order or percent-encoded (R7, R9)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      const first = await postJson('/probe/echo?a=1&b=2&x=A', key, '{"amount":1}');
      expect(first.status).toBe(201);
      expectFresh(first);
      expectReplayOf(await postJson('/probe/echo?b=2&a=1&x=A', key, '{"amount":1}'), first);
      expectReplayOf(await postJson('/probe/echo?x=%41&b=2&a=%31', key, '{"amount":1}'), first);
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('answers 422 when the values of one query parameter come in another order (R7, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      expect((await postJson('/probe/echo?a=1&a=2', key, '{"amount":1}')).status).toBe(201);
      expectReuseRefusal(await postJson('/probe/echo?a=2&a=1', key, '{"amount":1}'));
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('replays a path whose parameter is percent-encoded: exp%5F1 is exp_1 (R7, R9)', async () => {
      const key = randomUUID();
      const before = running.runs.count('delete');
      const first = await remove('/probe/delete/exp%5F1', key);
      expect(first.status).toBe(200);
      expectFresh(first);
      expectReplayOf(await remove('/probe/delete/exp_1', key), first);
      expect(running.runs.count('delete')).toBe(before + 1);
    });

    describe.each([
      ['a small body', Buffer.from('part=1;checksum=abc')],
      ['a body of many chunks', Buffer.from(Array.from({ length: 300_000 }, (_, index) => (index * 7919) % 251))],
    ])('a handler that reads the request stream itself, given %s', (_label, body) => {
      const send = (key: string, bytesSent: Buffer) => post('/probe/stream-reader', key).set('Content-Type', UNPARSED_MEDIA_TYPE).send(bytesSent);
      const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

      it('receives every byte, and the body counts in the fingerprint (R7, R9, R10)', async () => {
        const key = randomUUID();
        const before = running.runs.count('stream-reader');
        const first = await send(key, body);
        expect(first.status).toBe(201);
        expectFresh(first);
        expect(json(first)).toEqual({ run: before + 1, length: body.length, sha256: sha256(body) });

        const changed = Buffer.from(body);
        changed[changed.length - 1] ^= 1;
        expectReuseRefusal(await send(key, changed));
        expectReplayOf(await send(key, Buffer.from(body)), first);
        expect(running.runs.count('stream-reader')).toBe(before + 1);
      });
    });

    it('refuses a body that was read by something that kept neither its bytes nor a parsed value: 400, nothing claimed (R7)', async () => {
      const claims = watchClaims('/probe/drained');
      try {
        const before = running.runs.count('drained');
        const refused = await post('/probe/drained', randomUUID()).set('Content-Type', UNPARSED_MEDIA_TYPE).send(Buffer.from('reason=A'));
        expect(refused.status).toBe(400);
        expect(json(refused)).toEqual({ error: { code: 'idempotency_body_unreadable', message: expect.any(String) } });
        expect(running.runs.count('drained')).toBe(before);
        expect(claims.claims).toEqual([]);
      } finally {
        claims.stop();
      }
    });

    it('refuses a body it would have to hold beyond 1 MiB with 413, before the handler runs (R7)', async () => {
      const claims = watchClaims('/probe/stream-reader');
      try {
        const before = running.runs.count('stream-reader');
        const refused = await post('/probe/stream-reader', randomUUID())
          .set('Content-Type', UNPARSED_MEDIA_TYPE)
          .send(Buffer.alloc(1024 * 1024 + 1, 7));
        expect(refused.status).toBe(413);
        expect(json(refused)).toEqual({ error: { code: 'idempotency_body_too_large', message: expect.any(String) } });
        expect(running.runs.count('stream-reader')).toBe(before);
        expect(claims.claims).toEqual([]);
      } finally {
        claims.stop();
      }
    });

    it('neither claims the key nor runs the handler when the client aborts the body, so a retry runs fresh (R7, R8)', async () => {
      if (!running.server.listening) await new Promise<void>((resolve) => running.server.listen(0, '127.0.0.1', resolve));
      const { port } = running.server.address() as AddressInfo;
      const key = randomUUID();
      const before = running.runs.count('stream-reader');
      const arrivedBefore = running.runs.count('arrived-streamReader');
      const claims = watchClaims('/probe/stream-reader');
      try {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => {});
        socket.write(
          `POST /probe/stream-reader HTTP/1.1\r\nHost: 127.0.0.1\r\nIdempotency-Key: ${key}\r\n` +
            `Content-Type: ${UNPARSED_MEDIA_TYPE}\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`,
        );
        while (running.runs.count('arrived-streamReader') === arrivedBefore) await sleep(5);
        socket.destroy();

        const body = Buffer.from('complete body');
        const retry = await post('/probe/stream-reader', key).set('Content-Type', UNPARSED_MEDIA_TYPE).send(body);
        expect(retry.status).toBe(201);
        expectFresh(retry);
        expect(json(retry)).toMatchObject({ run: before + 1, length: body.length });
        expect(running.runs.count('stream-reader')).toBe(before + 1);
        expect(claims.claims).toHaveLength(1);
      } finally {
        claims.stop();
      }
    });
  });

  describe('exact bodies without rawBody', () => {
    let running: RunningProbeApp;
    const warnings = new WarningLog();

    beforeAll(async () => {
      running = await startProbeApp({ database, platform, suite: 'fingerprint_parsed', rawBody: false, logger: warnings });
    });

    afterAll(async () => {
      await running?.close();
    });

    const postJson = (key: string, text: string) =>
      bytes(request(running.server).post('/probe/echo').set('Idempotency-Key', key)).set('Content-Type', 'application/json').send(text);

    it('warns once at start-up that raw bodies are off, naming the fix (R7)', () => {
      const lines = warnings.warnings.filter((line) => line.includes('rawBody'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('NestFactory.create(AppModule, { rawBody: true })');
    });

    it('still answers 422 to -1e400 under a key first used with null (R7, R10)', async () => {
      const key = randomUUID();
      const before = running.runs.count('echo');
      expect((await postJson(key, '{"datastreamId":5,"processingMs":null}')).status).toBe(201);
      expectReuseRefusal(await postJson(key, '{"datastreamId":5,"processingMs":-1e400}'));
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
