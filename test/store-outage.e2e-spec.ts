import { randomInt, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AppProcess, codeOf, eventually, type RawAnswer, runConcurrently, send, startAppProcess } from './support/app-process.js';
import { connectSql, countRows, type SqlClient } from './support/sql-client.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { paymentWrittenUncommitted } from './support/uncommitted-writes.js';

const LEASE_MS = 2000;

describe.each(['mariadb', 'postgres'] as const)('when the idempotency store on %s cannot be reached (R18)', (kind) => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let app: AppProcess;
  let sql: SqlClient;

  beforeAll(async () => {
    database = await createTestDatabase(kind, 'store_outage');
    const direct = new URL(database.databaseUrl ?? '');
    proxy = new TcpProxy(direct.hostname, Number(direct.port || (kind === 'postgres' ? 5432 : 3306)));
    await proxy.start();
    const proxied = new URL(direct);
    proxied.port = String(proxy.port);
    app = await startAppProcess({
      DATABASE_URL: proxied.toString(),
      IDEMPOTENCY_STORE_TIMEOUT_MS: '1000',
      IDEMPOTENCY_LOCK_TIMEOUT_MS: String(LEASE_MS),
      IDEMPOTENCY_IN_FLIGHT_WAIT_MS: '200',
    });
    sql = await connectSql(database.databaseUrl ?? '');
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    await proxy?.stop();
    await sql?.end();
    await database?.drop();
  });

  const paymentsOf = (customerId: string): Promise<number> =>
    countRows(sql, 'SELECT COUNT(*) AS n FROM payments WHERE customer_id = ?', [customerId]);

  const exportsOf = (datastreamId: number): Promise<number> =>
    countRows(sql, 'SELECT COUNT(*) AS n FROM export_jobs WHERE datastream_id = ?', [datastreamId]);

  function newRequest(processingMs = 0) {
    return { key: randomUUID(), body: { datastreamId: randomInt(1, 2 ** 31), processingMs } };
  }

  /**
   * The example's routes that need neither the idempotency store nor the database (its data routes
   * share the cut database, so no library could keep them up): GET /healthz, GET /metrics and a
   * GraphQL query. Each is sent with an Idempotency-Key, which a GET and a route without
   * @Idempotent() ignore (R1), so none of them may reach the store.
   */
  async function routesWithoutIdempotency(): Promise<{ health: RawAnswer; metrics: RawAnswer; query: RawAnswer }> {
    const [health, metrics, query] = await Promise.all([
      send(app.url, 'GET', '/healthz', { key: randomUUID() }),
      send(app.url, 'GET', '/metrics', { key: randomUUID() }),
      send(app.url, 'POST', '/graphql', { key: randomUUID(), body: { query: '{ __typename }' } }),
    ]);
    expect([health.status, health.body.toString()]).toEqual([200, '{"status":"ok"}']);
    expect(metrics.status).toBe(200);
    expect([query.status, query.body.toString().trim()]).toEqual([200, '{"data":{"__typename":"Query"}}']);
    return { health, metrics, query };
  }

  it('fails closed with 503 idempotency_unavailable when the database is cut off mid-load, runs no handler for those requests, and keeps other routes up', async () => {
    const requests = Array.from({ length: 60 }, () => newRequest(50));
    let otherRoutesDuringLoad: ReturnType<typeof routesWithoutIdempotency> | undefined;
    const load = runConcurrently(
      requests.map(({ key, body }, index) => async () => {
        if (index === 20) {
          proxy.refuse();
          otherRoutesDuringLoad = routesWithoutIdempotency();
          // Awaited after the load; until then a failure must not count as unhandled.
          otherRoutesDuringLoad.catch(() => undefined);
        }
        return send(app.url, 'POST', '/v1/exports', { key, body });
      }),
      6,
    );
    const answers = await load;
    // Still cut off: the other routes answer as usual, beside the 503s of the idempotent one.
    await otherRoutesDuringLoad;
    const afterLoad = await routesWithoutIdempotency();
    proxy.restore();

    // The library's refusals; a 503 `service_unavailable` is the example's answer to its own handler
    // finding the database gone, after the claim (below).
    const refusedByStore = (answer: RawAnswer): boolean => answer.status === 503 && codeOf(answer) === 'idempotency_unavailable';
    const refused = answers.filter(refusedByStore);
    expect(refused.length).toBeGreaterThan(20);
    // The metrics were served from the outage itself: it counted the refusals it had just made.
    const unavailable = /^idempotency_requests_total\{route="POST \/v1\/exports",outcome="unavailable"\} (\d+)$/m.exec(afterLoad.metrics.body.toString());
    expect(Number(unavailable?.[1])).toBeGreaterThanOrEqual(refused.length);
    for (const [index, answer] of answers.entries()) {
      // A request the cut caught after its claim may see its own handler fail (500, or the example's
      // 503 `service_unavailable` for a database it cannot reach; key released or left to its lease);
      // none is ever answered as if it succeeded without running.
      expect([202, 500, 503]).toContain(answer.status);
      if (answer.status === 503) expect(['idempotency_unavailable', 'service_unavailable']).toContain(codeOf(answer));
      if (refusedByStore(answer)) expect(await exportsOf(requests[index].body.datastreamId)).toBe(0);
    }

    // Back online: every request that failed gets through on retry within its lease (no key stays
    // stuck). One the store refused with 503 never ran, so its retry runs it exactly once. One whose
    // handler failed (500 or 503 `service_unavailable`) was cut off mid-write; whether that write
    // committed is unknown to the app, the gap the README names and the atomic mode closes, so only
    // its recovery is asserted here.
    for (const [index, request] of requests.entries()) {
      if (answers[index].status === 202) continue;
      const retried = await eventually(async () => {
        const answer = await send(app.url, 'POST', '/v1/exports', request);
        return answer.status === 202 ? answer : undefined;
      }, Math.ceil((LEASE_MS * 3) / 250), 250);
      expect(retried.headers.get('idempotency-replayed')).toBeNull();
      if (refusedByStore(answers[index])) expect(await exportsOf(request.body.datastreamId)).toBe(1);
    }
  }, 90_000);

  it('answers 503 instead of hanging when the database accepts connections but never answers, while GET /healthz stays 200', async () => {
    proxy.blackhole();
    try {
      const requests = Array.from({ length: 12 }, () => newRequest());
      const [answers, health] = await Promise.all([
        runConcurrently(
          requests.map(({ key, body }) => () => send(app.url, 'POST', '/v1/exports', { key, body, timeoutMs: 15_000 })),
          12,
        ),
        send(app.url, 'GET', '/healthz'),
      ]);
      expect(health.status).toBe(200);
      expect(answers.map((answer) => [answer.status, codeOf(answer)])).toEqual(
        answers.map(() => [503, 'idempotency_unavailable']),
      );
      for (const { body } of requests) expect(await exportsOf(body.datastreamId)).toBe(0);
    } finally {
      proxy.restore();
    }
  }, 60_000);

  it('atomic route: a commit the silent database never answers fails closed with 503, commits nothing of the payment, and its key runs once when the database is back (R18, R22a)', async () => {
    const key = randomUUID();
    const customerId = `cus_outage_${randomUUID().slice(0, 8)}`;
    const body = { amount: 700, currency: 'EUR', customerId, processingMs: 800 };
    const pending = send(app.url, 'POST', '/v1/payments', { key, body, timeoutMs: 15_000 });
    await eventually(async () => ((await paymentWrittenUncommitted(sql, customerId)) ? true : undefined));
    proxy.blackhole();
    let answer: RawAnswer;
    try {
      answer = await pending;
    } finally {
      proxy.restore();
    }

    expect([answer.status, codeOf(answer)]).toEqual([503, 'idempotency_unavailable']);
    expect(await paymentsOf(customerId)).toBe(0);
    const retried = await eventually(async () => {
      const retry = await send(app.url, 'POST', '/v1/payments', { key, body });
      return retry.status === 201 ? retry : undefined;
    }, Math.ceil((LEASE_MS * 3) / 250), 250);
    expect(retried.headers.get('idempotency-replayed')).toBeNull();
    expect(await paymentsOf(customerId)).toBe(1);
  }, 60_000);

  it('resumes by itself once the database is back, with no key left stuck past its lease', async () => {
    proxy.refuse();
    const stuck = newRequest();
    const during = await send(app.url, 'POST', '/v1/exports', stuck);
    expect(during.status).toBe(503);
    proxy.restore();

    const fresh = newRequest();
    const recovered = await eventually(async () => {
      const answer = await send(app.url, 'POST', '/v1/exports', fresh);
      return answer.status === 202 ? answer : undefined;
    }, 60, 250);
    expect(recovered.headers.get('idempotency-replayed')).toBeNull();
    const retried = await eventually(async () => {
      const answer = await send(app.url, 'POST', '/v1/exports', stuck);
      return answer.status === 202 ? answer : undefined;
    }, Math.ceil((LEASE_MS * 3) / 250), 250);
    expect(retried.status).toBe(202);
    expect(await exportsOf(stuck.body.datastreamId)).toBe(1);
    expect(await exportsOf(fresh.body.datastreamId)).toBe(1);
  }, 60_000);
});
