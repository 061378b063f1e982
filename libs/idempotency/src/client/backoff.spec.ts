import { describe, expect, it } from '@jest/globals';
import { fullJitterDelayMs } from './backoff.js';

describe('fullJitterDelayMs', () => {
  it('doubles the ceiling with each retry, from the base (R28)', () => {
    const top = () => 0.999_999;
    expect([1, 2, 3, 4].map((retry) => fullJitterDelayMs(retry, 100, 10_000, top))).toEqual([99, 199, 399, 799]);
  });

  it('never exceeds maxDelayMs, however many retries (R28)', () => {
    expect(fullJitterDelayMs(12, 100, 1_000, () => 0.999_999)).toBe(999);
    expect(fullJitterDelayMs(10_000, 100, 1_000, () => 0.999_999)).toBe(999);
  });

  it('draws anywhere from 0 up to the ceiling, so clients that failed together spread out (R28)', () => {
    expect(fullJitterDelayMs(3, 100, 10_000, () => 0)).toBe(0);
    expect(fullJitterDelayMs(3, 100, 10_000, () => 0.5)).toBe(200);
    const draws = Array.from({ length: 500 }, () => fullJitterDelayMs(3, 100, 10_000));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(400);
    expect(new Set(draws).size).toBeGreaterThan(50);
  });

  it('waits nothing with a base of 0', () => {
    expect(fullJitterDelayMs(5, 0, 1_000, () => 0.9)).toBe(0);
  });
});
