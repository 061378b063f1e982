import { describe, expect, it } from '@jest/globals';
import { parseRetryAfterMs } from './retry-after.js';

const now = Date.UTC(2026, 10, 28, 12, 0, 0);

describe('parseRetryAfterMs', () => {
  it.each([
    ['0', 0],
    ['1', 1_000],
    ['120', 120_000],
    [' 3 ', 3_000],
  ])('reads delay-seconds %p as %i ms (R11, R28)', (value, ms) => {
    expect(parseRetryAfterMs(value, now)).toBe(ms);
  });

  it.each([
    ['Sat, 28 Nov 2026 12:00:05 GMT', 5_000],
    ['Saturday, 28-Nov-26 12:01:00 GMT', 60_000],
    ['Sat Nov 28 12:00:30 2026', 30_000],
    ['Sat Nov  8 12:00:00 2026', 0],
  ])('reads the HTTP-date %p as the time left until it, in UTC (R28)', (value, ms) => {
    expect(parseRetryAfterMs(value, now)).toBe(ms);
  });

  it('reads a date in the past as no wait at all', () => {
    expect(parseRetryAfterMs('Fri, 27 Nov 2026 12:00:00 GMT', now)).toBe(0);
  });

  it('reads a two-digit RFC 850 year more than 50 years ahead as the past century', () => {
    expect(parseRetryAfterMs('Sunday, 06-Nov-94 08:49:37 GMT', now)).toBe(0);
  });

  it.each([null, undefined, '', '1.5', '-1', '1e3', 'soon', '2026-11-28T12:00:05Z', 'Sat, 28 Nov 2026 12:00:05 PST', 'Sat, 32 Nov 2026 12:00:05 GMT'])(
    'gives up on %p, so the client falls back to its own backoff',
    (value) => {
      expect(parseRetryAfterMs(value, now)).toBeUndefined();
    },
  );
});
