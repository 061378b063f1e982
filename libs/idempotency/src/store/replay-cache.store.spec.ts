import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, jest } from '@jest/globals';
import type { ClaimOutcome, ClaimRequest, FoundRecord, IdempotencyStore, StoredResponse } from './idempotency-store.js';
import { ReplayCachingStore } from './replay-cache.store.js';

const response = (text: string): StoredResponse => ({ status: 201, headers: {}, body: Buffer.from(text) });

/** An inner store whose every key is completed with `expiresInMs`; counts the claims it answers. */
function completedStore(expiresInMs: number) {
  const calls = { claim: 0, inspect: 0 };
  const record = (key: string): FoundRecord => ({
    status: 'completed',
    fingerprint: 'fp',
    response: response(`body of ${key}`),
    expiresInMs,
  });
  const store: IdempotencyStore = {
    claim: async (request: ClaimRequest): Promise<ClaimOutcome> => (calls.claim++, record(request.key)),
    inspect: async (_account, key) => (calls.inspect++, record(key)),
    complete: async () => true,
    release: async () => true,
    renew: async () => true,
    purgeExpired: async () => 0,
  };
  return { store, calls };
}

const claimOf = (key: string, account = 'acme'): ClaimRequest => ({
  account,
  key,
  fingerprint: 'fp',
  ttlMs: 60_000,
  leaseMs: 60_000,
  route: 'POST /x',
});

describe('ReplayCachingStore (R9, R12, R19)', () => {
  it('answers a repeated claim of a completed key from memory, with the same record and its remaining life as of the read', async () => {
    const { store, calls } = completedStore(60_000);
    const cached = new ReplayCachingStore(store);
    const first = await cached.claim(claimOf('k'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const second = await cached.claim(claimOf('k'));
    expect(calls.claim).toBe(1);
    if (first.status !== 'completed' || second.status !== 'completed') throw new Error('expected completed records');
    expect({ ...second, expiresInMs: 0 }).toEqual({ ...first, expiresInMs: 0 });
    expect(second.expiresInMs).toBeLessThanOrEqual(first.expiresInMs - 25);
    expect(second.expiresInMs).toBeGreaterThan(first.expiresInMs - 5_000);
  });

  it('keeps accounts apart: the same key of another account goes to the store', async () => {
    const { store, calls } = completedStore(60_000);
    const cached = new ReplayCachingStore(store);
    await cached.claim(claimOf('k', 'acme'));
    await cached.claim(claimOf('k', 'globex'));
    await cached.claim(claimOf('k', 'acme:'));
    expect(calls.claim).toBe(3);
  });

  it("stops using an entry when the record expires by the database's count, never later", async () => {
    // The cache's clock (performance.now) is the test's: the claim is sent at 1000 and answered at
    // 1100, with 400 ms left by the database's count at some moment in between. The entry must end
    // at 1400 (counted from the sending, the earliest that moment can be), not a millisecond later.
    let now = 1000;
    const clock = jest.spyOn(performance, 'now').mockImplementation(() => now);
    try {
      const { store, calls } = completedStore(400);
      const claim = store.claim.bind(store);
      store.claim = async (request) => {
        now += 100;
        return claim(request);
      };
      const cached = new ReplayCachingStore(store);
      await cached.claim(claimOf('k'));
      expect(calls.claim).toBe(1);
      now = 1399;
      const lastCached = await cached.claim(claimOf('k'));
      expect(calls.claim).toBe(1);
      expect(lastCached).toMatchObject({ status: 'completed', expiresInMs: 1 });
      now = 1400;
      await cached.claim(claimOf('k'));
      expect(calls.claim).toBe(2);
    } finally {
      clock.mockRestore();
    }
  });

  it('asks the store again after maxAgeMs even when the record lives longer', async () => {
    const { store, calls } = completedStore(60_000);
    const cached = new ReplayCachingStore(store, { maxAgeMs: 30 });
    await cached.claim(claimOf('k'));
    await sleep(50);
    await cached.claim(claimOf('k'));
    expect(calls.claim).toBe(2);
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const { store, calls } = completedStore(60_000);
    const cached = new ReplayCachingStore(store, { maxEntries: 2 });
    await cached.claim(claimOf('a'));
    await cached.claim(claimOf('b'));
    await cached.claim(claimOf('a')); // a is now the most recent
    await cached.claim(claimOf('c')); // evicts b
    expect(calls.claim).toBe(3);
    await cached.claim(claimOf('a'));
    expect(calls.claim).toBe(3);
    await cached.claim(claimOf('b'));
    expect(calls.claim).toBe(4);
  });

  it('keeps the bodies it holds within maxBytes and never caches a body larger than that', async () => {
    const { store, calls } = completedStore(60_000);
    const cached = new ReplayCachingStore(store, { maxBytes: 30 });
    await cached.claim(claimOf('first')); // "body of first" = 13 bytes
    await cached.claim(claimOf('second')); // 14 bytes, 27 in all
    await cached.claim(claimOf('third')); // 13 more: the oldest goes
    await cached.claim(claimOf('first'));
    expect(calls.claim).toBe(4);
    const inner = completedStore(60_000);
    const tinyOverInner = new ReplayCachingStore(inner.store, { maxBytes: 5 });
    await tinyOverInner.claim(claimOf('k'));
    await tinyOverInner.claim(claimOf('k'));
    expect(inner.calls.claim).toBe(2);
  });

  it("caches what this instance completed, under the claim's fingerprint", async () => {
    const { store, calls } = completedStore(60_000);
    const cached = new ReplayCachingStore(store);
    const claim = { account: 'acme', key: 'mine', fingerprint: 'mine-fp', ownerToken: 't' };
    await cached.complete(claim, response('stored here'), 60_000);
    const outcome = await cached.claim({ ...claimOf('mine'), fingerprint: 'other' });
    expect(calls.claim).toBe(0);
    expect(outcome).toMatchObject({ status: 'completed', fingerprint: 'mine-fp' });
  });
});
