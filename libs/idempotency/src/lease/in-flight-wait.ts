import { setTimeout as sleep } from 'node:timers/promises';
import type { FoundRecord } from '../store/idempotency-store.js';

const FIRST_DELAY_MS = 25;
const MAX_DELAY_MS = 500;

/**
 * Polls a key that another request holds until it completes, disappears, or its lease ends, for at
 * most `budgetMs` (R11). Exponential backoff with jitter keeps many waiting retries from polling in
 * step; between polls nothing is held (no connection, no lock). Returns the last state seen.
 */
export async function waitForSettledRecord(
  first: FoundRecord,
  inspect: () => Promise<FoundRecord | undefined>,
  budgetMs: number,
): Promise<FoundRecord | undefined> {
  const deadline = performance.now() + budgetMs;
  let delay = FIRST_DELAY_MS;
  let last: FoundRecord | undefined = first;
  for (;;) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) return last;
    const jittered = delay * (0.5 + Math.random());
    await sleep(Math.min(jittered, remaining));
    last = await inspect();
    if (last === undefined || last.status === 'completed' || last.leaseRemainingMs <= 0) return last;
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}
