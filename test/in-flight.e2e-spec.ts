import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { PLATFORM_MATRIX, startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { queryRows } from './support/test-database.js';

/**
 * Resolves once the first request has claimed `key`, so the retry is sent while it is really in
 * flight (what the test observes is the database, not a guess at how long the handler takes).
 */
async function claimed(dataSource: DataSource, key: string): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const rows = (await queryRows(dataSource, 
      "SELECT COUNT(*) AS n FROM idempotency_records WHERE idempotency_key = ? AND state = 'in_flight'",
      [key],
    )) as Array<{ n: string | number }>;
    if (Number(rows[0].n) === 1) return;
    await sleep(10);
  }
  throw new Error(`no in-flight claim for ${key} appeared`);
}

/** Listens once, so that concurrent supertest requests share one server instead of each starting it. */
function listening(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

describe.each(PLATFORM_MATRIX)('in-flight retries on the payments API on %s with %s', (database, platform) => {
  let payments: RunningPaymentsApp;

  beforeAll(async () => {
    payments = await startPaymentsApp(database, platform, 'in_flight');
    await listening(payments.server);
  });

  afterAll(async () => {
    await payments?.close();
  });

  async function exportCount(): Promise<number> {
    const [row] = (await queryRows(payments.dataSource, 'SELECT COUNT(*) AS n FROM export_jobs')) as Array<{ n: string | number }>;
    return Number(row.n);
  }

  it('makes a retry wait for the first request and answers it with the replay of the first (R11, R9)', async () => {
    const key = randomUUID();
    const before = await exportCount();
    const send = () =>
      request(payments.server)
        .post('/v1/exports')
        .set('X-Api-Key', 'key-acme')
        .set('Idempotency-Key', key)
        .send({ datastreamId: 1, processingMs: 1200 });

    let firstAnswered = false;
    const first = send().then((response) => {
      firstAnswered = true;
      return response;
    });
    await claimed(payments.dataSource, key);
    expect(firstAnswered).toBe(false);
    const retry = await send();
    const original = await first;

    expect(original.status).toBe(202);
    expect(original.headers['idempotency-replayed']).toBeUndefined();
    expect(retry.status).toBe(202);
    expect(retry.headers['idempotency-replayed']).toBe('true');
    expect(retry.text).toBe(original.text);
    expect(await exportCount()).toBe(before + 1);
  });
});

// Runs after the block above has closed its app and dropped its database, so both use the suite's one name.
describe.each(PLATFORM_MATRIX)('in-flight retries on the probe app on %s with %s', (database, platform) => {
  let probe: RunningProbeApp;

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform, suite: 'in_flight' });
    await listening(probe.server);
  });

  afterAll(async () => {
    await probe?.close();
  });

  it('answers a retry still waiting when inFlightWaitMs runs out with 409 idempotency_conflict and Retry-After, then replays once done (R11, R16a)', async () => {
    const key = randomUUID();
    const send = () =>
      request(probe.server).post('/probe/slow').set('X-Account', 'acct-in-flight').set('Idempotency-Key', key).send({ ms: 1500 });

    let firstAnswered = false;
    const first = send().then((response) => {
      firstAnswered = true;
      return response;
    });
    await claimed(probe.dataSource, key);
    expect(firstAnswered).toBe(false);
    const conflict = await send();
    expect(conflict.status).toBe(409);
    expect(conflict.body).toEqual({ error: { code: 'idempotency_conflict', message: expect.any(String) } });
    expect(conflict.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(conflict.headers['idempotency-replayed']).toBeUndefined();

    const original = await first;
    expect(original.status).toBe(201);
    expect(original.headers['idempotency-replayed']).toBeUndefined();
    const replay = await send();
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(original.text);
    expect(probe.runs.count('slow')).toBe(1);
  });
});
