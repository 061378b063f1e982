import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  TypeOrmIdempotencyStore,
  type Claim,
  type ClaimOutcome,
  type ClaimRequest,
  type StoredResponse,
} from 'nestjs-idempotency';
import { DataSource } from 'typeorm';
import { probeDataSourceOptions } from './support/probe-app.js';
import { queryRows, createTestDatabase, type DatabaseKind, type TestDatabase } from './support/test-database.js';

/** [label, database, database name, behave as MySQL 8 (no INSERT ... RETURNING)] */
const VARIANTS: ReadonlyArray<readonly [string, DatabaseKind, string, boolean]> = [
  ['MariaDB', 'mariadb', 'store_mariadb', false],
  ['MariaDB without RETURNING, as on MySQL 8', 'mariadb', 'store_mysql8', true],
  ['PostgreSQL', 'postgres', 'store_postgres', false],
  ['SQLite', 'sqlite', 'store_sqlite', false],
];

const LONG_MS = 60_000;

interface RecordRow {
  readonly fingerprint: string;
  readonly state: string;
  readonly ownerToken: string;
  readonly leaseExpiresAt: number;
  readonly expiresAt: number;
  readonly responseStatus: number | null;
  readonly responseHeaders: string | null;
  readonly responseBody: Buffer | null;
}

function claimRequest(overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return {
    account: `acct-${randomUUID()}`,
    key: randomUUID(),
    fingerprint: 'a'.repeat(64),
    ttlMs: LONG_MS,
    leaseMs: LONG_MS,
    route: 'POST /store-test',
    ...overrides,
  };
}

function fingerprintOf(n: number): string {
  return n.toString(16).padStart(64, '0');
}

function claimedOf(outcome: ClaimOutcome): Claim {
  if (outcome.status !== 'claimed') throw new Error(`expected a claim, got ${outcome.status}`);
  return outcome.claim;
}

describe.each(VARIANTS)('TypeOrmIdempotencyStore on %s', (_label, kind, name, withoutReturning) => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let store: TypeOrmIdempotencyStore;

  beforeAll(async () => {
    database = await createTestDatabase(kind, name);
    dataSource = new DataSource(probeDataSourceOptions(database));
    await dataSource.initialize();
    store = new TypeOrmIdempotencyStore(dataSource, { withoutReturning });
  });

  afterAll(async () => {
    if (dataSource?.isInitialized) await dataSource.destroy();
    await database?.drop();
  });

  async function readRow(account: string, key: string): Promise<RecordRow | undefined> {
    const rows = (await queryRows(
      dataSource,
      'SELECT fingerprint, state, owner_token, lease_expires_at, expires_at, response_status, response_headers, response_body ' +
        'FROM idempotency_records WHERE account = ? AND idempotency_key = ?',
      [account, key],
    )) as Array<Record<string, unknown>>;
    const row = rows[0];
    if (!row) return undefined;
    return {
      fingerprint: String(row.fingerprint),
      state: String(row.state),
      ownerToken: String(row.owner_token),
      leaseExpiresAt: Number(row.lease_expires_at),
      expiresAt: Number(row.expires_at),
      responseStatus: row.response_status === null ? null : Number(row.response_status),
      responseHeaders: row.response_headers === null ? null : String(row.response_headers),
      responseBody: row.response_body === null ? null : Buffer.from(row.response_body as Uint8Array),
    };
  }

  async function rowCount(): Promise<number> {
    const [row] = (await queryRows(dataSource, 'SELECT COUNT(*) AS n FROM idempotency_records')) as Array<{ n: string | number }>;
    return Number(row.n);
  }

  const response = (body: string | Buffer, status = 201): StoredResponse => ({
    status,
    headers: { 'content-type': 'application/json', location: '/things/1' },
    body: Buffer.isBuffer(body) ? body : Buffer.from(body),
  });

  it('gives exactly one of 50 concurrent claims for a free key, and the rest the winner\'s in-flight record (R6, R8)', async () => {
    const base = claimRequest();
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.claim({ ...base, fingerprint: fingerprintOf(i) })),
    );
    const winners = outcomes.flatMap((outcome, i) => (outcome.status === 'claimed' ? [i] : []));
    expect(winners).toHaveLength(1);
    const winnerFingerprint = fingerprintOf(winners[0]);
    const others = outcomes.filter((outcome) => outcome.status !== 'claimed');
    expect(others).toHaveLength(49);
    for (const outcome of others) {
      expect(outcome).toMatchObject({ status: 'in_flight', fingerprint: winnerFingerprint });
    }
    expect((await readRow(base.account, base.key))?.fingerprint).toBe(winnerFingerprint);
  });

  it('returns the stored response to a later claim, and leaves it unchanged whatever the fingerprint (R9, R10, R16a)', async () => {
    const request = claimRequest();
    const claim = claimedOf(await store.claim(request));
    const stored: StoredResponse = {
      status: 402,
      headers: { 'content-type': 'application/json; charset=utf-8', link: ['</a>; rel="a"', '</b>; rel="b"'] },
      body: Buffer.from('{"error":{"code":"card_declined"}}'),
    };
    expect(await store.complete(claim, stored, LONG_MS)).toBe(true);
    const afterComplete = await readRow(request.account, request.key);

    const same = await store.claim(request);
    expect(same.status).toBe('completed');
    if (same.status !== 'completed') return;
    expect(same.fingerprint).toBe(request.fingerprint);
    expect(same.response.status).toBe(402);
    expect(same.response.headers).toEqual(stored.headers);
    expect(same.response.body.equals(stored.body)).toBe(true);

    const beforeOther = await readRow(request.account, request.key);
    const other = await store.claim({ ...request, fingerprint: fingerprintOf(7) });
    expect(other.status).toBe('completed');
    if (other.status !== 'completed') return;
    // The caller compares fingerprints and answers 422; the store reports what it holds.
    expect(other.fingerprint).toBe(request.fingerprint);
    expect(other.response.body.equals(stored.body)).toBe(true);

    const afterOther = await readRow(request.account, request.key);
    expect(afterOther).toEqual(beforeOther);
    expect({ ...afterOther, expiresAt: 0 }).toEqual({ ...afterComplete, expiresAt: 0 });
  });

  it('lets exactly one of 20 concurrent retries take over a claim whose lease ended, and fences the old owner (R20)', async () => {
    const request = claimRequest({ leaseMs: 200 });
    const oldClaim = claimedOf(await store.claim(request));
    await sleep(300);

    const outcomes = await Promise.all(Array.from({ length: 20 }, () => store.claim({ ...request, leaseMs: LONG_MS })));
    const takeovers = outcomes.filter((outcome) => outcome.status === 'claimed');
    expect(takeovers).toHaveLength(1);
    for (const outcome of outcomes.filter((o) => o.status !== 'claimed')) {
      expect(outcome).toMatchObject({ status: 'in_flight', fingerprint: request.fingerprint });
    }
    const newClaim = claimedOf(takeovers[0]);
    expect(newClaim.ownerToken).not.toBe(oldClaim.ownerToken);

    const beforeOldOwner = await readRow(request.account, request.key);
    expect(beforeOldOwner?.ownerToken).toBe(newClaim.ownerToken);
    expect(await store.complete(oldClaim, response('{"stale":true}'), LONG_MS)).toBe(false);
    expect(await store.renew(oldClaim, 10 * LONG_MS)).toBe(false);
    expect(await store.release(oldClaim)).toBe(false);
    expect(await readRow(request.account, request.key)).toEqual(beforeOldOwner);

    expect(await store.complete(newClaim, response('{"fresh":true}'), LONG_MS)).toBe(true);
    const found = await store.inspect(request.account, request.key);
    expect(found?.status).toBe('completed');
    if (found?.status === 'completed') expect(found.response.body.toString()).toBe('{"fresh":true}');
  });

  it('does not hand a dead claim to a request with another fingerprint before the ttl (R10, R20)', async () => {
    const request = claimRequest({ leaseMs: 200 });
    claimedOf(await store.claim(request));
    await sleep(300);
    const other = await store.claim({ ...request, fingerprint: fingerprintOf(9) });
    expect(other).toMatchObject({ status: 'in_flight', fingerprint: request.fingerprint });
    expect((await readRow(request.account, request.key))?.fingerprint).toBe(request.fingerprint);
  });

  it('moves the lease end later on renew (R20)', async () => {
    const request = claimRequest({ leaseMs: 1000 });
    const claim = claimedOf(await store.claim(request));
    const before = await readRow(request.account, request.key);
    expect(await store.renew(claim, LONG_MS)).toBe(true);
    const after = await readRow(request.account, request.key);
    expect(after!.leaseExpiresAt - before!.leaseExpiresAt).toBeGreaterThanOrEqual(LONG_MS - 1000);
    expect(after!.state).toBe('in_flight');
    expect(after!.ownerToken).toBe(claim.ownerToken);
  });

  it('deletes the claim on release, so the next claim for the key wins (R14)', async () => {
    const request = claimRequest();
    const claim = claimedOf(await store.claim(request));
    expect(await store.release(claim)).toBe(true);
    expect(await readRow(request.account, request.key)).toBeUndefined();
    const next = await store.claim({ ...request, fingerprint: fingerprintOf(3) });
    expect(next.status).toBe('claimed');
  });

  it('inspects nothing for an unknown key and the current record otherwise, without changing it (R11)', async () => {
    const request = claimRequest();
    expect(await store.inspect(request.account, request.key)).toBeUndefined();
    const claim = claimedOf(await store.claim(request));
    expect(await store.inspect(request.account, request.key)).toMatchObject({
      status: 'in_flight',
      fingerprint: request.fingerprint,
    });
    expect(await store.complete(claim, response('{"id":1}'), LONG_MS)).toBe(true);
    const before = await readRow(request.account, request.key);
    const found = await store.inspect(request.account, request.key);
    expect(found?.status).toBe('completed');
    if (found?.status === 'completed') {
      expect(found.fingerprint).toBe(request.fingerprint);
      expect(found.response.body.toString()).toBe('{"id":1}');
      expect(found.response.status).toBe(201);
    }
    expect(await readRow(request.account, request.key)).toEqual(before);
    expect(await store.inspect(request.account, randomUUID())).toBeUndefined();
  });

  it('lets exactly one of 20 concurrent claims, whatever their fingerprint, take over an expired record (R12, R8)', async () => {
    const request = claimRequest();
    const claim = claimedOf(await store.claim(request));
    expect(await store.complete(claim, response('{"old":true}'), 200)).toBe(true);
    await sleep(300);

    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.claim({ ...request, fingerprint: fingerprintOf(100 + i) })),
    );
    const winners = outcomes.flatMap((outcome, i) => (outcome.status === 'claimed' ? [i] : []));
    expect(winners).toHaveLength(1);
    const winnerFingerprint = fingerprintOf(100 + winners[0]);
    for (const outcome of outcomes.filter((o) => o.status !== 'claimed')) {
      expect(outcome).toMatchObject({ status: 'in_flight', fingerprint: winnerFingerprint });
    }
    const row = await readRow(request.account, request.key);
    expect(row).toMatchObject({ state: 'in_flight', fingerprint: winnerFingerprint, responseBody: null });
  });

  it('purges at most `limit` expired records per call, and no live one (R21)', async () => {
    await queryRows(dataSource, 'DELETE FROM idempotency_records');
    for (let i = 0; i < 7; i++) {
      const claim = claimedOf(await store.claim(claimRequest()));
      expect(await store.complete(claim, response(`{"n":${i}}`), 1)).toBe(true);
    }
    const live = claimRequest();
    expect(await store.complete(claimedOf(await store.claim(live)), response('{"live":true}'), LONG_MS)).toBe(true);
    const running = claimRequest();
    claimedOf(await store.claim(running));
    await sleep(20);

    expect(await store.purgeExpired(3)).toBe(3);
    expect(await rowCount()).toBe(6);
    expect(await store.purgeExpired(3)).toBe(3);
    expect(await store.purgeExpired(3)).toBe(1);
    expect(await store.purgeExpired(3)).toBe(0);
    expect(await readRow(live.account, live.key)).toBeDefined();
    expect(await readRow(running.account, running.key)).toBeDefined();
    expect(await rowCount()).toBe(2);
  });

  it('round-trips a body holding every byte value, and a 2 MB body, exactly (R9)', async () => {
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const large = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < large.length; i++) large[i] = (i * 31 + (i >> 8)) & 0xff;

    for (const body of [everyByte, Buffer.concat([everyByte, Buffer.from(everyByte).reverse()]), large]) {
      const request = claimRequest();
      const claim = claimedOf(await store.claim(request));
      expect(await store.complete(claim, { status: 200, headers: { 'content-type': 'application/octet-stream' }, body }, LONG_MS)).toBe(
        true,
      );
      const replay = await store.claim(request);
      expect(replay.status).toBe('completed');
      if (replay.status !== 'completed') return;
      expect(replay.response.body.length).toBe(body.length);
      expect(replay.response.body.equals(body)).toBe(true);
      const inspected = await store.inspect(request.account, request.key);
      expect(inspected?.status === 'completed' && inspected.response.body.equals(body)).toBe(true);
    }
  });

  it('keeps keys that differ only by case apart (R3, R6)', async () => {
    const account = `acct-${randomUUID()}`;
    const upper = await store.claim(claimRequest({ account, key: 'Checkout:Attempt-1' }));
    const lower = await store.claim(claimRequest({ account, key: 'checkout:attempt-1', fingerprint: fingerprintOf(5) }));
    expect(upper.status).toBe('claimed');
    expect(lower.status).toBe('claimed');
    expect(await store.complete(claimedOf(upper), response('{"which":"upper"}'), LONG_MS)).toBe(true);
    expect(await store.complete(claimedOf(lower), response('{"which":"lower"}'), LONG_MS)).toBe(true);
    const found = await store.inspect(account, 'Checkout:Attempt-1');
    expect(found?.status === 'completed' && found.response.body.toString()).toBe('{"which":"upper"}');
  });

  // SQLite has no atomic mode (the store refuses it at start-up, tested in atomic-mode.e2e-spec.ts).
  if (kind !== 'sqlite') describe('atomic units (R22a)', () => {

    it('keeps the claim inside the transaction: invisible until the commit, then completed', async () => {
      const request = claimRequest();
      const unit = store.beginAtomic();
      const claim = claimedOf((await unit.claim(request)) as ClaimOutcome);
      expect(await store.inspect(request.account, request.key)).toBeUndefined();
      expect(await unit.commitWith(claim, response('{"ok":true}'), LONG_MS)).toBe(true);
      expect((await store.inspect(request.account, request.key))?.status).toBe('completed');
      const again = await store.beginAtomic().claim(request);
      expect(again.status === 'completed' && again.response.body.toString()).toBe('{"ok":true}');
    });

    it('gives one of 20 concurrent units the claim; the others are told at once that this request holds it, another request that it is not theirs (R6, R10, R11)', async () => {
      const request = claimRequest();
      const units = Array.from({ length: 20 }, () => store.beginAtomic());
      const outcomes = await Promise.all(units.map((unit) => unit.claim(request)));
      const winners = outcomes.filter((outcome) => outcome.status === 'claimed');
      expect(winners).toHaveLength(1);
      // Copies that arrived after the winner's claim are locked out; one that ran first may see nothing yet.
      for (const outcome of outcomes) if (outcome.status !== 'claimed') expect(outcome).toEqual({ status: 'locked', sameRequest: true });
      const other = await store.beginAtomic().claim({ ...request, fingerprint: fingerprintOf(7) });
      expect(other).toEqual({ status: 'locked', sameRequest: false });
      await units[outcomes.indexOf(winners[0])].rollback();
    });

    it('frees the key when the transaction rolls back: the next unit claims it, and nothing is left (R14, R22a)', async () => {
      const request = claimRequest();
      const unit = store.beginAtomic();
      claimedOf((await unit.claim(request)) as ClaimOutcome);
      await unit.rollback();
      expect(await readRow(request.account, request.key)).toBeUndefined();
      const next = store.beginAtomic();
      expect((await next.claim({ ...request, fingerprint: fingerprintOf(9) })).status).toBe('claimed');
      await next.rollback();
    });

    // PostgreSQL sends each phase as one script with its parameters written in as literals: whatever
    // a client or a handler puts in them must arrive as it was given, and end no literal early.
    it('stores hostile text and every byte exactly as given: quotes, backslashes, placeholders, statements (R9, R16)', async () => {
      const hostile = `o'brien\\'); COMMIT; DROP TABLE idempotency_records; -- $1 $$ E'\\x00' 💳`;
      const request = claimRequest({ account: `acct-${hostile}-${randomUUID()}`, key: `key-${hostile}`, route: `POST /${hostile}` });
      const bytes = Buffer.from(Array.from({ length: 512 }, (_, index) => index % 256));
      const stored: StoredResponse = { status: 201, headers: { 'x-note': hostile, 'set-cookie': [`a=${hostile}`, 'b=\\'] }, body: bytes };
      const unit = store.beginAtomic();
      const claim = claimedOf((await unit.claim(request)) as ClaimOutcome);
      expect(await unit.commitWith(claim, stored, LONG_MS)).toBe(true);
      const row = await readRow(request.account, request.key);
      expect(row?.state).toBe('completed');
      expect(row?.responseBody?.equals(bytes)).toBe(true);
      const found = await store.inspect(request.account, request.key);
      expect(found?.status === 'completed' && found.response).toEqual(stored);
      expect(await rowCount()).toBeGreaterThan(0);
    });

    if (kind === 'postgres') {
      it('refuses a NUL in an account before sending anything, and the connection goes on serving (PostgreSQL text holds none)', async () => {
        await expect(store.beginAtomic().claim(claimRequest({ account: 'acct-\u0000-nul' }))).rejects.toThrow(/U\+0000/);
        const request = claimRequest();
        const unit = store.beginAtomic();
        const claim = claimedOf((await unit.claim(request)) as ClaimOutcome);
        expect(await unit.commitWith(claim, response('{"after":"nul"}'), LONG_MS)).toBe(true);
        expect((await store.inspect(request.account, request.key))?.status).toBe('completed');
      });
    }

    it('commits the work and deletes the claim together when the response cannot be stored (R16b)', async () => {
      const request = claimRequest();
      const unit = store.beginAtomic();
      const claim = claimedOf((await unit.claim(request)) as ClaimOutcome);
      await unit.commitReleasing(claim);
      expect(await readRow(request.account, request.key)).toBeUndefined();
    });
  });
});
