import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { getDataSourceToken } from '@nestjs/typeorm';
import {
  fingerprintRequest,
  TypeOrmIdempotencyStore,
  type AtomicUnit,
  type Claim,
  type ClaimOutcome,
  type ClaimRequest,
  type FoundRecord,
  type IdempotencyModuleOptions,
  type IdempotencyStore,
  type StoredResponse,
} from 'nestjs-idempotency';
import request from 'supertest';
import type { DataSource, Logger as TypeOrmLogger } from 'typeorm';
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

/**
 * The store of a probe app in MySQL 8 mode (`withoutReturning`, as the contract suite runs it): the
 * module takes its store before the app's DataSource exists, so this one passes every call to a
 * TypeORM store that is built on that DataSource once the app is created, before it starts.
 */
class StoreBoundLater implements IdempotencyStore {
  private bound?: IdempotencyStore;

  bind(store: IdempotencyStore): void {
    this.bound = store;
  }

  private get store(): IdempotencyStore {
    if (!this.bound) throw new Error('the store is used before the app was created');
    return this.bound;
  }

  claim(claiming: ClaimRequest): Promise<ClaimOutcome> {
    return this.store.claim(claiming);
  }
  inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    return this.store.inspect(account, key);
  }
  complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    return this.store.complete(claim, response, ttlMs);
  }
  release(claim: Claim): Promise<boolean> {
    return this.store.release(claim);
  }
  renew(claim: Claim, leaseMs: number): Promise<boolean> {
    return this.store.renew(claim, leaseMs);
  }
  purgeExpired(limit: number): Promise<number> {
    return this.store.purgeExpired(limit);
  }
  beginAtomic(): AtomicUnit {
    return this.store.beginAtomic!();
  }
  atomicUnsupportedReason(): string | undefined {
    return this.store.atomicUnsupportedReason?.();
  }
}

/** Where the store runs: a database, and on MariaDB whether the claim may use RETURNING. */
interface StoreMode {
  readonly label: string;
  readonly database: DatabaseKind;
  readonly withoutReturning: boolean;
}

const MARIADB: StoreMode = { label: 'MariaDB', database: 'mariadb', withoutReturning: false };
const MYSQL_8: StoreMode = { label: 'MariaDB without RETURNING, as on MySQL 8', database: 'mariadb', withoutReturning: true };
const POSTGRES: StoreMode = { label: 'PostgreSQL', database: 'postgres', withoutReturning: false };
const SQLITE: StoreMode = { label: 'SQLite', database: 'sqlite', withoutReturning: false };

/**
 * The statements of one claim outside atomic mode: the upsert with RETURNING; without RETURNING,
 * the upsert and a read of the row it left, in one transaction.
 */
function claimStatements(mode: StoreMode): RegExp[] {
  return mode.withoutReturning ? [/^START TRANSACTION/, /^INSERT INTO/, /^SELECT /, /^COMMIT/] : [/^INSERT INTO/];
}

/** "1 statement", "4 statements": for the test names. */
function statements(count: number): string {
  return `${count} statement${count === 1 ? '' : 's'}`;
}

function expectStatements(queries: readonly string[], expected: readonly RegExp[]): void {
  expect(queries).toHaveLength(expected.length);
  expected.forEach((pattern, index) => expect(queries[index]).toMatch(pattern));
}

async function startCounted(
  mode: StoreMode,
  suite: string,
  options: IdempotencyModuleOptions,
  poolSize?: number,
): Promise<{ probe: RunningProbeApp; counter: QueryCounter }> {
  const counter = new QueryCounter();
  const late = mode.withoutReturning ? new StoreBoundLater() : undefined;
  const probe = await startProbeApp({
    database: mode.database,
    platform: 'express',
    suite: mode.withoutReturning ? `${suite}_mysql8` : suite,
    options: late ? { ...options, store: late } : options,
    dataSource: { logger: counter, poolSize },
    configure: (app) => late?.bind(new TypeOrmIdempotencyStore(app.get<DataSource>(getDataSourceToken()), { withoutReturning: true })),
  });
  // The store reads the server version once per process; that is not a per-request cost.
  await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ warm: true });
  return { probe, counter };
}

// /probe/echo touches no database itself, so every statement counted is the library's.
describe.each([MARIADB, MYSQL_8, POSTGRES, SQLITE])('round trips to the store on $label', (mode) => {
  const claim = claimStatements(mode);
  const fresh = [...claim, /^UPDATE/];

  describe('seen from an instance that has not cached the response (replayCache: false)', () => {
    let probe: RunningProbeApp;
    let counter: QueryCounter;

    beforeAll(async () => {
      ({ probe, counter } = await startCounted(mode, 'round_trips', { replayCache: false }));
    });
    afterAll(async () => {
      await probe?.close();
    });
    beforeEach(() => {
      counter.queries.length = 0;
    });

    it(`costs exactly ${statements(fresh.length)} for a fresh request: the claim and the completion (R8)`, async () => {
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ n: 1 }).expect(201);
      expectStatements(counter.queries, fresh);
    });

    it(`costs exactly ${statements(claim.length)} for a replay, the claim's (R9)`, async () => {
      const key = randomUUID();
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
      counter.queries.length = 0;
      const replay = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expectStatements(counter.queries, claim);
    });

    it(`costs exactly ${statements(claim.length)} for a mismatch, the claim's (R10)`, async () => {
      const key = randomUUID();
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 3 }).expect(201);
      counter.queries.length = 0;
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 4 }).expect(422);
      expectStatements(counter.queries, claim);
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
      ({ probe, counter } = await startCounted(mode, 'round_trips_cached', {}));
    });
    afterAll(async () => {
      await probe?.close();
    });

    it(`still costs ${statements(fresh.length)} for a fresh request, then nothing for its replays and mismatches on this instance (R9, R10)`, async () => {
      const key = randomUUID();
      counter.queries.length = 0;
      const first = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 6 }).expect(201);
      expectStatements(counter.queries, fresh);
      const replays = [];
      for (let i = 0; i < 3; i++) {
        replays.push(await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 6 }).expect(201));
      }
      await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 7 }).expect(422);
      expect(counter.queries).toHaveLength(fresh.length);
      for (const replay of replays) {
        expect(replay.headers['idempotency-replayed']).toBe('true');
        expect(replay.text).toBe(first.text);
      }
    });

    it(`reads a response another instance stored with the claim's ${statements(claim.length)}, then serves it from the cache (R9)`, async () => {
      const key = randomUUID();
      // Stored as another instance would store it: through a store of its own, not this app's cache.
      const elsewhere = new TypeOrmIdempotencyStore(probe.dataSource, { withoutReturning: mode.withoutReturning });
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
      expectStatements(counter.queries, claim);
      const second = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 8 }).expect(201);
      expect(counter.queries).toHaveLength(claim.length);
      expect(first.text).toBe(body.toString());
      expect(second.text).toBe(body.toString());
      expect(second.headers['idempotency-replayed']).toBe('true');
    });
  });
});

// Atomic mode (R22a): the claim joins the handler's transaction, so a fresh request commits once,
// in two round trips of the library's besides the handler's own statements. MariaDB sends each
// phase as one compound statement: the opening (its idle limit, START TRANSACTION, the claim) and
// the ending (the completion, COMMIT, the idle limit put back). PostgreSQL sends each as one script
// (START TRANSACTION with the claim; the completion with COMMIT). MySQL 8 has no compound
// statements outside stored programs nor scripts without the connection's multipleStatements: it
// saves and sets the limit, opens, claims and reads the row back, then completes, commits and
// restores the limit, one statement each.
const ATOMIC_STATEMENTS: Record<string, { fresh: RegExp[]; replayed: RegExp[] }> = {
  [MARIADB.label]: {
    fresh: [/^BEGIN NOT ATOMIC .*START TRANSACTION; SET STATEMENT innodb_lock_wait_timeout = 0 FOR INSERT INTO/, /^BEGIN NOT ATOMIC .*UPDATE .*COMMIT;/],
    replayed: [/^BEGIN NOT ATOMIC .*START TRANSACTION; .*INSERT INTO/, /^BEGIN NOT ATOMIC ROLLBACK;/],
  },
  [MYSQL_8.label]: {
    fresh: [/^SET @nestjs_idempotency_idle_limit/, /^START TRANSACTION/, /INSERT INTO/, /^SELECT /, /^UPDATE/, /^COMMIT/, /^SET SESSION/],
    replayed: [/^SET @nestjs_idempotency_idle_limit/, /^START TRANSACTION/, /INSERT INTO/, /^SELECT /, /^ROLLBACK/, /^SET SESSION/],
  },
  [POSTGRES.label]: {
    fresh: [/^START TRANSACTION; WITH claim_lock AS .*INSERT INTO/, /^WITH stored AS \(UPDATE .*; COMMIT$/],
    replayed: [/^START TRANSACTION; WITH claim_lock AS .*INSERT INTO/, /^ROLLBACK$/],
  },
};

// The session's idle-in-transaction limit as the application's own queries see it.
const IDLE_LIMIT_QUERY: Record<DatabaseKind, string> = {
  mariadb: 'SELECT @@SESSION.idle_write_transaction_timeout AS idle_limit',
  postgres: "SELECT current_setting('idle_in_transaction_session_timeout') AS idle_limit",
  sqlite: '',
};

describe.each([MARIADB, MYSQL_8, POSTGRES])('round trips to the store in atomic mode on $label', (mode) => {
  const { fresh, replayed } = ATOMIC_STATEMENTS[mode.label];
  let probe: RunningProbeApp;
  let counter: QueryCounter;

  beforeAll(async () => {
    // One pooled connection: the application's next query is sure to get the one the request used.
    ({ probe, counter } = await startCounted(mode, 'round_trips_atomic', { atomic: true, replayCache: false }, 1));
  });
  afterAll(async () => {
    await probe?.close();
  });
  beforeEach(() => {
    counter.queries.length = 0;
  });

  it(`costs a fresh request one transaction and one commit, ${statements(fresh.length)} (R8, R22a)`, async () => {
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ n: 1 }).expect(201);
    expectStatements(counter.queries, fresh);
  });

  it(`answers a replay from the claim attempt and rolls it back, ${statements(replayed.length)}: nothing committed (R9, R16a, R22a)`, async () => {
    const key = randomUUID();
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
    counter.queries.length = 0;
    const replay = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expectStatements(counter.queries, replayed);
    expect(counter.queries.some((query) => /COMMIT/.test(query))).toBe(false);
  });

  it("leaves the pooled connection's idle-in-transaction limit as it found it, for the application's own transactions (R22a)", async () => {
    const [before] = await probe.dataSource.query(IDLE_LIMIT_QUERY[mode.database]);
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ n: 3 }).expect(201);
    const key = randomUUID();
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 4 }).expect(201);
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 4 }).expect(201);
    const [after] = await probe.dataSource.query(IDLE_LIMIT_QUERY[mode.database]);
    expect(String(after.idle_limit)).toBe(String(before.idle_limit));
    expect(String(after.idle_limit)).toMatch(/^0/);
  });
});
