import { describe, expect, it, jest } from '@jest/globals';
import type { FoundRecord, StoredResponse } from '../store/idempotency-store.js';
import { waitForSettledRecord } from './in-flight-wait.js';

const inFlight: FoundRecord = { status: 'in_flight', fingerprint: 'f', leaseRemainingMs: 10_000 };
const response: StoredResponse = { status: 201, headers: {}, body: Buffer.from('{}') };
const completed: FoundRecord = { status: 'completed', fingerprint: 'f', response, expiresInMs: 60_000 };

describe('waitForSettledRecord (R11)', () => {
  it('polls until the first request completes and returns its record', async () => {
    const seen = [inFlight, inFlight, completed];
    let polls = 0;
    const result = await waitForSettledRecord(inFlight, async () => seen[polls++], 3000);
    expect(result).toBe(completed);
    expect(polls).toBe(3);
  });

  it('returns undefined as soon as the key is released', async () => {
    let polls = 0;
    const result = await waitForSettledRecord(inFlight, async () => (polls++ === 0 ? inFlight : undefined), 3000);
    expect(result).toBeUndefined();
    expect(polls).toBe(2);
  });

  it('returns at once when the lease of the owner has ended, so the caller may take over', async () => {
    const dead: FoundRecord = { status: 'in_flight', fingerprint: 'f', leaseRemainingMs: 0 };
    let polls = 0;
    const result = await waitForSettledRecord(inFlight, async () => (polls++, dead), 3000);
    expect(result).toBe(dead);
    expect(polls).toBe(1);
  });

  it('gives up after the budget with the last in-flight state, polling with growing gaps', async () => {
    // No jitter (the random factor at its middle, 1), so the schedule is exact: 25 ms, doubling up
    // to 500 ms. A timer only ever fires late, so each gap is at least its step; a fixed interval,
    // or one growing by a constant step, falls short of the doubling by the fourth gap at the latest.
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      const polledAt: number[] = [];
      const startedAt = performance.now();
      const result = await waitForSettledRecord(inFlight, async () => (polledAt.push(performance.now()), inFlight), 1500);
      const endedAt = performance.now();
      expect(result).toBe(inFlight);
      expect(endedAt - startedAt).toBeGreaterThanOrEqual(1500 - 1);
      // 25 + 50 + 100 + 200 + 400 + 500 = 1275 ms: six polls fit, then the rest of the budget.
      expect(polledAt.length).toBeGreaterThanOrEqual(6);
      const gaps = polledAt.map((at, index) => at - (index === 0 ? startedAt : polledAt[index - 1]));
      [25, 50, 100, 200, 400, 500].forEach((step, index) => expect(gaps[index]).toBeGreaterThanOrEqual(step - 1));
    } finally {
      random.mockRestore();
    }
  });

  it('with no budget, answers with the state it started from and never polls', async () => {
    let polls = 0;
    const result = await waitForSettledRecord(inFlight, async () => (polls++, completed), 0);
    expect(result).toBe(inFlight);
    expect(polls).toBe(0);
  });
});
