import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AppProcess, codeOf, type RawAnswer, runConcurrently, send, shuffled, startAppProcess } from './support/app-process.js';
import { connectSql, countRows, type SqlClient } from './support/sql-client.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/test-database.js';

const INSTANCES = 4;
const KEYS = 100;
const COPIES = 20;

const DATABASES: readonly DatabaseKind[] = ['mariadb', 'postgres'];

describe.each(DATABASES)(`a fleet of ${INSTANCES} app instances sharing one %s database, POST /v1/payments in atomic mode`, (kind) => {
  let database: TestDatabase;
  let fleet: AppProcess[] = [];
  let sql: SqlClient;

  beforeAll(async () => {
    database = await createTestDatabase(kind, 'fleet_race');
    // This suite is about exactly-once under contention, not about outages: a generous store timeout
    // keeps a CPU-starved moment on a shared two-core machine from turning into a fail-closed 503.
    const env = { DATABASE_URL: database.databaseUrl ?? '', IDEMPOTENCY_STORE_TIMEOUT_MS: '20000' };
    // The first instance runs the migrations; the others start once the tables exist.
    fleet.push(await startAppProcess(env));
    fleet.push(...(await Promise.all(Array.from({ length: INSTANCES - 1 }, () => startAppProcess(env)))));
    sql = await connectSql(database.databaseUrl ?? '');
  }, 60_000);

  afterAll(async () => {
    await Promise.all(fleet.map((instance) => instance.stop()));
    await sql?.end();
    await database?.drop();
  });

  it(`runs each key's handler exactly once under ${KEYS * COPIES} concurrent requests spread over every instance; every 2xx for a key is byte-identical and every other answer is 409 idempotency_conflict (R6, R8, R9, R11, R22)`, async () => {
    const run = randomUUID().slice(0, 8);
    const keys = Array.from({ length: KEYS }, () => randomUUID());
    const tasks = shuffled(
      keys.flatMap((key, index) =>
        Array.from({ length: COPIES }, (_, copy) => async () => ({
          index,
          answer: await send(fleet[(index + copy) % INSTANCES].url, 'POST', '/v1/payments', {
            key,
            body: { amount: 100 + index, currency: 'EUR', customerId: `cus_${run}_${index}` },
          }),
        })),
      ),
    );

    const results = await runConcurrently(tasks, 64);

    const byKey = new Map<number, RawAnswer[]>();
    for (const { index, answer } of results) byKey.set(index, [...(byKey.get(index) ?? []), answer]);
    for (const answers of byKey.values()) {
      const successes = answers.filter((answer) => answer.status >= 200 && answer.status < 300);
      const others = answers.filter((answer) => answer.status < 200 || answer.status >= 300);
      expect(successes.length).toBeGreaterThan(0);
      expect(successes.every((answer) => answer.status === 201 && answer.body.equals(successes[0].body))).toBe(true);
      expect(others.map((answer) => [answer.status, codeOf(answer)])).toEqual(
        others.map(() => [409, 'idempotency_conflict']),
      );
    }
    const counts = await sql.rows<{ customer_id: string; n: number | string }>(
      'SELECT customer_id, COUNT(*) AS n FROM payments WHERE customer_id LIKE ? GROUP BY customer_id',
      [`cus_${run}_%`],
    );
    expect(counts).toHaveLength(KEYS);
    expect(counts.every((row) => Number(row.n) === 1)).toBe(true);
  }, 120_000);

  it('lets exactly one of two bodies sent concurrently with one key execute: every answer with the other body is 422, and the winner still replays afterwards (R10, R16a)', async () => {
    const key = randomUUID();
    const run = randomUUID().slice(0, 8);
    const bodies = [
      { amount: 500, currency: 'EUR', customerId: `cus_${run}_a` },
      { amount: 700, currency: 'USD', customerId: `cus_${run}_b` },
    ];
    const tasks = shuffled(
      Array.from({ length: 40 }, (_, i) => async () => ({
        sent: bodies[i % 2],
        answer: await send(fleet[i % INSTANCES].url, 'POST', '/v1/payments', { key, body: bodies[i % 2] }),
      })),
    );

    const results = await runConcurrently(tasks, 40);

    expect(await countRows(sql, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id LIKE ?', [`cus_${run}_%`])).toBe(1);
    const created = results.filter(({ answer }) => answer.status === 201);
    expect(created.length).toBeGreaterThan(0);
    const winner = created[0];
    expect(JSON.parse(winner.answer.body.toString()).customerId).toBe(winner.sent.customerId);
    for (const { sent, answer } of results) {
      if (sent === winner.sent) {
        expect([201, 409]).toContain(answer.status);
        if (answer.status === 201) expect(answer.body.equals(winner.answer.body)).toBe(true);
      } else {
        expect([answer.status, codeOf(answer)]).toEqual([422, 'idempotency_key_reuse']);
      }
    }
    const replay = await send(fleet[0].url, 'POST', '/v1/payments', { key, body: winner.sent });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotency-replayed')).toBe('true');
    expect(replay.body.equals(winner.answer.body)).toBe(true);
  }, 60_000);
});
