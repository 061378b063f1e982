import { execFile } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { IdempotencyService } from 'nestjs-idempotency';
import request from 'supertest';
import { type AppProcess, codeOf, eventually, send, startAppProcess } from './support/app-process.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { createSharedStore, type SharedStore } from './support/shared-store.js';
import { queryRows, type DatabaseKind } from './support/test-database.js';

const TTL_MS = 1500;

/** One HTTP platform per database is enough here: expiry is decided by the store alone. */
const COMBINATIONS = [
  ['mariadb', 'express'],
  ['postgres', 'fastify'],
  ['sqlite', 'fastify'],
] as const;

interface RecordTimes {
  readonly expiresAt: number;
  readonly createdAt: number;
}

async function recordTimes(probe: RunningProbeApp, key: string): Promise<RecordTimes> {
  const rows = (await queryRows(probe.dataSource, 
    'SELECT expires_at, created_at FROM idempotency_records WHERE idempotency_key = ?',
    [key],
  )) as Array<{ expires_at: string | number; created_at: string | number }>;
  expect(rows).toHaveLength(1);
  return { expiresAt: Number(rows[0].expires_at), createdAt: Number(rows[0].created_at) };
}

/** The database's own clock, in ms since the epoch, read without going through the library. */
async function databaseNowMs(probe: RunningProbeApp, kind: DatabaseKind): Promise<number> {
  const sql = {
    mariadb: 'SELECT UNIX_TIMESTAMP(NOW(3)) * 1000 AS now',
    postgres: 'SELECT FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS now',
    sqlite: "SELECT (julianday('now') - 2440587.5) * 86400000 AS now",
  }[kind];
  const [row] = (await queryRows(probe.dataSource, sql)) as Array<{ now: string | number }>;
  return Number(row.now);
}

describe.each(COMBINATIONS)('expiry on %s with %s', (database, platform) => {
  let probe: RunningProbeApp;

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform, suite: 'expiry', options: { ttl: TTL_MS } });
  });

  afterAll(async () => {
    await probe?.close();
  });

  const echo = (key: string, body: object) =>
    request(probe.server).post('/probe/echo').set('X-Account', 'acct-expiry').set('Idempotency-Key', key).send(body);

  it('treats a key unused for longer than the ttl as fresh, for the same body and for another one (R12, R8)', async () => {
    const sameBodyKey = randomUUID();
    const otherBodyKey = randomUUID();
    const first = await echo(sameBodyKey, { n: 1 }).expect(201);
    await echo(otherBodyKey, { n: 1 }).expect(201);
    // Within the ttl another body is refused; a refusal is not a use and must not extend the record (R16a).
    await echo(otherBodyKey, { n: 2 }).expect(422);
    const runsBefore = probe.runs.count('echo');

    await sleep(TTL_MS + 150);

    const again = await echo(sameBodyKey, { n: 1 }).expect(201);
    expect(again.headers['idempotency-replayed']).toBeUndefined();
    expect(again.body.run).not.toBe(first.body.run);
    const otherBody = await echo(otherBodyKey, { n: 2 }).expect(201);
    expect(otherBody.headers['idempotency-replayed']).toBeUndefined();
    expect(otherBody.body.body).toEqual({ n: 2 });
    expect(probe.runs.count('echo')).toBe(runsBefore + 2);

    // The fresh runs are stored again like any new key (R8).
    const replay = await echo(otherBodyKey, { n: 2 }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(otherBody.text);
  });

  it('counts the ttl from when the response was stored: a replay leaves expires_at as it was (R12)', async () => {
    const key = randomUUID();
    await echo(key, { extend: false }).expect(201);
    const before = await recordTimes(probe, key);
    await sleep(25);
    const replay = await echo(key, { extend: false }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    const after = await recordTimes(probe, key);
    expect(after).toEqual(before);
  });

  it('treats a key as fresh once the ttl since its response was stored has passed, replays in between notwithstanding (R12)', async () => {
    const key = randomUUID();
    const first = await echo(key, { kept: 'replayed' }).expect(201);
    const runs = probe.runs.count('echo');
    await sleep(TTL_MS * 0.6);
    const replay = await echo(key, { kept: 'replayed' }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
    await sleep(TTL_MS * 0.6);
    const fresh = await echo(key, { kept: 'replayed' }).expect(201);
    expect(fresh.headers['idempotency-replayed']).toBeUndefined();
    expect(probe.runs.count('echo')).toBe(runs + 1);
  });
});

interface RawRecord {
  readonly key: string;
  readonly state: 'completed' | 'in_flight';
  readonly leaseExpiresAt: number;
  readonly expiresAt: number;
}

async function insertRawRecords(probe: RunningProbeApp, records: readonly RawRecord[], createdAt: number): Promise<void> {
  const columns =
    'account, idempotency_key, fingerprint, state, owner_token, route, lease_expires_at, expires_at, created_at, ' +
    'response_status, response_headers, response_body';
  for (let start = 0; start < records.length; start += 200) {
    const chunk = records.slice(start, start + 200);
    const params = chunk.flatMap((record) => {
      const completed = record.state === 'completed';
      return [
        'acct-purge',
        record.key,
        'f'.repeat(64),
        record.state,
        randomUUID(),
        'POST /probe/echo',
        record.leaseExpiresAt,
        record.expiresAt,
        createdAt,
        completed ? 200 : null,
        completed ? '{"content-type":"application/json"}' : null,
        completed ? Buffer.from('{"ok":true}') : null,
      ];
    });
    const placeholders = chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    await queryRows(probe.dataSource, `INSERT INTO idempotency_records (${columns}) VALUES ${placeholders}`, params);
  }
}

describe.each(COMBINATIONS)('purge on %s with %s', (database, platform) => {
  let probe: RunningProbeApp;

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform, suite: 'purge', options: { purgeBatchSize: 500 } });
  });

  afterAll(async () => {
    await probe?.close();
  });

  it('deletes only expired records, in batches of purgeBatchSize (R21)', async () => {
    const now = await databaseNowMs(probe, database);
    const hourAgo = now - 60 * 60 * 1000;
    const inAnHour = now + 60 * 60 * 1000;
    const expired: RawRecord[] = Array.from({ length: 1200 }, (_, i) => ({
      key: `expired-${i}`,
      state: 'completed',
      leaseExpiresAt: hourAgo,
      expiresAt: hourAgo + i,
    }));
    const live: RawRecord[] = Array.from({ length: 5 }, (_, i) => ({
      key: `live-${i}`,
      state: 'completed',
      leaseExpiresAt: hourAgo,
      expiresAt: inAnHour,
    }));
    // Past its ttl, but its owner is still renewing the lease: the handler is running right now.
    const running: RawRecord = { key: 'in-flight-live-lease', state: 'in_flight', leaseExpiresAt: inAnHour, expiresAt: hourAgo };
    await insertRawRecords(probe, [...expired, ...live, running], hourAgo - 1000);

    const service = probe.app.get(IdempotencyService);
    expect(await service.purgeExpired()).toEqual({ deleted: 1200, batches: 3 });

    const remaining = (await queryRows(probe.dataSource, 
      'SELECT idempotency_key FROM idempotency_records ORDER BY idempotency_key',
    )) as Array<{ idempotency_key: string }>;
    expect(remaining.map((row) => row.idempotency_key)).toEqual([
      'in-flight-live-lease',
      'live-0',
      'live-1',
      'live-2',
      'live-3',
      'live-4',
    ]);
    expect(await service.purgeExpired()).toEqual({ deleted: 0, batches: 1 });
  });
});

const HOUR_MS = 60 * 60 * 1000;
/** How far each skewed instance's clock is off, ahead for one and behind for the other. */
const SKEW_HOURS = 6;
const SKEWED_TTL_MS = 3000;
const SKEWED_LEASE_MS = 1500;
const SKEWED_CLOCK = pathToFileURL(join(process.cwd(), 'test/support/skewed-clock.mjs')).href;

/** The example API as a child process whose every wall-clock reading is `hours` off (see skewed-clock.mjs). */
function startSkewed(env: Record<string, string>, hours: number): Promise<AppProcess> {
  return startAppProcess({ ...env, CLOCK_SKEW_HOURS: String(hours) }, { nodeArgs: ['--import', SKEWED_CLOCK] });
}

function exportRequest(processingMs = 0): { key: string; body: { datastreamId: number; processingMs: number } } {
  return { key: randomUUID(), body: { datastreamId: randomInt(1, 2 ** 31), processingMs } };
}

describe('the skewed-clock preload', () => {
  it('moves Date.now(), new Date(), new Date().getTime() and Date() of the process it is loaded in by the hours given, and no date built from a given time', async () => {
    const script =
      'console.log(JSON.stringify({ now: Date.now(), created: new Date().getTime(), iso: new Date().toISOString(), ' +
      'called: Date(), fixed: new Date(0).getTime(), isDate: new Date() instanceof Date }))';
    const before = Date.now();
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', SKEWED_CLOCK, '-e', script], {
      env: { ...process.env, NODE_OPTIONS: '', CLOCK_SKEW_HOURS: String(-SKEW_HOURS) },
    });
    const after = Date.now();
    const read = JSON.parse(stdout) as { now: number; created: number; iso: string; called: string; fixed: number; isDate: boolean };
    const skewedFrom = before - SKEW_HOURS * HOUR_MS;
    const skewedTo = after - SKEW_HOURS * HOUR_MS;
    for (const reading of [read.now, read.created, Date.parse(read.iso)]) {
      expect(reading).toBeGreaterThanOrEqual(skewedFrom);
      expect(reading).toBeLessThanOrEqual(skewedTo);
    }
    // Date() as a function answers in whole seconds.
    expect(Date.parse(read.called)).toBeGreaterThanOrEqual(skewedFrom - 1000);
    expect(Date.parse(read.called)).toBeLessThanOrEqual(skewedTo);
    expect(read.fixed).toBe(0);
    expect(read.isDate).toBe(true);
  });
});

/*
 * R19 with the applications' whole clocks wrong: two instances of the built example API, one
 * 6 h ahead and one 6 h behind, share one store. Every time the library compares is the store's,
 * so they agree to the millisecond; a library that used the instances' clocks would see a
 * record one of them stored as 12 h older or younger on the other. IDEMPOTENCY_REPLAY_CACHE=off:
 * every request asks the store (a cached entry is timed on the monotonic clock, which no skew moves).
 */
describe.each(['mariadb', 'postgres', 'sqlite', 'redis'] as const)('two instances of the API, clocks 6 h ahead and 6 h behind, sharing the %s store (R19)', (kind) => {
  let store: SharedStore;
  let ahead: AppProcess;
  let behind: AppProcess;

  beforeAll(async () => {
    store = await createSharedStore(kind, 'expiry_skewed');
    const timings = {
      IDEMPOTENCY_TTL_MS: String(SKEWED_TTL_MS),
      IDEMPOTENCY_LOCK_TIMEOUT_MS: String(SKEWED_LEASE_MS),
      IDEMPOTENCY_IN_FLIGHT_WAIT_MS: '0',
      IDEMPOTENCY_REPLAY_CACHE: 'off',
    };
    // One after the other: the first one creates the tables.
    ahead = await startSkewed({ ...store.env(0), ...timings }, SKEW_HOURS);
    behind = await startSkewed({ ...store.env(1), ...timings }, -SKEW_HOURS);
  }, 60_000);

  afterAll(async () => {
    await ahead?.stop();
    await behind?.stop();
    await store?.close();
  });

  it('runs each instance on its own wrong clock: a payment made on the one ahead is dated 6 h ahead, on the one behind 6 h behind', async () => {
    for (const [instance, hours] of [[ahead, SKEW_HOURS], [behind, -SKEW_HOURS]] as const) {
      const before = Date.now();
      const made = await send(instance.url, 'POST', '/v1/payments', {
        key: randomUUID(),
        body: { amount: 100, currency: 'EUR', customerId: `cus_skew_${randomUUID().slice(0, 8)}` },
      });
      const after = Date.now();
      expect(made.status).toBe(201);
      const createdAt = Date.parse((JSON.parse(made.body.toString()) as { createdAt: string }).createdAt);
      expect(createdAt).toBeGreaterThanOrEqual(before + hours * HOUR_MS);
      expect(createdAt).toBeLessThanOrEqual(after + hours * HOUR_MS);
    }
  });

  it("stores a record's times by the store's clock, replays it from both instances until its ttl ends by that clock, and treats the key as fresh after, whichever instance stored it (R19, R12)", async () => {
    const byAhead = exportRequest();
    const byBehind = exportRequest();
    const storedByAhead = await send(ahead.url, 'POST', '/v1/exports', byAhead);
    const storedByBehind = await send(behind.url, 'POST', '/v1/exports', byBehind);
    const storedAt = Date.now();
    const stored = [
      [byAhead, storedByAhead],
      [byBehind, storedByBehind],
    ] as const;
    for (const [{ key }, answer] of stored) {
      expect(answer.status).toBe(202);
      expect(answer.headers.get('idempotency-replayed')).toBeNull();
      // Times by the store's clock: an instance's would be 6 h off it.
      const times = await store.record(key);
      expect(times?.state).toBe('completed');
      expect(Math.abs(times!.storeNow - times!.createdAt)).toBeLessThan(60_000);
      expect(times!.expiresAt - times!.storeNow).toBeGreaterThan(0);
      expect(times!.expiresAt - times!.storeNow).toBeLessThanOrEqual(SKEWED_TTL_MS);
    }

    const replayedByBoth = async (): Promise<void> => {
      for (const instance of [ahead, behind]) {
        for (const [{ key, body }, answer] of stored) {
          const replay = await send(instance.url, 'POST', '/v1/exports', { key, body });
          expect([replay.status, replay.headers.get('idempotency-replayed')]).toEqual([202, 'true']);
          expect(replay.body.equals(answer.body)).toBe(true);
        }
      }
    };
    await replayedByBoth();
    // Still live a second before the ttl ends, for both.
    await sleep(storedAt + SKEWED_TTL_MS - 1000 - Date.now());
    await replayedByBoth();

    // Over for both a second after: each instance runs the other one's key afresh.
    await sleep(storedAt + SKEWED_TTL_MS + 1000 - Date.now());
    for (const [instance, [{ key, body }, answer]] of [[behind, stored[0]], [ahead, stored[1]]] as const) {
      const fresh = await send(instance.url, 'POST', '/v1/exports', { key, body });
      expect([fresh.status, fresh.headers.get('idempotency-replayed')]).toEqual([202, null]);
      expect(fresh.body.equals(answer.body)).toBe(false);
    }
  });

  it.each([
    ['behind', 'ahead'],
    ['ahead', 'behind'],
  ] as const)(
    "holds the claim of a frozen owner (6 h %s) until its lease ends by the store's clock: the other instance (6 h %s) gets 409 before and takes it over after (R19, R20)",
    async (ownerSide, otherSide) => {
      const instances = { ahead, behind };
      const [owner, other] = [instances[ownerSide], instances[otherSide]];
      const request = exportRequest(1000);
      const first = send(owner.url, 'POST', '/v1/exports', request).catch((error: unknown) => error);
      const claimed = await eventually(async () => {
        const times = await store.record(request.key);
        return times?.state === 'in_flight' ? times : undefined;
      }, 500, 10);
      // Frozen, the owner renews nothing: its lease ends at most one lease from now, by the store's clock.
      owner.signal('SIGSTOP');
      try {
        expect(claimed.leaseExpiresAt - claimed.storeNow).toBeGreaterThan(0);
        expect(claimed.leaseExpiresAt - claimed.storeNow).toBeLessThanOrEqual(SKEWED_LEASE_MS);
        const early = await send(other.url, 'POST', '/v1/exports', request);
        expect([early.status, codeOf(early)]).toEqual([409, 'idempotency_conflict']);

        await sleep(SKEWED_LEASE_MS + 1000);
        const late = await send(other.url, 'POST', '/v1/exports', request);
        expect([late.status, late.headers.get('idempotency-replayed')]).toEqual([202, null]);
      } finally {
        owner.signal('SIGCONT');
      }
      // The resumed owner is fenced (R20); its answer is not what this test is about.
      await first;
    },
  );
});
