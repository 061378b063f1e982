import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from '@jest/globals';
import { type AppProcess, codeOf, eventually, type RawAnswer, send, startAppProcess } from './support/app-process.js';
import { connectSql, countRows, type SqlClient } from './support/sql-client.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/test-database.js';
import { paymentWrittenUncommitted } from './support/uncommitted-writes.js';

/** Two instances of the built app on one fresh database, torn down after each test. */
interface Pair {
  readonly doomed: AppProcess;
  readonly survivor: AppProcess;
  /** Reads what is committed, as any client would. */
  readonly sql: SqlClient;
  /** Looks into transactions still open (see paymentWrittenUncommitted). */
  readonly dirty: SqlClient;
}

let database: TestDatabase | undefined;
let running: Pair | undefined;

async function startPair(kind: DatabaseKind, name: string, env: Record<string, string>): Promise<Pair> {
  database = await createTestDatabase(kind, name);
  const fullEnv = {
    DATABASE_URL: database.databaseUrl ?? '',
    IDEMPOTENCY_LOCK_TIMEOUT_MS: '2000',
    IDEMPOTENCY_IN_FLIGHT_WAIT_MS: '200',
    ...env,
  };
  // The first instance runs the migrations; the second starts once the tables exist.
  const doomed = await startAppProcess(fullEnv);
  const survivor = await startAppProcess(fullEnv);
  const sql = await connectSql(database.databaseUrl ?? '');
  const dirty = await connectSql(database.databaseUrl ?? '');
  running = { doomed, survivor, sql, dirty };
  return running;
}

afterEach(async () => {
  await Promise.all([running?.doomed.stop(), running?.survivor.stop()]);
  await running?.sql.end();
  await running?.dirty.end();
  await database?.drop();
  running = undefined;
  database = undefined;
});

function paymentsOf(sql: SqlClient, customerId: string): Promise<number> {
  return countRows(sql, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [customerId]);
}

async function paymentIdsOf(sql: SqlClient, customerId: string): Promise<string[]> {
  const rows = await sql.rows<{ id: string }>('SELECT id FROM payments WHERE customer_id = ?', [customerId]);
  return rows.map((row) => row.id);
}

function claimOf(sql: SqlClient, key: string): Promise<string | undefined> {
  return sql
    .rows<{ state: string }>('SELECT state FROM idempotency_records WHERE idempotency_key = ?', [key])
    .then((rows) => rows[0]?.state);
}

function slowPayment() {
  return { amount: 4200, currency: 'EUR', customerId: `cus_${randomUUID().replaceAll('-', '')}`, processingMs: 4000 };
}

/** Sends without waiting for the answer; the promise never rejects (a killed server ends it). */
function sendInBackground(url: string, key: string, body: unknown): Promise<RawAnswer | Error> {
  return send(url, 'POST', '/v1/payments', { key, body }).catch((error: unknown) => error as Error);
}

/** Retries on `instance` until it answers 201; returns every answer, the 201 last. */
async function retryUntilCreated(instance: AppProcess, key: string, body: unknown): Promise<RawAnswer[]> {
  const answers: RawAnswer[] = [];
  await eventually(async () => {
    const answer = await send(instance.url, 'POST', '/v1/payments', { key, body });
    answers.push(answer);
    return answer.status === 201 ? answer : undefined;
  }, 40, 250);
  return answers;
}

describe.each(['mariadb', 'postgres'] as const)('atomic mode on %s when the process running a payment dies before the commit', (kind) => {
  it('atomic mode: a payment written but not committed when its process is killed -9 leaves nothing behind, so a retry elsewhere right after the crash runs it at once, exactly once, and replays afterwards (R20, R22a)', async () => {
    const pair = await startPair(kind, 'atomic_crash', {});
    const { doomed, survivor, sql } = pair;
    const key = randomUUID();
    const body = slowPayment();
    void sendInBackground(doomed.url, key, body);
    // The handler has inserted the payment, inside the transaction that holds the claim too.
    await eventually(async () => ((await paymentWrittenUncommitted(pair.dirty, body.customerId)) ? true : undefined));
    // One commit for everything (R22a): neither the claim nor the payment is visible yet.
    expect(await claimOf(sql, key)).toBeUndefined();
    expect(await paymentsOf(sql, body.customerId)).toBe(0);

    doomed.signal('SIGKILL');
    await doomed.exited();
    // No lease (2 s here) to wait out: the database rolled the transaction back when the connection
    // dropped, so the very first retry runs the payment.
    const created = await send(survivor.url, 'POST', '/v1/payments', { key, body });

    expect(created.status).toBe(201);
    expect(created.headers.get('idempotency-replayed')).toBeNull();
    const ids = await paymentIdsOf(sql, body.customerId);
    expect(ids).toEqual([(JSON.parse(created.body.toString()) as { id: string }).id]);

    const replay = await send(survivor.url, 'POST', '/v1/payments', { key, body });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotency-replayed')).toBe('true');
    expect(replay.body.equals(created.body)).toBe(true);
    expect(await paymentsOf(sql, body.customerId)).toBe(1);
  }, 60_000);

  it('atomic mode: a live owner slower than its lease keeps its session, renewed inside its transaction, and commits once (R20, R22a)', async () => {
    // Lease 1 s, so the database ends a session idle in its transaction for 1 s; the handler takes 3 s.
    const { doomed: owner, sql } = await startPair(kind, 'atomic_slow_owner', { IDEMPOTENCY_LOCK_TIMEOUT_MS: '1000' });
    const key = randomUUID();
    const body = { ...slowPayment(), processingMs: 3000 };

    const created = await send(owner.url, 'POST', '/v1/payments', { key, body });

    expect(created.status).toBe(201);
    expect(created.headers.get('idempotency-replayed')).toBeNull();
    expect(await paymentsOf(sql, body.customerId)).toBe(1);
    const replay = await send(owner.url, 'POST', '/v1/payments', { key, body });
    expect(replay.headers.get('idempotency-replayed')).toBe('true');
    expect(replay.body.equals(created.body)).toBe(true);
  }, 60_000);

  it('without atomic mode (IDEMPOTENCY_ATOMIC=off): a payment committed before its process is killed -9 stays, so the retry elsewhere after the lease leaves two payments, the duplicate atomic mode prevents (R20, R22)', async () => {
    const { doomed, survivor, sql } = await startPair(kind, 'atomic_crash_plain', { IDEMPOTENCY_ATOMIC: 'off' });
    const key = randomUUID();
    const body = slowPayment();
    void sendInBackground(doomed.url, key, body);
    await eventually(() => claimOf(sql, key));
    // Plain mode: the insert commits on its own, while the handler is still running.
    await eventually(async () => ((await paymentsOf(sql, body.customerId)) === 1 ? true : undefined));
    const [crashedWrite] = await paymentIdsOf(sql, body.customerId);

    doomed.signal('SIGKILL');
    await doomed.exited();
    const answers = await retryUntilCreated(survivor, key, body);

    const created = answers[answers.length - 1];
    expect(answers.slice(0, -1).map((answer) => [answer.status, codeOf(answer)])).toEqual(
      answers.slice(0, -1).map(() => [409, 'idempotency_conflict']),
    );
    expect(created.headers.get('idempotency-replayed')).toBeNull();
    const retriedId = (JSON.parse(created.body.toString()) as { id: string }).id;
    expect(retriedId).not.toBe(crashedWrite);
    expect((await paymentIdsOf(sql, body.customerId)).sort()).toEqual([crashedWrite, retriedId].sort());
  }, 60_000);
});
