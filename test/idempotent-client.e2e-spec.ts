import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { idempotentFetch, IdempotentRequestError, type IdempotentFetchInit, type RetryEvent } from 'nestjs-idempotency/client';
import type { HttpPlatform } from '../src/bootstrap.js';
import { startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';
import { ResponseDroppingProxy } from './support/response-dropping-proxy.js';
import { countOf } from './support/test-database.js';

const acme = { 'X-Api-Key': 'key-acme' };
const PAYMENTS = '/v1/payments';
/** Small backoff, so that a suite of retries stays fast. */
const fastRetries = { baseDelayMs: 20, maxDelayMs: 50 } satisfies IdempotentFetchInit;

function listening(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

function newPayment(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { amount: 4200, currency: 'EUR', customerId: `cus_${randomUUID().slice(0, 8)}`, ...overrides };
}

interface PaymentBody {
  readonly id: string;
  readonly amount: number;
}

describe.each<HttpPlatform>(['express', 'fastify'])('the retry-safe client against the payments API on sqlite with %s', (platform) => {
  let running: RunningPaymentsApp;
  let proxy: ResponseDroppingProxy;
  let direct: string;

  beforeAll(async () => {
    running = await startPaymentsApp('sqlite', platform, 'client_retries');
    await listening(running.server);
    const { port } = running.server.address() as AddressInfo;
    direct = `http://127.0.0.1:${port}`;
    proxy = await ResponseDroppingProxy.start(port);
  });

  afterEach(() => {
    proxy?.behave();
  });

  afterAll(async () => {
    await proxy?.stop();
    await running?.close();
  });

  const paymentCount = () => countOf(running.dataSource, 'SELECT COUNT(*) AS n FROM payments');
  const pay = (init: IdempotentFetchInit) => idempotentFetch(`${proxy.url}${PAYMENTS}`, { headers: acme, ...fastRetries, ...init });

  /** Resolves once the first request has claimed `key`, so the next one is sent while it is really in flight. */
  async function claimed(key: string): Promise<void> {
    const sql = "SELECT COUNT(*) AS n FROM idempotency_records WHERE idempotency_key = ? AND state = 'in_flight'";
    for (let poll = 0; poll < 500; poll++) {
      if ((await countOf(running.dataSource, sql, [key])) === 1) return;
      await sleep(10);
    }
    throw new Error(`no in-flight claim for ${key} appeared`);
  }

  async function fetchPayment(id: string): Promise<Response> {
    return fetch(`${direct}${PAYMENTS}/${id}`, { headers: acme });
  }

  it('retries a dropped response with the same key and body and gets the replay (R28, R9)', async () => {
    const before = await paymentCount();
    proxy.dropResponses(PAYMENTS, 2);
    const retries: RetryEvent[] = [];

    const result = await pay({ json: newPayment(), onRetry: (event) => retries.push(event) });

    expect(result.attempts).toBe(3);
    expect(result.replayed).toBe(true);
    expect(result.response.status).toBe(201);
    const payment = (await result.response.json()) as PaymentBody;
    expect(result.response.headers.get('location')).toBe(`${PAYMENTS}/${payment.id}`);
    // fetch's own network error (from Node's realm, so matched by name): the socket closed with no answer.
    expect(retries.map((retry) => retry.error)).toEqual([
      expect.objectContaining({ name: 'TypeError', message: 'fetch failed' }),
      expect.objectContaining({ name: 'TypeError', message: 'fetch failed' }),
    ]);

    const sent = proxy.requestsWithKey(result.idempotencyKey, PAYMENTS);
    expect(sent.map((request) => request.fate)).toEqual(['dropped', 'dropped', 'delivered']);
    expect(sent.map((request) => request.status)).toEqual([201, 201, 201]);
    expect(new Set(sent.map((request) => request.body.toString('hex'))).size).toBe(1);

    expect(await paymentCount()).toBe(before + 1);
    const stored = await fetchPayment(payment.id);
    expect(stored.status).toBe(200);
    expect(((await stored.json()) as PaymentBody).id).toBe(payment.id);
  });

  it('answers a reused key with another body with its 422 at once, never retrying it (R28, R10)', async () => {
    const key = randomUUID();
    const first = await pay({ idempotencyKey: key, json: newPayment() });
    expect(first.response.status).toBe(201);

    const reuse = await pay({ idempotencyKey: key, json: newPayment({ amount: 9900 }) });

    expect(reuse.response.status).toBe(422);
    expect(((await reuse.response.json()) as { error: { code: string } }).error.code).toBe('idempotency_key_reuse');
    expect(reuse.attempts).toBe(1);
    expect(reuse.replayed).toBe(false);
    expect(proxy.requestsWithKey(key, PAYMENTS)).toHaveLength(2);
  });

  it('answers a 400 at once, never retrying it, whether the body or the key is wrong (R28, R3, R14)', async () => {
    const before = await paymentCount();
    const invalidBody = await pay({ json: newPayment({ amount: -1 }) });
    expect(invalidBody.response.status).toBe(400);
    expect(invalidBody.attempts).toBe(1);
    expect(proxy.requestsWithKey(invalidBody.idempotencyKey, PAYMENTS)).toHaveLength(1);

    const invalidKey = await pay({ idempotencyKey: 'not-a-uuid', json: newPayment() });
    expect(invalidKey.response.status).toBe(400);
    expect(((await invalidKey.response.json()) as { error: { code: string } }).error.code).toBe('invalid_idempotency_key');
    expect(invalidKey.attempts).toBe(1);
    expect(proxy.requestsWithKey('not-a-uuid', PAYMENTS)).toHaveLength(1);
    expect(await paymentCount()).toBe(before);
  });

  it('retries a 409 while the first request is in flight, honouring Retry-After, until the replay arrives (R28, R11, R9)', async () => {
    const before = await paymentCount();
    const key = randomUUID();
    // Longer than the server's in-flight wait (3 s by default), so the retry's first attempt gets 409 Retry-After: 3.
    const body = newPayment({ processingMs: 4_500 });
    const first = fetch(`${direct}${PAYMENTS}`, {
      method: 'POST',
      headers: { ...acme, 'Idempotency-Key': key, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    await claimed(key);
    const retries: RetryEvent[] = [];

    // Same key and body; the hasty call's budget cannot fit the wait Retry-After asks for, the patient one's can.
    const [patient, hasty] = await Promise.all([
      pay({ idempotencyKey: key, json: body, attemptTimeoutMs: 5_000, timeoutMs: 15_000, onRetry: (event) => retries.push(event) }),
      pay({ idempotencyKey: key, json: body, attemptTimeoutMs: 5_000, timeoutMs: 4_000 }),
    ]);
    const original = await first;

    expect(original.status).toBe(201);
    expect(original.headers.get('idempotency-replayed')).toBeNull();
    expect(retries).toEqual([{ attempt: 1, delayMs: expect.any(Number), idempotencyKey: key, status: 409 }]);
    expect(retries[0].delayMs).toBeGreaterThanOrEqual(3_000);
    expect(patient.attempts).toBe(2);
    expect(patient.replayed).toBe(true);
    expect(patient.response.status).toBe(201);
    expect(await patient.response.text()).toBe(await original.text());

    expect(hasty.attempts).toBe(1);
    expect(hasty.replayed).toBe(false);
    expect(hasty.response.status).toBe(409);
    expect(hasty.response.headers.get('retry-after')).toBe('3');
    expect(((await hasty.response.json()) as { error: { code: string } }).error.code).toBe('idempotency_conflict');

    expect(await paymentCount()).toBe(before + 1);
  });

  it('aborts an attempt slower than attemptTimeoutMs and gets the replay on the next one (R28, R9)', async () => {
    const before = await paymentCount();
    proxy.delayResponses(PAYMENTS, 1, 3_000);
    const retries: RetryEvent[] = [];

    const result = await pay({ json: newPayment(), attemptTimeoutMs: 400, onRetry: (event) => retries.push(event) });

    expect(result.attempts).toBe(2);
    expect(result.replayed).toBe(true);
    expect(result.response.status).toBe(201);
    expect(retries[0].error).toMatchObject({ name: 'TimeoutError' });
    expect(proxy.requestsWithKey(result.idempotencyKey, PAYMENTS).map((request) => request.fate)).toEqual(['delayed', 'delivered']);
    expect(await paymentCount()).toBe(before + 1);
    const payment = (await result.response.json()) as PaymentBody;
    expect((await fetchPayment(payment.id)).status).toBe(200);
  });

  it('gives up after the time budget with an error carrying the key and the attempts, and that key later gets the replay (R28, R9)', async () => {
    const before = await paymentCount();
    proxy.dropResponses(PAYMENTS, 1_000);
    const body = newPayment();
    const started = Date.now();

    const error = await pay({ json: body, timeoutMs: 600, maxAttempts: Infinity }).catch((thrown: unknown) => thrown);

    expect(error).toBeInstanceOf(IdempotentRequestError);
    const gaveUp = error as IdempotentRequestError;
    expect(gaveUp.reason).toBe('time');
    expect(gaveUp.attempts).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(3_000);
    // Every attempt reached the server with the one key, but possibly the last: the budget can end
    // it before its body is through the proxy.
    const seen = proxy.requestsWithKey(gaveUp.idempotencyKey, PAYMENTS).length;
    expect(seen).toBeGreaterThanOrEqual(gaveUp.attempts - 1);
    expect(seen).toBeLessThanOrEqual(gaveUp.attempts);
    expect(await paymentCount()).toBe(before + 1);

    proxy.behave();
    const later = await pay({ idempotencyKey: gaveUp.idempotencyKey, json: body });
    expect(later.attempts).toBe(1);
    expect(later.replayed).toBe(true);
    expect(later.response.status).toBe(201);
    const payment = (await later.response.json()) as PaymentBody;
    expect((await fetchPayment(payment.id)).status).toBe(200);
    expect(await paymentCount()).toBe(before + 1);
  });
});
