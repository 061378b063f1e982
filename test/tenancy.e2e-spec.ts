import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { queryRows, type DatabaseKind } from './support/test-database.js';
import { PLATFORM_MATRIX, startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';

type SentResponse = Awaited<request.Test>;

const DUPLICATE_KEY_CODE: Record<DatabaseKind, string> = {
  mariadb: 'ER_DUP_ENTRY',
  postgres: '23505',
  sqlite: 'SQLITE_CONSTRAINT_PRIMARYKEY',
};

function expectFresh(response: SentResponse): void {
  expect(response.headers['idempotency-replayed']).toBeUndefined();
}

function expectReplayOf(replay: SentResponse, original: SentResponse): void {
  expect(replay.status).toBe(original.status);
  expect(replay.headers['idempotency-replayed']).toBe('true');
  expect(replay.text).toBe(original.text);
}

async function recordAccounts(dataSource: DataSource, key: string): Promise<string[]> {
  const rows = (await queryRows(dataSource, 'SELECT account FROM idempotency_records WHERE idempotency_key = ? ORDER BY account', [
    key,
  ])) as Array<{ account: string }>;
  return rows.map((row) => row.account);
}

/** Inserts a second row for (account, key) behind the library's back; the database must refuse it. */
async function insertDuplicateRecord(dataSource: DataSource, account: string, key: string): Promise<void> {
  await queryRows(dataSource, 
    'INSERT INTO idempotency_records (account, idempotency_key, fingerprint, state, owner_token, route, lease_expires_at, expires_at, created_at) ' +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [account, key, 'f'.repeat(64), 'in_flight', randomUUID(), 'POST /raw-sql', 0, Date.now() + 60_000, Date.now()],
  );
}

async function expectDuplicateKeyError(kind: DatabaseKind, insert: Promise<void>): Promise<void> {
  await expect(insert).rejects.toMatchObject({ code: DUPLICATE_KEY_CODE[kind] });
}

describe.each(PLATFORM_MATRIX)('tenancy with the probe app on %s with %s', (database, platform) => {
  let running: RunningProbeApp;

  beforeAll(async () => {
    running = await startProbeApp({ database, platform, suite: 'tenancy' });
  });

  afterAll(async () => {
    await running?.close();
  });

  const whoami = (key: string, account?: string) => {
    const test = request(running.server).post('/probe/whoami').set('Idempotency-Key', key);
    return account === undefined ? test.send({ amount: 100 }) : test.set('X-Account', account).send({ amount: 100 });
  };

  it('runs the handler once per account for one key, and replays each account its own response (R5)', async () => {
    const key = randomUUID();
    const acmeBefore = running.runs.count('whoami-acme');
    const globexBefore = running.runs.count('whoami-globex');

    const acme = await whoami(key, 'acme');
    const globex = await whoami(key, 'globex');
    expect(acme.status).toBe(201);
    expect(globex.status).toBe(201);
    expectFresh(acme);
    expectFresh(globex);
    expect(acme.body.account).toBe('acme');
    expect(globex.body.account).toBe('globex');

    const acmeReplay = await whoami(key, 'acme');
    const globexReplay = await whoami(key, 'globex');
    expectReplayOf(acmeReplay, acme);
    expectReplayOf(globexReplay, globex);
    expect(globexReplay.text).not.toBe(acme.text);
    expect(acmeReplay.text).not.toBe(globex.text);

    expectReplayOf(await whoami(key, 'acme'), acme);
    expect(running.runs.count('whoami-acme')).toBe(acmeBefore + 1);
    expect(running.runs.count('whoami-globex')).toBe(globexBefore + 1);
  });

  it('stores one record per (account, key) and the database refuses a second row for the same pair (R6)', async () => {
    const key = randomUUID();
    await whoami(key, 'acme').expect(201);
    await whoami(key, 'globex').expect(201);
    await whoami(key, 'acme').expect(201);
    expect(await recordAccounts(running.dataSource, key)).toEqual(['acme', 'globex']);

    await expectDuplicateKeyError(database, insertDuplicateRecord(running.dataSource, 'acme', key));
    expect(await recordAccounts(running.dataSource, key)).toEqual(['acme', 'globex']);
  });

  it('puts requests without an account in one shared anonymous scope, apart from every account (R5)', async () => {
    const key = randomUUID();
    const anonymousBefore = running.runs.count('whoami-anonymous');
    const acmeBefore = running.runs.count('whoami-acme');

    const anonymous = await whoami(key);
    expect(anonymous.status).toBe(201);
    expectFresh(anonymous);
    expect(anonymous.body.account).toBeNull();

    // A second client without an account shares the scope, so it gets the first one's response.
    expectReplayOf(await whoami(key), anonymous);

    const acme = await whoami(key, 'acme');
    expect(acme.status).toBe(201);
    expectFresh(acme);
    expect(acme.body.account).toBe('acme');

    expect(running.runs.count('whoami-anonymous')).toBe(anonymousBefore + 1);
    expect(running.runs.count('whoami-acme')).toBe(acmeBefore + 1);
  });
});

describe.each(PLATFORM_MATRIX)('tenancy with the payments API on %s with %s', (database, platform) => {
  let running: RunningPaymentsApp;

  beforeAll(async () => {
    running = await startPaymentsApp(database, platform, 'tenancy_app');
  });

  afterAll(async () => {
    await running?.close();
  });

  const pay = (apiKey: string, key: string, customerId: string) =>
    request(running.server)
      .post('/v1/payments')
      .set('X-Api-Key', apiKey)
      .set('Idempotency-Key', key)
      .send({ amount: 4200, currency: 'EUR', customerId });

  async function paymentsPerAccount(customerId: string): Promise<Record<string, number>> {
    const rows = (await queryRows(running.dataSource, 
      'SELECT account, COUNT(*) AS n FROM payments WHERE customer_id = ? GROUP BY account',
      [customerId],
    )) as Array<{ account: string; n: string | number }>;
    return Object.fromEntries(rows.map((row) => [row.account, Number(row.n)]));
  }

  it('charges once per account for one key, and replays each account its own payment (R5)', async () => {
    const key = randomUUID();
    const customerId = `cus_${randomUUID()}`;

    const acme = await pay('key-acme', key, customerId);
    const globex = await pay('key-globex', key, customerId);
    expect(acme.status).toBe(201);
    expect(globex.status).toBe(201);
    expectFresh(acme);
    expectFresh(globex);
    expect(globex.body.id).not.toBe(acme.body.id);
    expect(await paymentsPerAccount(customerId)).toEqual({ acme: 1, globex: 1 });

    const globexReplay = await pay('key-globex', key, customerId);
    expectReplayOf(globexReplay, globex);
    expect(globexReplay.headers.location).toBe(`/v1/payments/${globex.body.id}`);
    expect(globexReplay.text).not.toBe(acme.text);

    const acmeReplay = await pay('key-acme', key, customerId);
    expectReplayOf(acmeReplay, acme);
    expect(acmeReplay.headers.location).toBe(`/v1/payments/${acme.body.id}`);
    expect(acmeReplay.text).not.toBe(globex.text);

    expect(await paymentsPerAccount(customerId)).toEqual({ acme: 1, globex: 1 });
  });

  it('keeps one record per (account, key) in the API database and refuses a duplicate row (R6)', async () => {
    const key = randomUUID();
    const customerId = `cus_${randomUUID()}`;
    await pay('key-acme', key, customerId).expect(201);
    await pay('key-globex', key, customerId).expect(201);
    await pay('key-globex', key, customerId).expect(201);
    expect(await recordAccounts(running.dataSource, key)).toEqual(['acme', 'globex']);

    await expectDuplicateKeyError(database, insertDuplicateRecord(running.dataSource, 'globex', key));
    expect(await recordAccounts(running.dataSource, key)).toEqual(['acme', 'globex']);
    expect(await paymentsPerAccount(customerId)).toEqual({ acme: 1, globex: 1 });
  });
});
