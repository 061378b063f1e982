import type {
  AtomicClaimOutcome,
  AtomicUnit,
  Claim,
  ClaimRequest,
  CompletedRecord,
  FoundRecord,
  IdempotencyStore,
  StoredResponse,
} from './idempotency-store.js';
import { DelegatingStore } from './delegating.store.js';

/** Limits of the in-process cache of completed responses. */
export interface ReplayCacheOptions {
  /** Responses kept at most. Default 1000. */
  maxEntries?: number;
  /** Bytes of response bodies kept at most. Default 8 MiB. */
  maxBytes?: number;
  /** How long one instance trusts a cached response before asking the store again. Default 60 s. */
  maxAgeMs?: number;
}


interface Entry {
  readonly record: CompletedRecord;
  /** performance.now() after which the entry is not used: never later than the record's expiry. */
  readonly usableUntil: number;
  /** performance.now() at which the record expires, as the database reported it. */
  readonly expiresAt: number;
}

const DEFAULTS: Required<ReplayCacheOptions> = { maxEntries: 1000, maxBytes: 8 * 1024 * 1024, maxAgeMs: 60_000 };

/**
 * Wraps a store with a cache of completed records, so a retry storm on one instance is answered
 * without a database round trip. This is safe because a completed record never changes before it
 * expires: no method of the store contract writes a live completed record (only an expired one is
 * taken over, only an expired one is purged).
 *
 * Time: an entry is used only for the record's remaining life *as the database reported it*,
 * counted on this process's monotonic clock from before the request was sent, so it ends no later
 * than the database's expiry (R19: no wall clock is compared with a stored time), and at most
 * `maxAgeMs`, which bounds clock-rate drift and how long an operator's manual deletion goes unseen.
 */
export class ReplayCachingStore extends DelegatingStore {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly limits: Required<ReplayCacheOptions>;

  constructor(store: IdempotencyStore, options: ReplayCacheOptions = {}) {
    super(store);
    this.limits = { ...DEFAULTS, ...options };
  }

  // A cached replay asks nothing of the wrapped store: in atomic mode the unit is never started.
  protected override async claimThrough<T extends AtomicClaimOutcome>(
    request: ClaimRequest,
    claiming: () => Promise<T>,
  ): Promise<T | CompletedRecord> {
    const cached = this.lookup(request.account, request.key);
    if (cached) return cached;
    const sentAt = performance.now();
    const outcome = await claiming();
    if (outcome.status === 'completed') this.remember(request.account, request.key, outcome, sentAt);
    return outcome;
  }

  override async inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    const sentAt = performance.now();
    const found = await this.store.inspect(account, key);
    if (found?.status === 'completed') this.remember(account, key, found, sentAt);
    return found;
  }

  override async complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    // Counted from before the write: the database's expiry is later than this.
    const sentAt = performance.now();
    const completed = await this.store.complete(claim, response, ttlMs);
    if (completed) this.rememberCompleted(claim, response, ttlMs, sentAt);
    return completed;
  }

  protected override async commitWithin(unit: AtomicUnit, claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const sentAt = performance.now();
    const committed = await unit.commitWith(claim, response, ttlMs);
    if (committed) this.rememberCompleted(claim, response, ttlMs, sentAt);
    return committed;
  }

  private rememberCompleted(claim: Claim, response: StoredResponse, ttlMs: number, sentAt: number): void {
    const record: CompletedRecord = { status: 'completed', fingerprint: claim.fingerprint, response, expiresInMs: ttlMs };
    this.remember(claim.account, claim.key, record, sentAt);
  }






  private lookup(account: string, key: string): CompletedRecord | undefined {
    const id = cacheKey(account, key);
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    const now = performance.now();
    if (now >= entry.usableUntil) {
      this.forget(id, entry);
      return undefined;
    }
    // Most recently used last: eviction takes from the front.
    this.entries.delete(id);
    this.entries.set(id, entry);
    // The remaining life as of this read, as the store contract says, not as of the cached one.
    return { ...entry.record, expiresInMs: Math.floor(entry.expiresAt - now) };
  }

  private remember(account: string, key: string, record: CompletedRecord, sentAt: number): void {
    const size = record.response.body.length;
    if (size > this.limits.maxBytes) return;
    const id = cacheKey(account, key);
    const previous = this.entries.get(id);
    if (previous) this.forget(id, previous);
    const usableUntil = sentAt + Math.min(record.expiresInMs, this.limits.maxAgeMs);
    this.entries.set(id, { record, usableUntil, expiresAt: sentAt + record.expiresInMs });
    this.bytes += size;
    for (const [oldestId, oldest] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) break;
      this.forget(oldestId, oldest);
    }
  }

  private forget(id: string, entry: Entry): void {
    this.entries.delete(id);
    this.bytes -= entry.record.response.body.length;
  }
}

function cacheKey(account: string, key: string): string {
  // The length prefix keeps ("a:b", "c") and ("a", "b:c") apart.
  return `${account.length}:${account}:${key}`;
}
