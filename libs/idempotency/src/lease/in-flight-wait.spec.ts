import { describe, expect, it } from '@jest/globals';
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
    let polls = 0;
    const result = await waitForSettledRecord(inFlight, async () => (polls++, inFlight), 400);
    expect(result).toBe(inFlight);
    // Backoff from 25 ms doubling (with jitter) fits far fewer polls in 400 ms than a fixed 25 ms would (16).
    expect(polls).toBeGreaterThan(1);
    expect(polls).toBeLessThan(10);
  });

  it('with no budget, answers with the state it started from and never polls', async () => {
    let polls = 0;
    const result = await waitForSettledRecord(inFlight, async () => (polls++, completed), 0);
    expect(result).toBe(inFlight);
    expect(polls).toBe(0);
  });
});
