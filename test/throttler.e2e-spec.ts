import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AppProcess, codeOf, eventually, type RawAnswer, send, startAppProcess } from './support/app-process.js';

// @nestjs/throttler is CommonJS and requires the ESM-only @nestjs/common, so Jest cannot load it:
// these tests talk to the built example API (`npm run build` first), where main.ts adds the limit.
const LIMIT = 5;
// One account per test, so that each test starts with a full budget of its own.
const ACCOUNTS = ['replays', 'in-flight', 'reuse', 'no-key', 'first', 'second', 'released', 'graphql'] as const;
type Account = (typeof ACCOUNTS)[number];
const API_KEYS = ACCOUNTS.map((account) => `key-${account}:${account}`).join(',');

interface PaymentBody {
  readonly amount: number;
  readonly currency: string;
  readonly customerId: string;
  readonly processingMs?: number;
}

function paymentBody(customerId: string, extra: Partial<PaymentBody> = {}): PaymentBody {
  return { amount: 1250, currency: 'EUR', customerId, ...extra };
}

function pay(app: AppProcess, account: Account, key: string | undefined, body: PaymentBody): Promise<RawAnswer> {
  return send(app.url, 'POST', '/v1/payments', { apiKey: `key-${account}`, key, body });
}

/** Sends fresh payments (new key, new customer) one after another; returns their statuses. */
async function freshPayments(app: AppProcess, account: Account, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    statuses.push((await pay(app, account, randomUUID(), paymentBody(`cus_${randomUUID()}`))).status);
  }
  return statuses;
}

interface MutationAnswer {
  readonly data?: { createPayment: { id: string } } | null;
  readonly errors?: readonly { extensions?: Record<string, unknown> }[];
  readonly replayed: string | null;
}

/** The createPayment mutation over GraphQL, for the 'graphql' account. */
async function createPayment(app: AppProcess, key: string, input: PaymentBody): Promise<MutationAnswer> {
  const response = await fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Api-Key': 'key-graphql', 'Idempotency-Key': key },
    body: JSON.stringify({
      query: 'mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id customerId } }',
      variables: { input },
    }),
  });
  return { ...((await response.json()) as Omit<MutationAnswer, 'replayed'>), replayed: response.headers.get('idempotency-replayed') };
}

function expectRateLimited(answer: RawAnswer): void {
  expect(answer.status).toBe(429);
  expect(JSON.parse(answer.body.toString())).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
  const retryAfter = Number(answer.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter > 0).toBe(true);
  expect(answer.headers.get('idempotency-replayed')).toBeNull();
}

describe.each(['express', 'fastify'] as const)(
  `POST /v1/payments limited to ${LIMIT} per account by @nestjs/throttler, in the built app on %s and SQLite (R24)`,
  (platform) => {
    let folder: string;
    let app: AppProcess;
    // A one-request budget over 1.5 s: short enough to wait for the limit to reset.
    let shortWindow: AppProcess;

    beforeAll(async () => {
      folder = mkdtempSync(join(tmpdir(), `idempotency-throttler-${platform}-`));
      const env = { HTTP_PLATFORM: platform, API_KEYS };
      [app, shortWindow] = await Promise.all([
        startAppProcess({ ...env, SQLITE_PATH: join(folder, 'limited.sqlite'), RATE_LIMIT_PER_MINUTE: String(LIMIT) }),
        startAppProcess({
          ...env,
          SQLITE_PATH: join(folder, 'short-window.sqlite'),
          RATE_LIMIT_PER_MINUTE: '1',
          RATE_LIMIT_WINDOW_MS: '1500',
        }),
      ]);
    }, 60_000);

    afterAll(async () => {
      await Promise.all([app?.stop(), shortWindow?.stop()]);
      rmSync(folder, { recursive: true, force: true });
    });

    it(`charges the first createPayment mutation but none of its 20 replays over GraphQL; ${LIMIT - 1} more fit, the next is refused with rate_limited, and a replay still passes then (R24, R23)`, async () => {
      const key = randomUUID();
      const input = paymentBody(`cus_${randomUUID()}`);
      const first = await createPayment(app, key, input);
      expect(first.errors).toBeUndefined();
      expect(first.replayed).toBeNull();

      const replays = await Promise.all(Array.from({ length: 20 }, () => createPayment(app, key, input)));
      for (const replay of replays) expect(replay).toEqual({ data: first.data, replayed: 'true' });

      for (let i = 0; i < LIMIT - 1; i++) {
        expect((await createPayment(app, randomUUID(), paymentBody(`cus_${randomUUID()}`))).errors).toBeUndefined();
      }
      const limited = await createPayment(app, randomUUID(), paymentBody(`cus_${randomUUID()}`));
      expect(limited.data).toBeNull();
      expect(limited.errors?.[0]?.extensions).toMatchObject({ code: 'rate_limited', status: 429 });

      expect(await createPayment(app, key, input)).toEqual({ data: first.data, replayed: 'true' });
    });

    it(`charges the first payment but none of its 20 replays, which are all 201 and byte-identical; ${LIMIT - 1} more fresh payments fit, the next gets 429 rate_limited with Retry-After, and a replay still passes then (R24, R9)`, async () => {
      const key = randomUUID();
      const body = paymentBody(`cus_${randomUUID()}`);
      const first = await pay(app, 'replays', key, body);
      expect(first.status).toBe(201);
      expect(first.headers.get('idempotency-replayed')).toBeNull();

      const replays = await Promise.all(Array.from({ length: 20 }, () => pay(app, 'replays', key, body)));
      for (const replay of replays) {
        expect(replay.status).toBe(201);
        expect(replay.headers.get('idempotency-replayed')).toBe('true');
        expect(replay.body.equals(first.body)).toBe(true);
      }

      expect(await freshPayments(app, 'replays', LIMIT - 1)).toEqual(Array(LIMIT - 1).fill(201));
      expectRateLimited(await pay(app, 'replays', randomUUID(), paymentBody(`cus_${randomUUID()}`)));

      const afterLimit = await pay(app, 'replays', key, body);
      expect(afterLimit.status).toBe(201);
      expect(afterLimit.headers.get('idempotency-replayed')).toBe('true');
      expect(afterLimit.body.equals(first.body)).toBe(true);
    });

    it('does not charge retries that arrive while the first request is in flight and end in its replay (R24, R11)', async () => {
      const key = randomUUID();
      const customerId = `cus_${randomUUID()}`;
      // The handler writes the payment, then holds the request for processingMs.
      const body = paymentBody(customerId, { processingMs: 1500 });
      const first = pay(app, 'in-flight', key, body);
      // Once the payment is written, the key is claimed and in flight.
      await eventually(async () => {
        const list = await send(app.url, 'GET', '/v1/payments', { apiKey: 'key-in-flight' });
        const payments = (JSON.parse(list.body.toString()) as { data: Array<{ customerId: string }> }).data;
        return payments.some((payment) => payment.customerId === customerId) ? true : undefined;
      }, 100, 50);

      const retries = await Promise.all(Array.from({ length: 4 }, () => pay(app, 'in-flight', key, body)));
      const original = await first;
      expect(original.status).toBe(201);
      for (const retry of retries) {
        expect(retry.status).toBe(201);
        expect(retry.headers.get('idempotency-replayed')).toBe('true');
        expect(retry.body.equals(original.body)).toBe(true);
      }

      // Only the first request was charged: the rest of the budget is intact.
      expect(await freshPayments(app, 'in-flight', LIMIT - 1)).toEqual(Array(LIMIT - 1).fill(201));
      expectRateLimited(await pay(app, 'in-flight', randomUUID(), paymentBody(`cus_${randomUUID()}`)));
    });

    it('charges a reused key sent with another body, which is answered 422 idempotency_key_reuse (R24, R10)', async () => {
      const key = randomUUID();
      expect((await pay(app, 'reuse', key, paymentBody(`cus_${randomUUID()}`))).status).toBe(201);
      for (let i = 0; i < 2; i++) {
        const reused = await pay(app, 'reuse', key, paymentBody(`cus_${randomUUID()}`));
        expect([reused.status, codeOf(reused)]).toEqual([422, 'idempotency_key_reuse']);
      }

      // 1 payment + 2 mismatches charged: LIMIT - 3 fresh payments left.
      expect(await freshPayments(app, 'reuse', LIMIT - 3)).toEqual(Array(LIMIT - 3).fill(201));
      expectRateLimited(await pay(app, 'reuse', randomUUID(), paymentBody(`cus_${randomUUID()}`)));
    });

    it('charges a request without a key or with an invalid one, answered 400 (R24, R2, R3)', async () => {
      const missing = await pay(app, 'no-key', undefined, paymentBody(`cus_${randomUUID()}`));
      expect([missing.status, codeOf(missing)]).toEqual([400, 'idempotency_key_missing']);
      const invalid = await pay(app, 'no-key', 'not-a-uuid', paymentBody(`cus_${randomUUID()}`));
      expect([invalid.status, codeOf(invalid)]).toEqual([400, 'invalid_idempotency_key']);

      expect(await freshPayments(app, 'no-key', LIMIT - 2)).toEqual(Array(LIMIT - 2).fill(201));
      expectRateLimited(await pay(app, 'no-key', undefined, paymentBody(`cus_${randomUUID()}`)));
    });

    it('gives every account a budget of its own: one account at its limit does not limit another (R24, R5)', async () => {
      expect(await freshPayments(app, 'first', LIMIT)).toEqual(Array(LIMIT).fill(201));
      expectRateLimited(await pay(app, 'first', randomUUID(), paymentBody(`cus_${randomUUID()}`)));

      expect(await freshPayments(app, 'second', LIMIT)).toEqual(Array(LIMIT).fill(201));
      expectRateLimited(await pay(app, 'second', randomUUID(), paymentBody(`cus_${randomUUID()}`)));
    });

    it('never stores a 429: the same key, retried once the limit resets, runs fresh and is stored then (R24, R14)', async () => {
      expect((await pay(shortWindow, 'released', randomUUID(), paymentBody(`cus_${randomUUID()}`))).status).toBe(201);
      const key = randomUUID();
      const body = paymentBody(`cus_${randomUUID()}`);
      const limited = await pay(shortWindow, 'released', key, body);
      expectRateLimited(limited);

      // As a retrying client does: wait as long as Retry-After says, then send the same key and body.
      await sleep(Number(limited.headers.get('retry-after')) * 1000 + 200);
      const retried = await pay(shortWindow, 'released', key, body);
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotency-replayed')).toBeNull();
      expect(JSON.parse(retried.body.toString())).toMatchObject({ customerId: body.customerId });

      const replay = await pay(shortWindow, 'released', key, body);
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotency-replayed')).toBe('true');
      expect(replay.body.equals(retried.body)).toBe(true);
    });
  },
);
