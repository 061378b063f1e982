import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Claim, ClaimOutcome, ClaimRequest, FoundRecord, StoredResponse } from 'nestjs-idempotency';
import { InMemoryIdempotencyStore, type MemoryRecord } from './in-memory-store.js';

// Each store below is the in-memory reference store with one bug a real store could have. The
// contract suite must fail every one of them (test/store-contract-broken-stores.e2e-spec.ts).

/** Claims by reading, then writing after an await: concurrent claims all see a free key. */
export class ReadThenWriteClaimStore extends InMemoryIdempotencyStore {
  override async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    const existing = this.records.get(this.idOf(request.account, request.key));
    await nextTurn();
    return this.claimNow(request, existing);
  }
}

/** Claims a free key atomically, but takes over a dead one by reading, then writing after an await. */
export class ReadThenWriteTakeoverStore extends InMemoryIdempotencyStore {
  override async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    const existing = this.records.get(this.idOf(request.account, request.key));
    if (!existing || this.isLive(existing)) return this.claimNow(request, existing);
    await nextTurn();
    return this.claimNow(request, existing);
  }
}

/** Completes, renews and releases for whoever asks while the key is in flight: no owner check. */
export class UnfencedStore extends InMemoryIdempotencyStore {
  protected override mayWrite(record: MemoryRecord): boolean {
    return record.state === 'in_flight';
  }
}

/** Lets the owner overwrite, renew or release its own completed record. */
export class RewritableCompletedStore extends InMemoryIdempotencyStore {
  protected override mayWrite(record: MemoryRecord, claim: Claim): boolean {
    return record.ownerToken === claim.ownerToken;
  }
}

/** Refreshes a completed record's expiry whenever it is claimed again, as a "touch on read" cache would. */
export class ExpiryRefreshingClaimStore extends InMemoryIdempotencyStore {
  protected override onLiveRecordClaimed(record: MemoryRecord, request: ClaimRequest): MemoryRecord {
    if (record.state === 'completed') record.expiresAt = this.now() + request.ttlMs;
    return record;
  }
}

/** Extends the lease of an in-flight record whenever a retry claims it. */
export class LeaseRefreshingClaimStore extends InMemoryIdempotencyStore {
  protected override onLiveRecordClaimed(record: MemoryRecord, request: ClaimRequest): MemoryRecord {
    if (record.state === 'in_flight') record.leaseEndsAt = this.now() + request.leaseMs;
    return record;
  }
}

/** Lets an in-flight record die at its ttl as well as at its lease, as a key-value store's TTL would. */
export class TtlBoundClaimStore extends InMemoryIdempotencyStore {
  protected override isLive(record: MemoryRecord): boolean {
    return super.isLive(record) && !this.hasEnded(record.expiresAt);
  }
}

/** Refuses to complete once the lease has run out, even when nobody took the key over. */
export class LeaseCheckingCompleteStore extends InMemoryIdempotencyStore {
  override async complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const record = this.records.get(this.idOf(claim.account, claim.key));
    if (record && this.hasEnded(record.leaseEndsAt)) return false;
    return super.complete(claim, response, ttlMs);
  }
}

/** Treats an inspect as a sign of life and extends the lease, so a dead owner's key is kept while retries poll. */
export class LeaseRenewingInspectStore extends InMemoryIdempotencyStore {
  private readonly leases = new Map<string, number>();

  protected override claimNow(request: ClaimRequest, existing: MemoryRecord | undefined): ClaimOutcome {
    const outcome = super.claimNow(request, existing);
    if (outcome.status === 'claimed') this.leases.set(this.idOf(request.account, request.key), request.leaseMs);
    return outcome;
  }

  override async inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    const id = this.idOf(account, key);
    const record = this.records.get(id);
    if (record?.state === 'in_flight') record.leaseEndsAt = this.now() + (this.leases.get(id) ?? 0);
    return super.inspect(account, key);
  }
}

/** Never lets a completed record expire. */
export class NeverExpiringStore extends InMemoryIdempotencyStore {
  protected override isLive(record: MemoryRecord): boolean {
    return record.state === 'completed' || super.isLive(record);
  }
}

/** Reports when a record expires as a date (ms since the epoch) instead of how long it has left. */
export class ExpiryAsDateStore extends InMemoryIdempotencyStore {
  protected override reportedExpiry(record: MemoryRecord): number {
    return Math.round(performance.timeOrigin + record.expiresAt);
  }
}

/** Deletes every expired record in one call, whatever the limit. */
export class UnboundedPurgeStore extends InMemoryIdempotencyStore {
  protected override batchSize(): number {
    return Number.POSITIVE_INFINITY;
  }
}

/** Purges an in-flight claim once its ttl has passed, although its owner is still renewing the lease. */
export class LivePurgingStore extends InMemoryIdempotencyStore {
  protected override isPurgeable(record: MemoryRecord): boolean {
    return this.hasEnded(record.expiresAt);
  }
}

/** Keeps the body as UTF-8 text, so bytes that are not valid UTF-8 come back replaced. */
export class TextBodyStore extends InMemoryIdempotencyStore {
  protected override copyForStorage(response: StoredResponse): StoredResponse {
    return { ...super.copyForStorage(response), body: Buffer.from(response.body.toString('utf8')) };
  }
}

/** Compares keys case-insensitively, as a default MySQL collation does. */
export class CaseFoldingStore extends InMemoryIdempotencyStore {
  protected override idOf(account: string, key: string): string {
    return super.idOf(account, key.toLowerCase());
  }
}

/** Ignores trailing spaces in keys and accounts, as a PAD SPACE collation does. */
export class TrailingSpaceBlindStore extends InMemoryIdempotencyStore {
  protected override idOf(account: string, key: string): string {
    return super.idOf(account.trimEnd(), key.trimEnd());
  }
}

/** Joins account and key into one map key with a separator, so ("a:b", "c") and ("a", "b:c") meet. */
export class JoinedScopeStore extends InMemoryIdempotencyStore {
  protected override idOf(account: string, key: string): string {
    return `${account}:${key}`;
  }
}
