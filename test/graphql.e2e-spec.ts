import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { PLATFORM_MATRIX, startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';
import { connectSql, type SqlClient } from './support/sql-client.js';
import { countOf } from './support/test-database.js';
import { paymentWrittenUncommitted } from './support/uncommitted-writes.js';

const ACME = 'key-acme';
const GLOBEX = 'key-globex';

const CREATE_PAYMENT = `
  mutation Create($input: CreatePaymentInput!) {
    createPayment(input: $input) { id amount currency customerId status createdAt }
  }`;

const PAYMENT = `
  query Payment($id: ID!) {
    payment(id: $id) { id amount currency customerId status createdAt }
  }`;

interface PaymentData {
  readonly id: string;
  readonly amount: number;
  readonly currency: string;
  readonly customerId: string;
  readonly status: string;
  readonly createdAt: string;
}

interface GraphqlError {
  readonly message: string;
  readonly path?: readonly (string | number)[];
  readonly extensions: { readonly code: string; readonly status?: number; readonly retryAfter?: number; readonly [name: string]: unknown };
}

interface GraphqlBody {
  readonly data?: Record<string, PaymentData | null> | null;
  readonly errors?: readonly GraphqlError[];
}

interface Operation {
  readonly query: string;
  readonly variables?: Record<string, unknown>;
  readonly apiKey?: string;
  /** The Idempotency-Key header; none when undefined. */
  readonly key?: string;
}

/** A customer id of the test's own, so the payments it creates can be counted. */
function customer(): string {
  return `cus_gql_${randomUUID().slice(0, 8)}`;
}

function paymentInput(customerId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { amount: 1999, currency: 'EUR', customerId, ...extra };
}

/** Listens once, so that concurrent supertest requests share one server instead of each starting it. */
function listening(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

describe.each(PLATFORM_MATRIX)('GraphQL mutations on %s with %s', (database, platform) => {
  let running: RunningPaymentsApp;
  // MariaDB and PostgreSQL run atomic mode, where a mutation in flight has written nothing
  // committed: a connection of the test's own sees its uncommitted payment.
  let sql: SqlClient | undefined;

  beforeAll(async () => {
    running = await startPaymentsApp(database, platform, 'graphql');
    await listening(running.server);
    if (running.database.databaseUrl) sql = await connectSql(running.database.databaseUrl);
  });

  afterAll(async () => {
    await sql?.end();
    await running?.close();
  });

  async function send({ query, variables, apiKey = ACME, key }: Operation): Promise<{ body: GraphqlBody; replayed: string | undefined }> {
    const call = request(running.server).post('/graphql').set('X-Api-Key', apiKey).set('Content-Type', 'application/json');
    if (key !== undefined) call.set('Idempotency-Key', key);
    const response = await call.send({ query, variables });
    expect(response.status).toBe(200);
    return { body: response.body as GraphqlBody, replayed: response.headers['idempotency-replayed'] as string | undefined };
  }

  function createPayment(input: Record<string, unknown>, key: string | undefined, apiKey = ACME) {
    return send({ query: CREATE_PAYMENT, variables: { input }, key, apiKey });
  }

  function paymentsOf(customerId: string, account?: string): Promise<number> {
    return account === undefined
      ? countOf(running.dataSource, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [customerId])
      : countOf(running.dataSource, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ? AND account = ?', [customerId, account]);
  }

  /**
   * Resolves once a mutation for `customerId` has written its payment and is still running
   * (`processingMs`), so the next request is sent while it is really in flight: what the test
   * observes is the database, not a guess at how long the mutation takes.
   */
  async function inFlight(customerId: string): Promise<void> {
    for (let attempt = 0; attempt < 500; attempt++) {
      if (sql ? await paymentWrittenUncommitted(sql, customerId) : (await paymentsOf(customerId)) === 1) return;
      await sleep(10);
    }
    throw new Error(`no payment of ${customerId} was written`);
  }

  function errorCodes(body: GraphqlBody): string[] {
    return (body.errors ?? []).map((error) => error.extensions.code);
  }

  it('runs a new mutation once and replays its result, dates included, with Idempotency-Replayed: true on the retry only (R8, R9, R13, R23)', async () => {
    const customerId = customer();
    const key = randomUUID();
    const fresh = await createPayment(paymentInput(customerId), key);
    const retry = await createPayment(paymentInput(customerId), key);

    expect(fresh.body.errors).toBeUndefined();
    const created = fresh.body.data!.createPayment!;
    expect(created).toEqual({
      id: expect.stringMatching(/^pay_/),
      amount: 1999,
      currency: 'EUR',
      customerId,
      status: 'succeeded',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(fresh.replayed).toBeUndefined();
    expect(retry.body).toEqual(fresh.body);
    expect(retry.replayed).toBe('true');
    expect(await paymentsOf(customerId)).toBe(1);
  });

  it('refuses another input under a used key with idempotency_key_reuse, at once even while the first is in flight (R10, R23)', async () => {
    const customerId = customer();
    const key = randomUUID();
    const first = createPayment(paymentInput(customerId, { processingMs: 1500 }), key);
    await inFlight(customerId);
    const whileInFlight = await createPayment(paymentInput(customerId, { amount: 5000 }), key);
    const original = await first;
    const afterwards = await createPayment(paymentInput(customerId, { amount: 5000 }), key);

    for (const refused of [whileInFlight, afterwards]) {
      expect(refused.body.data).toBeNull();
      expect(refused.body.errors).toHaveLength(1);
      expect(refused.body.errors![0]).toMatchObject({ path: ['createPayment'], extensions: { code: 'idempotency_key_reuse', status: 422 } });
      expect(refused.replayed).toBeUndefined();
    }
    expect(original.body.errors).toBeUndefined();
    expect(original.body.data!.createPayment!.amount).toBe(1999);
    expect(await paymentsOf(customerId)).toBe(1);
  });

  it('makes a retry of a mutation in flight wait for it and answers with its replay (R11, R9, R23)', async () => {
    const customerId = customer();
    const key = randomUUID();
    const input = paymentInput(customerId, { processingMs: 1200 });
    let firstAnswered = false;
    const first = createPayment(input, key).then((answer) => {
      firstAnswered = true;
      return answer;
    });
    await inFlight(customerId);
    expect(firstAnswered).toBe(false);
    const retry = await createPayment(input, key);
    const original = await first;

    expect(original.body.errors).toBeUndefined();
    expect(original.replayed).toBeUndefined();
    expect(retry.body).toEqual(original.body);
    expect(retry.replayed).toBe('true');
    expect(await paymentsOf(customerId)).toBe(1);
  });

  it('answers a retry still waiting when the wait runs out with idempotency_conflict and retryAfter, then replays once the first is done (R11, R16a, R23)', async () => {
    const customerId = customer();
    const key = randomUUID();
    // Longer than the wait for an in-flight request (inFlightWaitMs, 3 s by default).
    const input = paymentInput(customerId, { processingMs: 5000 });
    const first = createPayment(input, key);
    await inFlight(customerId);
    const conflict = await createPayment(input, key);
    const original = await first;
    const replay = await createPayment(input, key);

    expect(conflict.body.data).toBeNull();
    expect(conflict.body.errors).toHaveLength(1);
    expect(conflict.body.errors![0]).toMatchObject({ path: ['createPayment'], extensions: { code: 'idempotency_conflict', status: 409 } });
    expect(conflict.body.errors![0].extensions.retryAfter).toBeGreaterThan(0);
    expect(conflict.replayed).toBeUndefined();
    expect(original.body.errors).toBeUndefined();
    expect(replay.body).toEqual(original.body);
    expect(replay.replayed).toBe('true');
    expect(await paymentsOf(customerId)).toBe(1);
  });

  it('refuses a mutation without an Idempotency-Key with idempotency_key_missing and does not run it (R2, R23)', async () => {
    const customerId = customer();
    const { body, replayed } = await createPayment(paymentInput(customerId), undefined);

    expect(body.data).toBeNull();
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0]).toMatchObject({ path: ['createPayment'], extensions: { code: 'idempotency_key_missing', status: 400 } });
    expect(replayed).toBeUndefined();
    expect(await paymentsOf(customerId)).toBe(0);
  });

  it('refuses a malformed Idempotency-Key with invalid_idempotency_key and does not run the mutation (R3, R4, R23)', async () => {
    const customerId = customer();
    for (const key of ['not-a-uuid', '']) {
      const { body } = await createPayment(paymentInput(customerId), key);
      expect(body.data).toBeNull();
      expect(errorCodes(body)).toEqual(['invalid_idempotency_key']);
      expect(body.errors![0].extensions.status).toBe(400);
    }
    expect(await paymentsOf(customerId)).toBe(0);
  });

  it('stores a declined card as the answer and replays the same card_declined error with Idempotency-Replayed: true (R14, R9, R13, R23)', async () => {
    const key = randomUUID();
    const input = paymentInput('cus_declined', { amount: 777 });
    const fresh = await createPayment(input, key);
    const retry = await createPayment(input, key);

    expect(fresh.body.data).toBeNull();
    expect(fresh.body.errors).toHaveLength(1);
    expect(fresh.body.errors![0]).toMatchObject({
      message: 'The card was declined.',
      path: ['createPayment'],
      extensions: { code: 'card_declined', status: 402 },
    });
    expect(fresh.replayed).toBeUndefined();
    expect(retry.body.data).toBeNull();
    expect(retry.body.errors![0]).toMatchObject({ message: 'The card was declined.', extensions: { code: 'card_declined', status: 402 } });
    expect(retry.replayed).toBe('true');
    const stored = await countOf(
      running.dataSource,
      // Each field's record is the client's key in the field's own namespace (R7a).
      "SELECT COUNT(*) AS n FROM idempotency_records WHERE idempotency_key = ? AND account LIKE 'graphql:13:createPayment:%' AND state = 'completed'",
      [key],
    );
    expect(stored).toBe(1);
  });

  it('does not store a validation error: the corrected input under the same key runs (R14, R23)', async () => {
    const customerId = customer();
    const key = randomUUID();
    const invalid = await createPayment(paymentInput(customerId, { currency: 'eur' }), key);

    expect(invalid.body.data).toBeNull();
    expect(invalid.body.errors).toHaveLength(1);
    expect(invalid.body.errors![0]).toMatchObject({
      message: 'The request body is invalid.',
      extensions: { code: 'validation_failed', status: 400, details: [{ field: 'currency', problems: ['currency must be 3 upper-case letters'] }] },
    });
    expect(await paymentsOf(customerId)).toBe(0);

    const corrected = await createPayment(paymentInput(customerId), key);
    expect(corrected.body.errors).toBeUndefined();
    expect(corrected.body.data!.createPayment!.currency).toBe('EUR');
    expect(corrected.replayed).toBeUndefined();
    expect(await paymentsOf(customerId)).toBe(1);
  });

  it('scopes keys per account: the same key from two accounts creates two payments (R5, R23)', async () => {
    const customerId = customer();
    const key = randomUUID();
    const acme = await createPayment(paymentInput(customerId), key, ACME);
    const globex = await createPayment(paymentInput(customerId), key, GLOBEX);

    expect(acme.body.errors).toBeUndefined();
    expect(globex.body.errors).toBeUndefined();
    expect(globex.replayed).toBeUndefined();
    expect(globex.body.data!.createPayment!.id).not.toBe(acme.body.data!.createPayment!.id);
    expect(await paymentsOf(customerId, 'acme')).toBe(1);
    expect(await paymentsOf(customerId, 'globex')).toBe(1);
  });

  it('keeps one record per aliased mutation field: two payments, a retry replays both with the header, a new field beside a replayed one gets none (R9, R13, R23)', async () => {
    const customerId = customer();
    const key = randomUUID();
    const fields = (aliases: readonly string[]) => `
      mutation Pair($input: CreatePaymentInput!) {
        ${aliases.map((alias) => `${alias}: createPayment(input: $input) { id amount createdAt }`).join('\n')}
      }`;
    const variables = { input: paymentInput(customerId) };

    const fresh = await send({ query: fields(['first', 'second']), variables, key });
    expect(fresh.body.errors).toBeUndefined();
    expect(fresh.replayed).toBeUndefined();
    expect(fresh.body.data!.first!.id).not.toBe(fresh.body.data!.second!.id);
    expect(await paymentsOf(customerId)).toBe(2);

    const retry = await send({ query: fields(['first', 'second']), variables, key });
    expect(retry.body).toEqual(fresh.body);
    expect(retry.replayed).toBe('true');
    expect(await paymentsOf(customerId)).toBe(2);

    const mixed = await send({ query: fields(['first', 'third']), variables, key });
    expect(mixed.body.errors).toBeUndefined();
    expect(mixed.body.data!.first).toEqual(fresh.body.data!.first);
    expect(mixed.body.data!.third!.id).not.toBe(fresh.body.data!.first!.id);
    expect(mixed.replayed).toBeUndefined();
    expect(await paymentsOf(customerId)).toBe(3);
  });

  it('refuses an operation without a valid X-Api-Key with unauthorized before anything is claimed (R5)', async () => {
    const customerId = customer();
    const key = randomUUID();
    const refused = await createPayment(paymentInput(customerId), key, 'key-unknown');

    expect(refused.body.data).toBeNull();
    expect(refused.body.errors).toHaveLength(1);
    expect(refused.body.errors![0]).toMatchObject({ path: ['createPayment'], extensions: { code: 'unauthorized', status: 401 } });
    const accepted = await createPayment(paymentInput(customerId), key);
    expect(accepted.body.errors).toBeUndefined();
    expect(accepted.replayed).toBeUndefined();
    expect(await paymentsOf(customerId)).toBe(1);
  });

  it("answers payment(id) with the caller's payment and null for another account's (R5)", async () => {
    const customerId = customer();
    const created = await createPayment(paymentInput(customerId), randomUUID(), ACME);
    const payment = created.body.data!.createPayment!;

    const own = await send({ query: PAYMENT, variables: { id: payment.id }, apiKey: ACME });
    const foreign = await send({ query: PAYMENT, variables: { id: payment.id }, apiKey: GLOBEX });

    expect(own.body).toEqual({ data: { payment } });
    expect(foreign.body).toEqual({ data: { payment: null } });
  });
});
