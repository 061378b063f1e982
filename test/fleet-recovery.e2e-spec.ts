import { randomInt, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from '@jest/globals';
import { type AppProcess, codeOf, eventually, type RawAnswer, send, startAppProcess } from './support/app-process.js';
import { connectSql, countRows, type SqlClient } from './support/sql-client.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/test-database.js';
import { paymentWrittenUncommitted } from './support/uncommitted-writes.js';

/** Two or more instances of the built app on one fresh database, torn down after each test. */
interface Fleet {
  readonly instances: AppProcess[];
  readonly sql: SqlClient;
}

let database: TestDatabase | undefined;
let running: Fleet | undefined;

async function startFleet(kind: DatabaseKind, name: string, size: number, env: Record<string, string>): Promise<Fleet> {
  database = await createTestDatabase(kind, name);
  const fullEnv = { DATABASE_URL: database.databaseUrl ?? '', ...env };
  const instances = [await startAppProcess(fullEnv)];
  instances.push(...(await Promise.all(Array.from({ length: size - 1 }, () => startAppProcess(fullEnv)))));
  running = { instances, sql: await connectSql(database.databaseUrl ?? '') };
  return running;
}

afterEach(async () => {
  await Promise.all(running?.instances.map((instance) => instance.stop()) ?? []);
  await running?.sql.end();
  await database?.drop();
  running = undefined;
  database = undefined;
});

function exportsOf(sql: SqlClient, datastreamId: number): Promise<number> {
  return countRows(sql, 'SELECT COUNT(*) AS n FROM export_jobs WHERE datastream_id = ?', [datastreamId]);
}

function claimOf(sql: SqlClient, key: string): Promise<string | undefined> {
  return sql
    .rows<{ state: string }>('SELECT state FROM idempotency_records WHERE idempotency_key = ?', [key])
    .then((rows) => rows[0]?.state);
}

function exportRequest(processingMs: number) {
  return { datastreamId: randomInt(1, 2 ** 31), processingMs };
}

/** Sends without waiting for the answer; the promise never rejects (a killed server ends it). */
function sendInBackground(url: string, key: string, body: unknown): Promise<RawAnswer | Error> {
  return send(url, 'POST', '/v1/exports', { key, body }).catch((error: unknown) => error as Error);
}

describe.each(['mariadb', 'postgres'] as const)('exactly once when instances on %s crash, stall, freeze and restart', (kind) => {
  it('after kill -9 of the instance running a handler, a retry elsewhere gets 409 until the lease ends, then runs it exactly once; a completed request is only ever replayed (R11, R20)', async () => {
    const { instances: [doomed, survivor], sql } = await startFleet(kind, 'fleet_crash', 2, {
      IDEMPOTENCY_LOCK_TIMEOUT_MS: '3000',
      IDEMPOTENCY_IN_FLIGHT_WAIT_MS: '200',
    });
    const completedKey = randomUUID();
    const completedBody = exportRequest(0);
    const completed = await send(doomed.url, 'POST', '/v1/exports', { key: completedKey, body: completedBody });
    expect(completed.status).toBe(202);
    const key = randomUUID();
    const body = exportRequest(2000);
    void sendInBackground(doomed.url, key, body);
    await eventually(() => claimOf(sql, key));

    doomed.signal('SIGKILL');
    await doomed.exited();

    const whileLeased = await send(survivor.url, 'POST', '/v1/exports', { key, body });
    expect([whileLeased.status, codeOf(whileLeased)]).toEqual([409, 'idempotency_conflict']);
    expect(Number(whileLeased.headers.get('retry-after'))).toBeGreaterThan(0);
    const answers: RawAnswer[] = [];
    const executed = await eventually(async () => {
      const answer = await send(survivor.url, 'POST', '/v1/exports', { key, body });
      answers.push(answer);
      return answer.status === 202 ? answer : undefined;
    }, 40, 250);
    expect(executed.headers.get('idempotency-replayed')).toBeNull();
    expect(answers.slice(0, -1).every((answer) => answer.status === 409)).toBe(true);
    expect(await exportsOf(sql, body.datastreamId)).toBe(1);

    const replay = await send(survivor.url, 'POST', '/v1/exports', { key: completedKey, body: completedBody });
    expect(replay.headers.get('idempotency-replayed')).toBe('true');
    expect(replay.body.equals(completed.body)).toBe(true);
    expect(await exportsOf(sql, completedBody.datastreamId)).toBe(1);
  }, 60_000);

  it('keeps the claim of a handler three leases long: retries on other instances never run it again and then get the replay (R20)', async () => {
    const { instances, sql } = await startFleet(kind, 'fleet_slow', 3, {
      IDEMPOTENCY_LOCK_TIMEOUT_MS: '1000',
      IDEMPOTENCY_IN_FLIGHT_WAIT_MS: '200',
    });
    const key = randomUUID();
    const body = exportRequest(3000);
    const first = sendInBackground(instances[0].url, key, body);
    await eventually(() => claimOf(sql, key));

    const during: RawAnswer[] = [];
    while ((await claimOf(sql, key)) === 'in_flight') {
      during.push(await send(instances[1 + (during.length % 2)].url, 'POST', '/v1/exports', { key, body }));
    }
    const original = await first;

    expect(original).not.toBeInstanceOf(Error);
    expect((original as RawAnswer).status).toBe(202);
    expect(during.length).toBeGreaterThan(3);
    for (const answer of during) {
      if (answer.status === 202) expect(answer.headers.get('idempotency-replayed')).toBe('true');
      else expect([answer.status, codeOf(answer)]).toEqual([409, 'idempotency_conflict']);
    }
    const after = await send(instances[2].url, 'POST', '/v1/exports', { key, body });
    expect(after.headers.get('idempotency-replayed')).toBe('true');
    expect(after.body.equals((original as RawAnswer).body)).toBe(true);
    expect(await exportsOf(sql, body.datastreamId)).toBe(1);
  }, 60_000);

  it('fences a frozen owner: after a retry took the key over past the lease, the old owner\'s late completion changes nothing and is logged (R20)', async () => {
    const { instances: [frozen, other], sql } = await startFleet(kind, 'fleet_fencing', 2, {
      IDEMPOTENCY_LOCK_TIMEOUT_MS: '1000',
      IDEMPOTENCY_IN_FLIGHT_WAIT_MS: '200',
    });
    const key = randomUUID();
    const body = exportRequest(1200);
    const late = sendInBackground(frozen.url, key, body);
    await eventually(() => claimOf(sql, key));
    frozen.signal('SIGSTOP');
    await sleep(2500);

    const takeover = await eventually(async () => {
      const answer = await send(other.url, 'POST', '/v1/exports', { key, body });
      return answer.status === 202 ? answer : undefined;
    }, 40, 250);
    expect(takeover.headers.get('idempotency-replayed')).toBeNull();
    frozen.signal('SIGCONT');
    const lateAnswer = await late;

    expect(lateAnswer).not.toBeInstanceOf(Error);
    expect((lateAnswer as RawAnswer).status).toBe(202);
    await eventually(async () => (/lost claim/.test(frozen.output()) ? true : undefined), 50);
    for (const instance of [frozen, other]) {
      const retry = await send(instance.url, 'POST', '/v1/exports', { key, body });
      expect(retry.headers.get('idempotency-replayed')).toBe('true');
      expect(retry.body.equals(takeover.body)).toBe(true);
    }
    // Without atomic mode the frozen handler's own write still happened: the gap the README names.
    expect(await exportsOf(sql, body.datastreamId)).toBe(2);
  }, 60_000);

  it("fences a frozen owner in atomic mode by the database itself: its session ends past the lease, a retry runs once, and when it resumes nothing of it commits and its client gets the winner's answer (R20, R22a)", async () => {
    const { instances: [frozen, other], sql } = await startFleet(kind, 'fleet_fencing_atomic', 2, {
      IDEMPOTENCY_LOCK_TIMEOUT_MS: '1000',
      IDEMPOTENCY_IN_FLIGHT_WAIT_MS: '200',
    });
    const key = randomUUID();
    const customerId = `cus_fenced_${randomUUID().slice(0, 8)}`;
    const body = { amount: 1500, currency: 'EUR', customerId, processingMs: 1200 };
    const late = send(frozen.url, 'POST', '/v1/payments', { key, body }).catch((error: unknown) => error as Error);
    // The claim and the payment are in one open transaction (R22a): seen only from inside the database.
    await eventually(async () => ((await paymentWrittenUncommitted(sql, customerId)) ? true : undefined));
    frozen.signal('SIGSTOP');
    // While the frozen owner's session lives, a retry is told the request is still in flight.
    const early = await send(other.url, 'POST', '/v1/payments', { key, body });
    expect([early.status, codeOf(early)]).toEqual([409, 'idempotency_conflict']);
    await sleep(2500);

    // Its idle transaction outlived the lease: the database ended the session and the key is free.
    const takeover = await send(other.url, 'POST', '/v1/payments', { key, body });
    expect(takeover.status).toBe(201);
    expect(takeover.headers.get('idempotency-replayed')).toBeNull();
    frozen.signal('SIGCONT');
    const lateAnswer = await late;

    expect(lateAnswer).not.toBeInstanceOf(Error);
    expect((lateAnswer as RawAnswer).status).toBe(201);
    expect((lateAnswer as RawAnswer).headers.get('idempotency-replayed')).toBe('true');
    expect((lateAnswer as RawAnswer).body.equals(takeover.body)).toBe(true);
    await eventually(async () => (/lost claim/.test(frozen.output()) ? true : undefined), 50);
    expect(await countRows(sql, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [customerId])).toBe(1);
  }, 60_000);

  it('finishes and stores in-flight requests when an instance gets SIGTERM, so their retries elsewhere are replayed at once (rolling restart)', async () => {
    const { instances: [leaving, staying], sql } = await startFleet(kind, 'fleet_restart', 2, {
      IDEMPOTENCY_IN_FLIGHT_WAIT_MS: '200',
    });
    const requests = Array.from({ length: 3 }, () => ({ key: randomUUID(), body: exportRequest(1500) }));
    const pending = requests.map(({ key, body }) => sendInBackground(leaving.url, key, body));
    for (const { key } of requests) await eventually(() => claimOf(sql, key));

    leaving.signal('SIGTERM');
    const answers = await Promise.all(pending);
    await leaving.exited();

    for (const [index, { key, body }] of requests.entries()) {
      const answer = answers[index];
      expect(answer).not.toBeInstanceOf(Error);
      expect((answer as RawAnswer).status).toBe(202);
      const retry = await send(staying.url, 'POST', '/v1/exports', { key, body });
      expect(retry.status).toBe(202);
      expect(retry.headers.get('idempotency-replayed')).toBe('true');
      expect(retry.body.equals((answer as RawAnswer).body)).toBe(true);
      expect(await exportsOf(sql, body.datastreamId)).toBe(1);
    }
  }, 60_000);
});
