import type { IdempotencyStore } from './idempotency-store.js';

/**
 * Why `store` cannot run atomic mode, or undefined when it can. The store's own reason comes first,
 * so that a store wrapped by the replay cache or by encryption still says why in its own words.
 */
export function atomicUnsupportedReasonOf(store: IdempotencyStore): string | undefined {
  return (
    store.atomicUnsupportedReason?.() ??
    (store.beginAtomic ? undefined : 'the configured store has no transactions (it does not implement beginAtomic).')
  );
}
