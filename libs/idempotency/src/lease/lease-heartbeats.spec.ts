import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, jest } from '@jest/globals';
import type { Claim, IdempotencyStore } from '../store/idempotency-store.js';
import { LeaseHeartbeats } from './lease-heartbeats.js';

const claim: Claim = { account: 'acme', key: 'k', fingerprint: 'f', ownerToken: 'owner-1' };

/** Records renewals; answers each with the next of `answers` (true when they run out). */
function renewingStore(answers: Array<boolean | Error> = []): { store: IdempotencyStore; renewals: number[] } {
  const renewals: number[] = [];
  const unused = (): never => {
    throw new Error('not used by heartbeats');
  };
  const store: IdempotencyStore = {
    claim: unused,
    inspect: unused,
    complete: unused,
    release: unused,
    purgeExpired: unused,
    renew: async (_claim, leaseMs) => {
      renewals.push(leaseMs);
      const answer = answers.shift() ?? true;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return { store, renewals };
}

describe('LeaseHeartbeats (R20)', () => {
  it('renews the lease every third of it while the handler runs, and not after stop()', async () => {
    // On a fake clock, so the test sees the schedule itself: a renewal every half or 5/6 of the
    // lease would keep a live claim too, but fewer renewals would fit in it before it ends.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    try {
      const renewedAt: number[] = [];
      const { store, renewals } = renewingStore();
      const renew = store.renew.bind(store);
      store.renew = (renewing, leaseMs) => (renewedAt.push(performance.now()), renew(renewing, leaseMs));
      const startedAt = performance.now();
      const heartbeat = new LeaseHeartbeats(store).start(claim, { leaseMs: 600, maxHoldMs: 10_000, onLost: () => undefined });
      await jest.advanceTimersByTimeAsync(2000);
      heartbeat.stop();
      await jest.advanceTimersByTimeAsync(2000);
      expect(renewedAt.map((at) => at - startedAt)).toEqual([200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000]);
      expect(renewals.every((leaseMs) => leaseMs === 600)).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });

  it('reports a lost claim once and stops renewing when the store says the claim was taken over', async () => {
    const { store, renewals } = renewingStore([true, false]);
    let lost = 0;
    new LeaseHeartbeats(store).start(claim, { leaseMs: 30, maxHoldMs: 10_000, onLost: () => lost++ });
    await sleep(150);
    expect(lost).toBe(1);
    expect(renewals.length).toBe(2);
  });

  it('keeps renewing through a store error, since the lease still holds', async () => {
    const { store, renewals } = renewingStore([new Error('connection lost'), true, true]);
    let lost = 0;
    const heartbeat = new LeaseHeartbeats(store).start(claim, { leaseMs: 30, maxHoldMs: 10_000, onLost: () => lost++ });
    await sleep(120);
    heartbeat.stop();
    expect(renewals.length).toBeGreaterThanOrEqual(3);
    expect(lost).toBe(0);
  });

  it('stops renewing after maxHoldMs, so a hung handler frees its key after one more lease', async () => {
    const { store, renewals } = renewingStore();
    // A renewal every 30 ms; none is started once 50 ms have passed.
    new LeaseHeartbeats(store).start(claim, { leaseMs: 90, maxHoldMs: 50, onLost: () => undefined });
    await sleep(250);
    const total = renewals.length;
    await sleep(100);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(2);
    expect(renewals.length).toBe(total);
  });

  it('stops every running heartbeat at application shutdown', async () => {
    const { store, renewals } = renewingStore();
    const heartbeats = new LeaseHeartbeats(store);
    heartbeats.start(claim, { leaseMs: 30, maxHoldMs: 10_000, onLost: () => undefined });
    heartbeats.start({ ...claim, key: 'other' }, { leaseMs: 30, maxHoldMs: 10_000, onLost: () => undefined });
    await sleep(50);
    heartbeats.onApplicationShutdown();
    const atShutdown = renewals.length;
    await sleep(100);
    expect(atShutdown).toBeGreaterThan(0);
    expect(renewals.length).toBe(atShutdown);
  });
});
