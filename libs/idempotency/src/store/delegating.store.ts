import { atomicUnsupportedReasonOf } from './atomic-support.js';
import type {
  AtomicClaimOutcome,
  AtomicUnit,
  Claim,
  ClaimOutcome,
  ClaimRequest,
  CompletedRecord,
  FoundRecord,
  IdempotencyStore,
  StoredResponse,
} from './idempotency-store.js';

/**
 * A store that hands every call to the store it wraps. Decorators (the replay cache, sealing) extend
 * it and override only what they change, so a call they do not touch still reaches the real store.
 */
export abstract class DelegatingStore implements IdempotencyStore {
  constructor(protected readonly store: IdempotencyStore) {}

  claim(request: ClaimRequest): Promise<ClaimOutcome> {
    return this.claimThrough(request, () => this.store.claim(request));
  }

  inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    return this.store.inspect(account, key);
  }

  complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    return this.store.complete(claim, response, ttlMs);
  }

  release(claim: Claim): Promise<boolean> {
    return this.store.release(claim);
  }

  renew(claim: Claim, leaseMs: number): Promise<boolean> {
    return this.store.renew(claim, leaseMs);
  }

  purgeExpired(limit: number): Promise<number> {
    return this.store.purgeExpired(limit);
  }

  atomicUnsupportedReason(): string | undefined {
    return atomicUnsupportedReasonOf(this.store);
  }

  beginAtomic(): AtomicUnit {
    if (!this.store.beginAtomic) throw new Error('nestjs-idempotency: this store cannot run atomic mode');
    const unit = this.store.beginAtomic();
    return {
      get manager() {
        return unit.manager;
      },
      claim: (request) => this.claimThrough(request, () => unit.claim(request)),
      renew: (claim, leaseMs) => unit.renew(claim, leaseMs),
      commitWith: (claim, response, ttlMs) => this.commitWithin(unit, claim, response, ttlMs),
      commitReleasing: (claim) => unit.commitReleasing(claim),
      rollback: () => unit.rollback(),
      interruption: () => unit.interruption?.(),
    };
  }

  /**
   * Every claim passes here, plain or inside an atomic unit of the wrapped store: `claiming` asks
   * the wrapped store. By default, its answer as given; a decorator may answer without asking, or
   * change a completed record on its way up, but adds no other outcome.
   */
  protected claimThrough<T extends AtomicClaimOutcome>(_request: ClaimRequest, claiming: () => Promise<T>): Promise<T | CompletedRecord> {
    return claiming();
  }

  /** Stores the response inside an atomic unit of the wrapped store; by default, as given. */
  protected commitWithin(unit: AtomicUnit, claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    return unit.commitWith(claim, response, ttlMs);
  }
}
