import { setTimeout as sleep } from 'node:timers/promises';
import type { FoundRecord } from '../store/idempotency-store.js';

const FIRST_DELAY_MS = 25;
const MAX_DELAY_MS = 500;

/**
 * Calls `poll` until it answers something, for at most `budgetMs`, and returns that answer, or
 * undefined when the budget ran out (R11). Exponential backoff with jitter keeps many waiting
 * retries from polling in step; between polls nothing is held (no connection, no lock).
 */
export async function pollWithBackoff<T>(budgetMs: number, poll: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = performance.now() + budgetMs;
  let delay = FIRST_DELAY_MS;
  for (;;) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) return undefined;
    const jittered = delay * (0.5 + Math.random());
    await sleep(Math.min(jittered, remaining));
    const answer = await poll();
    if (answer !== undefined) return answer;
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}

// Wrapped, because "the key is free" (no record) is itself an answer that ends the wait.
type SettledState = { readonly record: FoundRecord | undefined };

/**
 * Polls a key that another request holds until it completes, disappears, or its lease ends, for at
 * most `budgetMs` (R11). Returns the last state seen.
 */
export async function waitForSettledRecord(
  first: FoundRecord,
  inspect: () => Promise<FoundRecord | undefined>,
  budgetMs: number,
): Promise<FoundRecord | undefined> {
  let last: FoundRecord | undefined = first;
  const settled = await pollWithBackoff(budgetMs, async (): Promise<SettledState | undefined> => {
    last = await inspect();
    return last === undefined || last.status === 'completed' || last.leaseRemainingMs <= 0 ? { record: last } : undefined;
  });
  return settled ? settled.record : last;
}
