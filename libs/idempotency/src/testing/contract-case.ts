import { setTimeout as sleep } from 'node:timers/promises';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import type { ContractTiming } from './store-contract.options.js';

/** What every case gets: the store under test and the timing its author declared. */
export interface ContractContext extends ContractTiming {
  readonly store: IdempotencyStore;
}

/** One behaviour of the store contract; `run` rejects with an `AssertionError` when the store breaks it. */
export interface ContractCase {
  /** States the behaviour and the rules it proves, as the test's name. */
  readonly name: string;
  run(context: ContractContext): Promise<void>;
}

/** Waits until a lease or ttl of `shortLifetimeMs`, given before this call, has ended by the store's clock. */
export function waitPastShortLifetime(context: ContractContext): Promise<void> {
  return sleep(context.shortLifetimeMs + context.clockSlackMs);
}
