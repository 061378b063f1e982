import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { IdempotencyService } from 'nestjs-idempotency';
import request from 'supertest';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { queryRows, type DatabaseKind } from './support/test-database.js';

const TTL_MS = 1500;
const DAY_MS = 24 * 60 * 60 * 1000;

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

/** Runs `work` while the application's clock (`Date.now`) reads one day ahead. */
async function withApplicationClockOneDayAhead<T>(work: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  Date.now = () => realNow.call(Date) + DAY_MS;
  try {
    return await work();
  } finally {
    Date.now = realNow;
  }
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

  it('stores creation and expiry times read from the database clock (R19)', async () => {
    const key = randomUUID();
    await echo(key, { clock: 'db' }).expect(201);
    const times = await recordTimes(probe, key);
    const now = await databaseNowMs(probe, database);
    expect(Math.abs(now - times.createdAt)).toBeLessThan(5000);
    expect(times.expiresAt - times.createdAt).toBeGreaterThanOrEqual(TTL_MS);
    expect(times.expiresAt - times.createdAt).toBeLessThan(TTL_MS + 5000);
  });

  it('decides expiry by the database clock, not the application clock running a day ahead (R19)', async () => {
    const storedBefore = randomUUID();
    const storedDuring = randomUUID();
    const first = await echo(storedBefore, { skew: 1 }).expect(201);
    const runs = probe.runs.count('echo');

    const [replay, fresh, freshReplay] = await withApplicationClockOneDayAhead(async () => {
      const replayed = await echo(storedBefore, { skew: 1 });
      const created = await echo(storedDuring, { skew: 2 });
      const again = await echo(storedDuring, { skew: 2 });
      return [replayed, created, again] as const;
    });

    expect(replay.status).toBe(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(first.text);
    expect(fresh.status).toBe(201);
    expect(fresh.headers['idempotency-replayed']).toBeUndefined();
    expect(freshReplay.headers['idempotency-replayed']).toBe('true');
    expect(freshReplay.text).toBe(fresh.text);
    expect(probe.runs.count('echo')).toBe(runs + 1);

    // The record written while the application's clock was a day ahead carries the database's time.
    const times = await recordTimes(probe, storedDuring);
    const now = await databaseNowMs(probe, database);
    expect(Math.abs(now - times.createdAt)).toBeLessThan(5000);
    expect(times.expiresAt - now).toBeLessThan(TTL_MS + 5000);
    // And after the restore it still replays: nothing was stored a day in the future.
    const afterRestore = await echo(storedDuring, { skew: 2 }).expect(201);
    expect(afterRestore.headers['idempotency-replayed']).toBe('true');
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
