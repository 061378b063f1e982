/**
 * Full-jitter exponential backoff: a uniform wait in [0, min(maxDelayMs, baseDelayMs * 2^(retry-1))).
 * Jitter over the whole range, not around the exponential value, is what spreads a crowd of clients
 * that failed together (one dropped connection pool, one 503) instead of retrying in step.
 */
export function fullJitterDelayMs(retry: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  // The exponent is capped so that 2 ** n never reaches Infinity on a budget-only (unbounded) retry count.
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(Math.max(retry - 1, 0), 30));
  return Math.floor(random() * ceiling);
}
