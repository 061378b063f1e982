import { randomUUID } from 'node:crypto';
import type { Claim, ClaimOutcome, ClaimRequest, FoundRecord, IdempotencyStore, StoredResponse } from 'nestjs-idempotency';

/** One (account, key) as the in-memory store keeps it. Times are ms on the process's monotonic clock. */
export interface MemoryRecord {
  fingerprint: string;
  ownerToken: string;
  state: 'in_flight' | 'completed';
  leaseEndsAt: number;
  /** In flight: the ttl counted from the claim, for purging a claim nobody came back for. */
  expiresAt: number;
  response?: StoredResponse;
}

/**
 * A store that keeps the contract, as the reference the broken stores in `broken-stores.ts` differ
 * from by one bug each. Its "database" is this process, so every method is one synchronous step:
 * atomic by construction. Each rule sits in a method of its own, so a broken store overrides one.
 */
export class InMemoryIdempotencyStore implements IdempotencyStore {
  protected readonly records = new Map<string, MemoryRecord>();

  async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    return this.claimNow(request, this.records.get(this.idOf(request.account, request.key)));
  }

  async inspect(account: string, key: string): Promise<FoundRecord | undefined> {
    const record = this.records.get(this.idOf(account, key));
    if (!record || (record.state === 'completed' && !this.isLive(record))) return undefined;
    return this.foundOf(record);
  }

  async complete(claim: Claim, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const record = this.records.get(this.idOf(claim.account, claim.key));
    if (!record || !this.mayWrite(record, claim)) return false;
    record.state = 'completed';
    record.response = this.copyForStorage(response);
    record.expiresAt = this.now() + ttlMs;
    return true;
  }

  async release(claim: Claim): Promise<boolean> {
    const id = this.idOf(claim.account, claim.key);
    const record = this.records.get(id);
    if (!record || !this.mayWrite(record, claim)) return false;
    this.records.delete(id);
    return true;
  }

  async renew(claim: Claim, leaseMs: number): Promise<boolean> {
    const record = this.records.get(this.idOf(claim.account, claim.key));
    if (!record || !this.mayWrite(record, claim)) return false;
    record.leaseEndsAt = this.now() + leaseMs;
    return true;
  }

  async purgeExpired(limit: number): Promise<number> {
    const expired = [...this.records].filter(([, record]) => this.isPurgeable(record)).slice(0, this.batchSize(limit));
    for (const [id] of expired) this.records.delete(id);
    return expired.length;
  }

  /** The atomic step: take a free or dead key, or report the live record unchanged. */
  protected claimNow(request: ClaimRequest, existing: MemoryRecord | undefined): ClaimOutcome {
    if (existing && this.isLive(existing)) return this.foundOf(this.onLiveRecordClaimed(existing, request));
    const ownerToken = randomUUID();
    const now = this.now();
    this.records.set(this.idOf(request.account, request.key), {
      fingerprint: request.fingerprint,
      ownerToken,
      state: 'in_flight',
      leaseEndsAt: now + request.leaseMs,
      expiresAt: now + request.ttlMs,
    });
    const { account, key, fingerprint } = request;
    return { status: 'claimed', claim: { account, key, fingerprint, ownerToken } };
  }

  protected now(): number {
    return performance.now();
  }

  protected hasEnded(time: number): boolean {
    return time <= this.now();
  }

  protected idOf(account: string, key: string): string {
    return JSON.stringify([account, key]);
  }

  protected isLive(record: MemoryRecord): boolean {
    return !this.hasEnded(record.state === 'completed' ? record.expiresAt : record.leaseEndsAt);
  }

  /** What a claim of a live record does to it: nothing (R16a). */
  protected onLiveRecordClaimed(record: MemoryRecord, _request: ClaimRequest): MemoryRecord {
    return record;
  }

  /** Fencing: only the current owner of a claim still in flight writes (R20). */
  protected mayWrite(record: MemoryRecord, claim: Claim): boolean {
    return record.state === 'in_flight' && record.ownerToken === claim.ownerToken;
  }

  protected isPurgeable(record: MemoryRecord): boolean {
    return this.hasEnded(record.expiresAt) && (record.state === 'completed' || this.hasEnded(record.leaseEndsAt));
  }

  protected batchSize(limit: number): number {
    return limit;
  }

  protected copyForStorage(response: StoredResponse): StoredResponse {
    return copyOf(response);
  }

  protected foundOf(record: MemoryRecord): FoundRecord {
    const now = this.now();
    if (record.state === 'in_flight') {
      return { status: 'in_flight', fingerprint: record.fingerprint, leaseRemainingMs: record.leaseEndsAt - now };
    }
    const response = record.response;
    if (!response) throw new Error('in-memory store: a completed record without its response');
    return {
      status: 'completed',
      fingerprint: record.fingerprint,
      response: copyOf(response),
      expiresInMs: this.reportedExpiry(record, now),
    };
  }

  protected reportedExpiry(record: MemoryRecord, now: number): number {
    return record.expiresAt - now;
  }
}

/** A copy that shares no buffer or array with the caller's, as a database round trip would. */
function copyOf(response: StoredResponse): StoredResponse {
  const headers = Object.fromEntries(
    Object.entries(response.headers).map(([name, value]) => [name, Array.isArray(value) ? [...value] : value]),
  );
  return { status: response.status, headers, body: Buffer.from(response.body) };
}
