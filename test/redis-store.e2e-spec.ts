import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Module, Post, type INestApplication, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import {
  Idempotent,
  IdempotencyModule,
  StoreTimeoutError,
  type Claim,
  type ClaimOutcome,
  type ClaimRequest,
  type FoundRecord,
  type IdempotencyModuleOptions,
  type StoredResponse,
} from 'nestjs-idempotency';
import { describeStoreContract } from 'nestjs-idempotency/testing';
import request from 'supertest';
import { RedisIdempotencyStore, redisRecordKey } from '../libs/idempotency/src/store/redis-idempotency.store.js';
import type { HttpPlatform } from '../src/bootstrap.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { countOf } from './support/test-database.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
/** Every key this run makes starts with it; they are all deleted at the end (never FLUSHDB). */
const RUN_PREFIX = `idem-test-${randomUUID().slice(0, 8)}:`;

const LONG_MS = 60_000;
const SHORT_MS = 500;
/** How late a sleep may wake, and how far a round trip may move a remaining time. */
const SLACK_MS = 200;

const PLATFORMS: readonly HttpPlatform[] = ['express', 'fastify'];

const opened: Redis[] = [];

/** A client connected before use; a command caught by a dropped connection fails after one reconnect attempt. */
async function connectedClient(): Promise<Redis> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  opened.push(client);
  await client.connect();
  return client;
}

/** A client of a Redis behind the test's own proxy; it does not wait for the connection. */
function proxiedClient(proxy: TcpProxy): Redis {
  const client = new Redis({ host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  opened.push(client);
  return client;
}

let admin: Redis;

beforeAll(async () => {
  admin = await connectedClient();
});

afterAll(async () => {
  if (admin) await deleteKeys(`${RUN_PREFIX}*`);
  await Promise.all(opened.map(closeClient));
});

/** Disconnects at once (a client of a hung Redis would wait forever for QUIT) and waits for the socket to close. */
async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => {
    client.once('end', () => resolve());
    // A client waiting to reconnect has no socket left to close, and never says 'end'.
    timer = setTimeout(resolve, 500);
  });
  client.disconnect();
  await ended;
  clearTimeout(timer);
}

async function keysMatching(pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

async function deleteKeys(pattern: string): Promise<void> {
  const keys = await keysMatching(pattern);
  for (let start = 0; start < keys.length; start += 500) await admin.del(...keys.slice(start, start + 500));
}

/** The Redis server's clock, in ms. */
async function serverNowMs(): Promise<number> {
  const [seconds, micros] = (await admin.call('TIME')) as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

function fingerprintOf(n: number): string {
  return n.toString(16).padStart(64, '0');
}

function claimRequest(overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return {
    account: `acct-${randomUUID()}`,
    key: randomUUID(),
    fingerprint: fingerprintOf(0),
    ttlMs: LONG_MS,
    leaseMs: LONG_MS,
    route: 'POST /redis-store-test',
    ...overrides,
  };
}

function jsonResponse(label: string): StoredResponse {
  return { status: 201, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ label })) };
}

function claimedOf(outcome: ClaimOutcome): Claim {
  if (outcome.status !== 'claimed') throw new Error(`expected a claim, got a record "${outcome.status}"`);
  return outcome.claim;
}

function completedOf(found: FoundRecord | ClaimOutcome | undefined): Extract<FoundRecord, { status: 'completed' }> {
  if (found?.status !== 'completed') throw new Error(`expected the completed record, got ${found ? `"${found.status}"` : 'none'}`);
  return found;
}

/** Starts every call in the same tick, spread over the stores (so over several connections). */
function concurrently<T>(count: number, stores: readonly RedisIdempotencyStore[], call: (store: RedisIdempotencyStore, index: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => call(stores[index % stores.length], index)));
}

describe('RedisIdempotencyStore against a real Redis', () => {
  const keyPrefix = `${RUN_PREFIX}store:`;
  let stores: RedisIdempotencyStore[];
  let store: RedisIdempotencyStore;

  beforeAll(async () => {
    const clients = await Promise.all(Array.from({ length: 5 }, () => connectedClient()));
    stores = clients.map((client) => new RedisIdempotencyStore(client, { keyPrefix }));
    store = stores[0];
  });

  const recordKey = (request: ClaimRequest): string => redisRecordKey(keyPrefix, request.account, request.key);

  /** Everything Redis holds for a record: every field, byte for byte, and its absolute expiry. */
  async function snapshot(request: ClaimRequest): Promise<{ fields: Record<string, Buffer>; expiresAt: number }> {
    const key = recordKey(request);
    const [fields, expiresAt] = await Promise.all([admin.hgetallBuffer(key), admin.call('PEXPIRETIME', key) as Promise<number>]);
    return { fields, expiresAt };
  }

  async function field(request: ClaimRequest, name: string): Promise<number> {
    return Number(await admin.hget(recordKey(request), name));
  }

  it('of 50 concurrent claims of one free key, over 5 connections, exactly one wins and the 49 others read its record (R29, R8)', async () => {
    const base = claimRequest();
    const outcomes = await concurrently(50, stores, (each, index) => each.claim({ ...base, fingerprint: fingerprintOf(index) }));

    const winners = outcomes.flatMap((outcome, index) => (outcome.status === 'claimed' ? [index] : []));
    expect(winners).toHaveLength(1);
    const winner = fingerprintOf(winners[0]);
    for (const outcome of outcomes.filter((_, index) => index !== winners[0])) {
      expect(outcome).toMatchObject({ status: 'in_flight', fingerprint: winner });
    }
    expect(await store.inspect(base.account, base.key)).toMatchObject({ status: 'in_flight', fingerprint: winner });
  });

  it('a claim of a live record writes nothing, not its fields and not its Redis expiry, whether in flight or completed, same body or another (R16a, R10, R11, R29)', async () => {
    const request = claimRequest();
    const claim = claimedOf(await store.claim(request));
    const claimsOfLiveKey = () =>
      Promise.all([
        store.claim({ ...request, leaseMs: 2 * LONG_MS, ttlMs: 2 * LONG_MS }),
        store.claim({ ...request, fingerprint: fingerprintOf(1), leaseMs: 2 * LONG_MS, ttlMs: 2 * LONG_MS }),
      ]);

    const inFlight = await snapshot(request);
    const inFlightTtl = await admin.pttl(recordKey(request));
    await sleep(50);
    for (const outcome of await claimsOfLiveKey()) expect(outcome).toMatchObject({ status: 'in_flight', fingerprint: request.fingerprint });
    expect(await snapshot(request)).toEqual(inFlight);
    expect(await admin.pttl(recordKey(request))).toBeLessThanOrEqual(inFlightTtl - 40);

    expect(await store.complete(claim, jsonResponse('first'), LONG_MS)).toBe(true);
    const completed = await snapshot(request);
    const completedTtl = await admin.pttl(recordKey(request));
    await sleep(50);
    for (const outcome of await claimsOfLiveKey()) expect(completedOf(outcome).response.body.toString()).toBe('{"label":"first"}');
    expect(await snapshot(request)).toEqual(completed);
    expect(await admin.pttl(recordKey(request))).toBeLessThanOrEqual(completedTtl - 40);
  });

  it('takes a dead claim over only after its lease, by exactly one of 20 concurrent retries of the same request (R20, R29)', async () => {
    const request = claimRequest({ leaseMs: SHORT_MS });
    const first = claimedOf(await store.claim(request));

    const early = await concurrently(20, stores, (each) => each.claim(request));
    for (const outcome of early) expect(outcome.status).toBe('in_flight');

    await sleep(SHORT_MS + SLACK_MS);
    const late = await concurrently(20, stores, (each) => each.claim(request));
    expect(late.filter((outcome) => outcome.status === 'claimed')).toHaveLength(1);
    for (const outcome of late.filter((each) => each.status !== 'claimed')) {
      expect(outcome.status).toBe('in_flight');
      if (outcome.status === 'in_flight') expect(outcome.leaseRemainingMs).toBeGreaterThan(0);
    }
    expect(await store.complete(first, jsonResponse('first owner'), LONG_MS)).toBe(false);
  });

  it('after the lease, a request with another body still gets the in-flight record until the ttl has passed too, as on SQL (R10, R20)', async () => {
    const request = claimRequest({ leaseMs: 300, ttlMs: 1200 });
    claimedOf(await store.claim(request));
    await sleep(300 + SLACK_MS);

    const other = { ...request, fingerprint: fingerprintOf(1) };
    const blocked = await store.claim(other);
    expect(blocked).toMatchObject({ status: 'in_flight', fingerprint: request.fingerprint });
    if (blocked.status === 'in_flight') expect(blocked.leaseRemainingMs).toBeLessThanOrEqual(0);

    await sleep(1200 - 300);
    expect(claimedOf(await store.claim(other)).fingerprint).toBe(other.fingerprint);
  });

  it("fences an owner whose claim was taken over: its complete, renew and release return false and change no byte of the new owner's record (R20)", async () => {
    const request = claimRequest({ leaseMs: SHORT_MS });
    const stale = claimedOf(await store.claim(request));
    await sleep(SHORT_MS + SLACK_MS);
    const current = claimedOf(await store.claim({ ...request, leaseMs: LONG_MS }));
    expect(current.ownerToken).not.toBe(stale.ownerToken);

    const taken = await snapshot(request);
    expect(await store.complete(stale, jsonResponse('stale'), LONG_MS)).toBe(false);
    expect(await store.renew(stale, 3 * LONG_MS)).toBe(false);
    expect(await store.release(stale)).toBe(false);
    expect(await snapshot(request)).toEqual(taken);

    expect(await store.renew(current, LONG_MS)).toBe(true);
    expect(await store.complete(current, jsonResponse('current'), LONG_MS)).toBe(true);
    const completed = await snapshot(request);
    expect(await store.complete(stale, jsonResponse('stale again'), LONG_MS)).toBe(false);
    expect(await store.release(stale)).toBe(false);
    expect(await store.complete(current, jsonResponse('twice'), LONG_MS)).toBe(false);
    expect(await snapshot(request)).toEqual(completed);
  });

  it('complete ignores the lease: the only owner completes after its lease ran out, since nobody took over (R20)', async () => {
    const request = claimRequest({ leaseMs: SHORT_MS });
    const claim = claimedOf(await store.claim(request));
    await sleep(SHORT_MS + SLACK_MS);
    expect(await store.complete(claim, jsonResponse('late'), LONG_MS)).toBe(true);
    expect(completedOf(await store.claim(request)).response.body.toString()).toBe('{"label":"late"}');
  });

  it("renew moves the lease by the server's clock, and the Redis expiry with it, so the claim outlives its first lease (R20, R19)", async () => {
    const request = claimRequest({ leaseMs: SHORT_MS, ttlMs: SHORT_MS });
    const claim = claimedOf(await store.claim(request));
    const before = await serverNowMs();
    expect(await store.renew(claim, 5000)).toBe(true);
    const after = await serverNowMs();

    const leaseAt = await field(request, 'lease_at');
    expect(leaseAt).toBeGreaterThanOrEqual(before + 5000);
    expect(leaseAt).toBeLessThanOrEqual(after + 5000);
    expect((await snapshot(request)).expiresAt).toBe(leaseAt);

    await sleep(SHORT_MS + SLACK_MS);
    expect(await store.claim(request)).toMatchObject({ status: 'in_flight' });
    expect(await store.complete(claim, jsonResponse('renewed'), LONG_MS)).toBe(true);
  });

  it("a completed record expires by Redis TTL at the end of its ttl, counted from storing by the server's clock, and is free again afterwards (R12, R19)", async () => {
    const request = claimRequest();
    const claim = claimedOf(await store.claim(request));
    const before = await serverNowMs();
    expect(await store.complete(claim, jsonResponse('brief'), SHORT_MS)).toBe(true);
    const after = await serverNowMs();

    const expiresAt = await field(request, 'expires_at');
    expect(expiresAt).toBeGreaterThanOrEqual(before + SHORT_MS);
    expect(expiresAt).toBeLessThanOrEqual(after + SHORT_MS);
    expect((await snapshot(request)).expiresAt).toBe(expiresAt);
    const replay = completedOf(await store.inspect(request.account, request.key));
    expect(replay.expiresInMs).toBeGreaterThan(0);
    expect(replay.expiresInMs).toBeLessThanOrEqual(SHORT_MS);

    await sleep(SHORT_MS + SLACK_MS);
    expect(await admin.exists(recordKey(request))).toBe(0);
    expect(await store.inspect(request.account, request.key)).toBeUndefined();
    expect(claimedOf(await store.claim({ ...request, fingerprint: fingerprintOf(1) })).fingerprint).toBe(fingerprintOf(1));
  });

  it('an in-flight record gets the later of lease end and ttl end as its Redis expiry, at the claim and at each renewal, the moment any request could take it over (R20, R12)', async () => {
    // Each pair has one end well before the other, so neither end alone passes for "the later".
    const leaseLonger = claimRequest({ leaseMs: LONG_MS, ttlMs: SHORT_MS });
    const ttlLonger = claimRequest({ leaseMs: SHORT_MS, ttlMs: LONG_MS });
    const [leaseClaim, ttlClaim] = (await Promise.all([store.claim(leaseLonger), store.claim(ttlLonger)])).map(claimedOf);
    expect(await field(leaseLonger, 'lease_at')).toBeGreaterThan((await field(leaseLonger, 'expires_at')) + LONG_MS / 2);
    expect((await snapshot(leaseLonger)).expiresAt).toBe(await field(leaseLonger, 'lease_at'));
    expect(await field(ttlLonger, 'expires_at')).toBeGreaterThan((await field(ttlLonger, 'lease_at')) + LONG_MS / 2);
    expect((await snapshot(ttlLonger)).expiresAt).toBe(await field(ttlLonger, 'expires_at'));

    // A renewal to a lease that ends before the ttl keeps the ttl's end; one past it moves to the lease's.
    expect(await store.renew(ttlClaim, SHORT_MS)).toBe(true);
    expect((await snapshot(ttlLonger)).expiresAt).toBe(await field(ttlLonger, 'expires_at'));
    expect(await store.renew(leaseClaim, 2 * LONG_MS)).toBe(true);
    expect((await snapshot(leaseLonger)).expiresAt).toBe(await field(leaseLonger, 'lease_at'));
    expect(await field(leaseLonger, 'lease_at')).toBeGreaterThan((await field(leaseLonger, 'expires_at')) + LONG_MS);

    // And Redis keeps each record past its earlier end and deletes it after the later one.
    const shortLease = claimRequest({ leaseMs: 300, ttlMs: 1200 });
    const shortTtl = claimRequest({ leaseMs: 1200, ttlMs: 300 });
    await Promise.all([store.claim(shortLease), store.claim(shortTtl)]);
    await sleep(300 + SLACK_MS);
    expect(await admin.exists(recordKey(shortLease), recordKey(shortTtl))).toBe(2);
    await sleep(1200 - 300);
    expect(await admin.exists(recordKey(shortLease), recordKey(shortTtl))).toBe(0);
  });

  it('purgeExpired(3) returns 0 and keeps every live record: Redis has already deleted each record whose life ended, a completed one and a dead claim (R21, R29)', async () => {
    const expiring = Array.from({ length: 7 }, () => claimRequest());
    for (const request of expiring) {
      expect(await store.complete(claimedOf(await store.claim(request)), jsonResponse('expiring'), 200)).toBe(true);
    }
    const deadClaim = claimRequest({ leaseMs: 200, ttlMs: 200 });
    await store.claim(deadClaim);
    const live = claimRequest();
    expect(await store.complete(claimedOf(await store.claim(live)), jsonResponse('live'), LONG_MS)).toBe(true);
    // Past the ttl it was claimed with, but its lease lasts: its owner is still running.
    const running = claimRequest({ ttlMs: 200 });
    const runningClaim = claimedOf(await store.claim(running));
    await sleep(200 + SLACK_MS);

    expect(await store.purgeExpired(3)).toBe(0);
    for (const request of [...expiring, deadClaim]) expect(await admin.exists(recordKey(request))).toBe(0);
    expect(completedOf(await store.inspect(live.account, live.key)).response.body.toString()).toBe('{"label":"live"}');
    expect(await store.inspect(running.account, running.key)).toMatchObject({ status: 'in_flight' });
    expect(await store.complete(runningClaim, jsonResponse('running'), LONG_MS)).toBe(true);
  });

  it('inspect writes nothing: every field and the Redis expiry are the same before and after, in flight and completed (R11, R29)', async () => {
    const request = claimRequest();
    const claim = claimedOf(await store.claim(request));
    const inFlight = await snapshot(request);
    expect(await store.inspect(request.account, request.key)).toMatchObject({ status: 'in_flight', fingerprint: request.fingerprint });
    expect(await snapshot(request)).toEqual(inFlight);

    expect(await store.complete(claim, jsonResponse('done'), LONG_MS)).toBe(true);
    const completed = await snapshot(request);
    completedOf(await store.inspect(request.account, request.key));
    expect(await snapshot(request)).toEqual(completed);
  });

  it('keeps bodies as raw bytes: all 256 byte values and 1 MiB of random bytes, with multi-value headers, come back exactly from claim and inspect (R9, R29)', async () => {
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
    const responses: StoredResponse[] = [
      { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.concat([everyByte, Buffer.from(everyByte).reverse()]) },
      { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(1024 * 1024) },
      {
        status: 402,
        headers: { link: ['</a>; rel="first"', '</b>; rel="next"'], 'x-single': ['only'], 'content-language': '', 'content-disposition': 'attachment; filename="€.bin"' },
        body: Buffer.alloc(0),
      },
    ];
    for (const response of responses) {
      const request = claimRequest();
      expect(await store.complete(claimedOf(await store.claim(request)), response, LONG_MS)).toBe(true);
      for (const read of [await store.claim(request), await store.inspect(request.account, request.key)]) {
        const found = completedOf(read).response;
        expect(found.status).toBe(response.status);
        expect(found.headers).toEqual(response.headers);
        expect(Buffer.isBuffer(found.body)).toBe(true);
        expect(found.body.equals(response.body)).toBe(true);
      }
    }
  });

  it('keeps accounts and keys with ":" and unicode apart, ("a:b", "c") and ("a", "b:c") among them, each one Redis key under the keyPrefix (R5, R6)', async () => {
    const scopePrefix = `${RUN_PREFIX}scopes:`;
    const scoped = new RedisIdempotencyStore(admin, { keyPrefix: scopePrefix });
    const scopes: ReadonlyArray<readonly [string, string]> = [
      ['a:b', 'c'],
      ['a', 'b:c'],
      ['', 'a:b:c'],
      ['a:b:c', ''],
      ['1:a', 'b'],
      ['ключ', '🔑'],
      ['ключ:🔑', 'x'],
      ['e\u0301', 'k'],
      ['\u00e9', 'k'],
    ];
    for (const [account, key] of scopes) {
      const claim = claimedOf(await scoped.claim(claimRequest({ account, key })));
      expect(await scoped.complete(claim, jsonResponse(JSON.stringify([account, key])), LONG_MS)).toBe(true);
    }
    for (const [account, key] of scopes) {
      const found = completedOf(await scoped.inspect(account, key));
      expect(found.response.body.toString()).toBe(JSON.stringify({ label: JSON.stringify([account, key]) }));
    }
    const keys = await keysMatching(`${scopePrefix}*`);
    expect(keys).toHaveLength(scopes.length);
    expect(new Set(keys)).toEqual(new Set(scopes.map(([account, key]) => redisRecordKey(scopePrefix, account, key))));
  });

  it("says why atomic mode cannot work on Redis: the handler's writes and the record cannot commit in one transaction (R22)", () => {
    expect(store.atomicUnsupportedReason()).toMatch(/cannot commit in one transaction/);
    expect((store as { beginAtomic?: unknown }).beginAtomic).toBeUndefined();
  });
});

describe('RedisIdempotencyStore when Redis does not answer (R18)', () => {
  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = new TcpProxy('127.0.0.1', Number(new URL(REDIS_URL).port || 6379));
    await proxy.start();
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it('rejects claim, inspect, complete, renew and release with StoreTimeoutError within timeoutMs when Redis accepts the connection and never answers (R18)', async () => {
    proxy.blackhole();
    const hung = new RedisIdempotencyStore(proxiedClient(proxy), { keyPrefix: `${RUN_PREFIX}hung:`, timeoutMs: 300 });
    const request = claimRequest();
    const claim: Claim = { account: request.account, key: request.key, fingerprint: request.fingerprint, ownerToken: randomUUID() };
    const calls: ReadonlyArray<() => Promise<unknown>> = [
      () => hung.claim(request),
      () => hung.inspect(request.account, request.key),
      () => hung.complete(claim, jsonResponse('never'), LONG_MS),
      () => hung.renew(claim, LONG_MS),
      () => hung.release(claim),
    ];
    for (const call of calls) {
      const startedAt = performance.now();
      await expect(call()).rejects.toBeInstanceOf(StoreTimeoutError);
      expect(performance.now() - startedAt).toBeLessThan(300 + 500);
    }
  });

  it('serves again by itself once Redis answers again, with the same client (R18)', async () => {
    proxy.restore();
    const client = proxiedClient(proxy);
    const flaky = new RedisIdempotencyStore(client, { keyPrefix: `${RUN_PREFIX}flaky:`, timeoutMs: 300 });
    expect((await flaky.claim(claimRequest())).status).toBe('claimed');

    proxy.blackhole();
    await expect(flaky.claim(claimRequest())).rejects.toBeInstanceOf(StoreTimeoutError);

    proxy.restore();
    let outcome: ClaimOutcome | undefined;
    for (let attempt = 0; attempt < 50 && !outcome; attempt++) {
      outcome = await flaky.claim(claimRequest()).catch(() => sleep(100).then(() => undefined));
    }
    expect(outcome?.status).toBe('claimed');
  });
});

describe.each(PLATFORMS)('the probe app on %s with the Redis store', (platform) => {
  const keyPrefix = `${RUN_PREFIX}probe-${platform}:`;
  let probe: RunningProbeApp;

  beforeAll(async () => {
    const store = new RedisIdempotencyStore(await connectedClient(), { keyPrefix });
    // No replay cache: every replay below is read from Redis, not from this process's memory.
    probe = await startProbeApp({ database: 'sqlite', platform, suite: `redis_store_${platform}`, options: { store, replayCache: false } });
  });

  afterAll(async () => {
    await probe?.close();
  });

  const post = (key: string, body: object) => request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send(body);

  it('runs the handler for a fresh key and stores its response in Redis, not in the SQL table (R8, R13)', async () => {
    const key = randomUUID();
    const runsBefore = probe.runs.count('echo');
    const fresh = await post(key, { amount: 1 }).expect(201);
    expect(fresh.headers['idempotency-replayed']).toBeUndefined();
    expect(probe.runs.count('echo')).toBe(runsBefore + 1);
    expect(await admin.hget(redisRecordKey(keyPrefix, '', key), 'state')).toBe('completed');
    expect(await countOf(probe.dataSource, 'SELECT COUNT(*) AS n FROM idempotency_records')).toBe(0);
  });

  it('replays the stored response byte for byte with Idempotency-Replayed: true, without running the handler again (R9, R13)', async () => {
    const key = randomUUID();
    const fresh = await post(key, { amount: 2, note: 'zoë' }).buffer(true).expect(201);
    const runs = probe.runs.count('echo');
    const replay = await post(key, { amount: 2, note: 'zoë' }).buffer(true).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(Buffer.from(replay.text).equals(Buffer.from(fresh.text))).toBe(true);
    expect(replay.headers['content-type']).toBe(fresh.headers['content-type']);
    expect(probe.runs.count('echo')).toBe(runs);
  });

  it('answers another body with the same key with 422 idempotency_key_reuse, and the first response still replays (R10, R16a)', async () => {
    const key = randomUUID();
    const fresh = await post(key, { amount: 3 }).expect(201);
    const reuse = await post(key, { amount: 4 }).expect(422);
    expect(reuse.body.error.code).toBe('idempotency_key_reuse');
    const replay = await post(key, { amount: 3 }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(fresh.text);
  });
});

@Controller('orders')
class OrdersController {
  runs = 0;

  @Post()
  @Idempotent()
  create(@Body() body: Record<string, unknown>): Record<string, unknown> {
    return { run: ++this.runs, body };
  }
}

@Controller('charges')
class AtomicChargesController {
  @Post()
  @Idempotent({ atomic: true })
  charge(): Record<string, unknown> {
    return { charged: true };
  }
}

/** An app of the library and the given routes, and nothing else: no TypeORM module, no DataSource. */
async function startRedisOnlyApp(platform: HttpPlatform, options: IdempotencyModuleOptions, controllers: Type[]): Promise<INestApplication> {
  @Module({ imports: [IdempotencyModule.forRoot(options)], controllers })
  class RedisOnlyModule {}

  const settings = { logger: false as const, abortOnError: false };
  const app =
    platform === 'fastify'
      ? await NestFactory.create(RedisOnlyModule, new (await import('@nestjs/platform-fastify')).FastifyAdapter(), settings)
      : await NestFactory.create(RedisOnlyModule, settings);
  try {
    await app.init();
    if (platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
    return app;
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
}

describe.each(PLATFORMS)('an app on %s with the Redis store and no TypeORM', (platform) => {
  let proxy: TcpProxy;
  let app: INestApplication;
  let store: RedisIdempotencyStore;

  beforeAll(async () => {
    proxy = new TcpProxy('127.0.0.1', Number(new URL(REDIS_URL).port || 6379));
    await proxy.start();
    store = new RedisIdempotencyStore(proxiedClient(proxy), { keyPrefix: `${RUN_PREFIX}bare-${platform}:`, timeoutMs: 300 });
    app = await startRedisOnlyApp(platform, { store, replayCache: false }, [OrdersController]);
  });

  afterAll(async () => {
    await app?.close();
    await proxy?.stop();
  });

  const post = (key: string, body: object) => request(app.getHttpServer()).post('/orders').set('Idempotency-Key', key).send(body);

  it('starts and replays from Redis without any DataSource (R8, R9)', async () => {
    const key = randomUUID();
    const fresh = await post(key, { sku: 'a' }).expect(201);
    const replay = await post(key, { sku: 'a' }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(replay.text).toBe(fresh.text);
  });

  it('answers 503 idempotency_unavailable without running the handler while Redis hangs, and serves again once it answers (R18)', async () => {
    const orders = app.get(OrdersController);
    proxy.blackhole();
    const runs = orders.runs;
    const refused = await post(randomUUID(), { sku: 'b' }).expect(503);
    expect(refused.body.error.code).toBe('idempotency_unavailable');
    expect(orders.runs).toBe(runs);

    proxy.restore();
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 201; attempt++) {
      status = (await post(randomUUID(), { sku: 'c' })).status;
      if (status !== 201) await sleep(100);
    }
    expect(status).toBe(201);
  });

  it("refuses @Idempotent({ atomic: true }) at start-up with the Redis store's reason, naming the route (R22)", async () => {
    const refusal = await startRedisOnlyApp(platform, { store, replayCache: false }, [AtomicChargesController]).then(
      async (started) => {
        await started.close();
        return undefined;
      },
      (error: unknown) => error as Error,
    );
    expect(refusal).toBeInstanceOf(Error);
    expect(refusal?.message).toContain('AtomicChargesController.charge');
    expect(refusal?.message).toContain(store.atomicUnsupportedReason());
  });
});

describeStoreContract(
  'RedisIdempotencyStore by the store contract suite',
  {
    async createStore() {
      const client = await connectedClient();
      return { store: new RedisIdempotencyStore(client, { keyPrefix: `${RUN_PREFIX}contract:` }), teardown: () => closeClient(client) };
    },
    // Redis deletes each record at the end of its life: purgeExpired finds nothing to count.
    expiresRecordsItself: true,
  },
  { describe, beforeAll, afterAll, it },
);
