import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { fingerprintRequest, TypeOrmIdempotencyStore, type IdempotencyModuleOptions } from 'nestjs-idempotency';
import request from 'supertest';
import type { Logger as TypeOrmLogger } from 'typeorm';
import type { DatabaseKind } from './support/test-database.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';

/** A TypeORM logger that counts every statement sent to the database. */
class QueryCounter implements TypeOrmLogger {
  readonly queries: string[] = [];
  logQuery(query: string): void {
    this.queries.push(query);
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
}

async function startCounted(
  database: DatabaseKind,
  suite: string,
  options: IdempotencyModuleOptions,
  poolSize?: number,
): Promise<{ probe: RunningProbeApp; counter: QueryCounter }> {
  const counter = new QueryCounter();
  const probe = await startProbeApp({ database, platform: 'express', suite, options, dataSource: { logger: counter, poolSize } });
  // The store reads the server version once per process; that is not a per-request cost.
  await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ warm: true });
  return { probe, counter };
}

// /probe/echo touches no database itself, so every statement counted is the library's.
describe.each(['mariadb', 'postgres', 'sqlite'] as const)('round trips to the store on %s', (database) => {
  describe('seen from an instance that has not cached the response (replayCache: false)', () => {
    let probe: RunningProbeApp;
    let counter: QueryCounter;

    beforeAll(async () => {
      ({ probe, counter } = await startCounted(database, 'round_trips', { replayCache: false }));
    });
    afterAll(async () => {
      await probe?.close();
    });
    beforeEach(() => {
      counter.queries.length = 0;
    });

    it('costs exactly 2 statements for a fresh request: the claim and the completion (R8)', async () => {
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ n: 1 }).expect(201);
      expect(counter.queries).toHaveLength(2);
      expect(counter.queries[0]).toMatch(/^INSERT INTO/);
      expect(counter.queries[1]).toMatch(/^UPDATE/);
    });

    it('costs exactly 1 statement for a replay (R9)', async () => {
      const key = randomUUID();
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
      counter.queries.length = 0;
      const replay = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expect(counter.queries).toHaveLength(1);
    });

    it('costs exactly 1 statement for a mismatch (R10)', async () => {
      const key = randomUUID();
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 3 }).expect(201);
      counter.queries.length = 0;
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 4 }).expect(422);
      expect(counter.queries).toHaveLength(1);
    });

    it('costs nothing for a request without a key or a route without idempotency (R2)', async () => {
      await request(probe.server).post('/probe/echo').send({ n: 5 }).expect(201);
      await request(probe.server).post('/probe/plain').set('Idempotency-Key', randomUUID()).send({ n: 5 }).expect(201);
      expect(counter.queries).toHaveLength(0);
    });
  });

  describe('with the replay cache (the default)', () => {
    let probe: RunningProbeApp;
    let counter: QueryCounter;

    beforeAll(async () => {
      ({ probe, counter } = await startCounted(database, 'round_trips_cached', {}));
    });
    afterAll(async () => {
      await probe?.close();
    });

    it('still costs 2 statements for a fresh request, then nothing for its replays and mismatches on this instance (R9, R10)', async () => {
      const key = randomUUID();
      counter.queries.length = 0;
      const first = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 6 }).expect(201);
      expect(counter.queries).toHaveLength(2);
      const replays = [];
      for (let i = 0; i < 3; i++) {
        replays.push(await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 6 }).expect(201));
      }
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 7 }).expect(422);
      expect(counter.queries).toHaveLength(2);
      for (const replay of replays) {
        expect(replay.headers['idempotency-replayed']).toBe('true');
        expect(replay.text).toBe(first.text);
      }
    });

    it('reads a response another instance stored with one statement, then serves it from the cache (R9)', async () => {
      const key = randomUUID();
      // Stored as another instance would store it: through a store of its own, not this app's cache.
      const elsewhere = new TypeOrmIdempotencyStore(probe.dataSource);
      const fingerprint = fingerprintRequest({
        method: 'POST',
        path: '/probe/echo',
        query: '',
        headers: { 'content-type': 'application/json' },
        body: { n: 8 },
        rawBody: undefined,
      });
      const claimed = await elsewhere.claim({ account: '', key, fingerprint, ttlMs: 60_000, leaseMs: 60_000, route: 'elsewhere' });
      if (claimed.status !== 'claimed') throw new Error('the key was not free');
      const body = Buffer.from('{"stored":"elsewhere"}');
      await elsewhere.complete(claimed.claim, { status: 201, headers: { 'content-type': 'application/json' }, body }, 60_000);

      counter.queries.length = 0;
      const first = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 8 }).expect(201);
      expect(counter.queries).toHaveLength(1);
      const second = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 8 }).expect(201);
      expect(counter.queries).toHaveLength(1);
      expect(first.text).toBe(body.toString());
      expect(second.text).toBe(body.toString());
      expect(second.headers['idempotency-replayed']).toBe('true');
    });
  });
});

// Atomic mode (R22a): the claim joins the handler's transaction, so a fresh request commits once.
// MariaDB sends each phase as one compound statement: the opening (idle limit, START TRANSACTION,
// claim) and the ending (completion, COMMIT, the idle limit put back).
const ATOMIC_STATEMENTS = {
  mariadb: {
    fresh: [/^BEGIN NOT ATOMIC .*START TRANSACTION; SET STATEMENT innodb_lock_wait_timeout = 0 FOR INSERT INTO/, /^BEGIN NOT ATOMIC .*UPDATE .*COMMIT;/],
    replay: [/^BEGIN NOT ATOMIC .*START TRANSACTION; .*INSERT INTO/, /^BEGIN NOT ATOMIC ROLLBACK;/],
  },
  postgres: {
    fresh: [/^START TRANSACTION/, /INSERT INTO/, /^UPDATE/, /^COMMIT/],
    replay: [/^START TRANSACTION/, /INSERT INTO/, /^ROLLBACK/],
  },
} as const;

// The session's idle-in-transaction limit as the application's own queries see it.
const IDLE_LIMIT_QUERY = {
  mariadb: 'SELECT @@SESSION.idle_write_transaction_timeout AS idle_limit',
  postgres: "SELECT current_setting('idle_in_transaction_session_timeout') AS idle_limit",
} as const;

describe.each(['mariadb', 'postgres'] as const)('round trips to the store in atomic mode on %s', (database) => {
  let probe: RunningProbeApp;
  let counter: QueryCounter;

  beforeAll(async () => {
    // One pooled connection: the application's next query is sure to get the one the request used.
    ({ probe, counter } = await startCounted(database, 'round_trips_atomic', { atomic: true, replayCache: false }, 1));
  });
  afterAll(async () => {
    await probe?.close();
  });
  beforeEach(() => {
    counter.queries.length = 0;
  });

  const expectStatements = (statements: string[], expected: readonly RegExp[]): void => {
    expect(statements).toHaveLength(expected.length);
    expected.forEach((pattern, index) => expect(statements[index]).toMatch(pattern));
  };

  it(`costs a fresh request one transaction and one commit, in ${ATOMIC_STATEMENTS[database].fresh.length} round trips (R8, R22a)`, async () => {
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ n: 1 }).expect(201);
    expectStatements(counter.queries, ATOMIC_STATEMENTS[database].fresh);
  });

  it('answers a replay from the claim attempt and rolls it back: nothing committed (R9, R16a, R22a)', async () => {
    const key = randomUUID();
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
    counter.queries.length = 0;
    const replay = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expectStatements(counter.queries, ATOMIC_STATEMENTS[database].replay);
    expect(counter.queries.some((query) => /COMMIT/.test(query))).toBe(false);
  });

  it("leaves the pooled connection's idle-in-transaction limit as it found it, for the application's own transactions (R22a)", async () => {
    const [before] = await probe.dataSource.query(IDLE_LIMIT_QUERY[database]);
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ n: 3 }).expect(201);
    const key = randomUUID();
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 4 }).expect(201);
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 4 }).expect(201);
    const [after] = await probe.dataSource.query(IDLE_LIMIT_QUERY[database]);
    expect(String(after.idle_limit)).toBe(String(before.idle_limit));
    expect(String(after.idle_limit)).toMatch(/^0/);
  });
});
