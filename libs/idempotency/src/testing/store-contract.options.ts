import type { IdempotencyStore } from '../store/idempotency-store.js';

/** The store under test, and how to close what opening it opened. */
export interface StoreFixture {
  readonly store: IdempotencyStore;
  /** Runs once after the last case: close connections, drop the database, remove files. */
  teardown?(): Promise<void> | void;
}

/** What the contract suite needs from the author of a store. */
export interface StoreContractOptions {
  /**
   * Opens the store once, before the first case. Every case works in accounts of its own, so the
   * store may hold other records; the purge case only counts what it made.
   */
  createStore(): StoreFixture | Promise<StoreFixture>;
  /**
   * A lease and ttl the suite gives records it needs to see end (takeover, expiry, purge). It must
   * comfortably exceed a few store round trips: a record made with it must still be live when the
   * next call arrives. Default 500 ms.
   */
  shortLifetimeMs?: number;
  /**
   * How late the store may notice that a lease or ttl ended (clock granularity, a background
   * expiry), and how far apart its reported remaining times may be from elapsed time. Must be
   * smaller than `shortLifetimeMs`. Default 250 ms.
   */
  clockSlackMs?: number;
  /**
   * The store deletes expired records by itself (Redis key expiry, a database TTL), so
   * `purgeExpired` may find nothing to delete. The purge case then checks that expired records are
   * gone and live ones stay, rather than that `purgeExpired` counted them. Default false.
   */
  expiresRecordsItself?: boolean;
}

/** The options with their defaults, checked. */
export interface ContractTiming {
  readonly shortLifetimeMs: number;
  readonly clockSlackMs: number;
  readonly expiresRecordsItself: boolean;
  /** A lease or ttl no case outlives, however slow the store. */
  readonly longLifetimeMs: number;
}

const DEFAULT_SHORT_LIFETIME_MS = 500;
const DEFAULT_CLOCK_SLACK_MS = 250;
const LONG_LIFETIME_MS = 10 * 60_000;

export function contractTimingOf(options: StoreContractOptions): ContractTiming {
  const shortLifetimeMs = options.shortLifetimeMs ?? DEFAULT_SHORT_LIFETIME_MS;
  const clockSlackMs = options.clockSlackMs ?? DEFAULT_CLOCK_SLACK_MS;
  if (!Number.isInteger(shortLifetimeMs) || shortLifetimeMs <= 0) {
    throw new TypeError(`describeStoreContract: shortLifetimeMs must be a positive whole number of ms, got ${shortLifetimeMs}`);
  }
  if (!Number.isInteger(clockSlackMs) || clockSlackMs < 0 || clockSlackMs >= shortLifetimeMs) {
    // With the slack as large as the lifetime, "did this expiry move?" could not be told from noise.
    throw new TypeError(
      `describeStoreContract: clockSlackMs must be a whole number of ms from 0 to below shortLifetimeMs (${shortLifetimeMs}), ` +
        `got ${clockSlackMs}; raise shortLifetimeMs if the store's clock is coarse`,
    );
  }
  return { shortLifetimeMs, clockSlackMs, expiresRecordsItself: options.expiresRecordsItself ?? false, longLifetimeMs: LONG_LIFETIME_MS };
}
