import { Inject, Injectable, Logger } from '@nestjs/common';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import { IdempotencyKeyReuseError } from '../errors/idempotency-key-reuse.error.js';
import { IdempotencyUnavailableError } from '../errors/idempotency-unavailable.error.js';
import { waitForSettledRecord } from '../lease/in-flight-wait.js';
import {
  IDEMPOTENCY_STORE,
  type Claim,
  type ClaimRequest,
  type FoundRecord,
  type IdempotencyStore,
  type StoredResponse,
} from '../store/idempotency-store.js';

/** A completed record whose response is to be handed back. */
export type CompletedRecord = Extract<FoundRecord, { status: 'completed' }>;

/** What acquiring a key gave: the right to run the work, or the stored outcome of an earlier run. */
export type Acquired =
  | { readonly kind: 'run'; readonly claim: Claim }
  | { readonly kind: 'replay'; readonly record: CompletedRecord };

/** How a caller wants a key acquired. */
export interface AcquirePolicy {
  /** How long to wait for a first attempt still in flight (R11). */
  readonly inFlightWaitMs: number;
  /** Status of the error for a key reused with another fingerprint (R10). */
  readonly mismatchStatus: number;
}

/**
 * The rules every idempotent unit of work follows, for HTTP routes and for `runOnce` alike:
 * claim the key; a different request is refused at once (R10); a first attempt in flight is
 * waited for, then replayed, or taken over if it died or released the key (R11, R20); a store that
 * cannot answer fails closed (R18). Each outcome is logged with its account, key and label (R27).
 */
@Injectable()
export class ClaimCoordinator {
  private readonly logger = new Logger('Idempotency');

  constructor(@Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore) {}

  async acquire(request: ClaimRequest, policy: AcquirePolicy): Promise<Acquired> {
    const outcome = await this.storeCall(request, () => this.store.claim(request));
    if (outcome.status === 'claimed') {
      this.log(request, 'fresh');
      return { kind: 'run', claim: outcome.claim };
    }
    this.assertSameRequest(request, outcome, policy);
    if (outcome.status === 'completed') return this.replay(request, outcome, 'replayed');

    const settled = await waitForSettledRecord(
      outcome,
      () => this.storeCall(request, () => this.store.inspect(request.account, request.key)),
      policy.inFlightWaitMs,
    );
    if (settled?.status === 'completed') {
      this.assertSameRequest(request, settled, policy);
      return this.replay(request, settled, 'waited');
    }
    if (settled === undefined || settled.leaseRemainingMs <= 0) {
      // The first attempt released the key or died while we waited: this retry may run it now.
      const retried = await this.storeCall(request, () => this.store.claim(request));
      if (retried.status === 'claimed') {
        this.log(request, 'takeover');
        return { kind: 'run', claim: retried.claim };
      }
      this.assertSameRequest(request, retried, policy);
      if (retried.status === 'completed') return this.replay(request, retried, 'waited');
    }
    this.log(request, 'conflict');
    throw new IdempotencyConflictError(policy.inFlightWaitMs / 1000);
  }

  /**
   * Stores the outcome of a run, or releases the key so it can run again. A store failure here is
   * logged, not thrown: the work has happened and its result is the truth the caller must get.
   */
  async settle(request: ClaimRequest, claim: Claim, response: StoredResponse | undefined, ttlMs: number): Promise<void> {
    try {
      if (response) {
        if (!(await this.store.complete(claim, response, ttlMs))) this.log(request, 'lost claim', 'warn');
      } else {
        await this.store.release(claim);
        this.log(request, 'released');
      }
    } catch (error) {
      this.logStoreError(request, error);
    }
  }

  /** Releases a claim whose work did not happen, logging rather than throwing on failure. */
  release(request: ClaimRequest, claim: Claim): Promise<void> {
    return this.settle(request, claim, undefined, 0);
  }

  /**
   * After a lost claim (R20): the record of the run that did complete, if it has; a failed read
   * counts as not yet, since the caller then answers as for a run still in flight.
   */
  async completedBy(request: ClaimRequest): Promise<CompletedRecord | undefined> {
    const found = await this.store.inspect(request.account, request.key).catch(() => undefined);
    return found?.status === 'completed' ? found : undefined;
  }

  log(request: ClaimRequest, outcome: string, level: 'debug' | 'warn' = 'debug'): void {
    // Skip building the line on the hot path when nobody would read it.
    if (!Logger.isLevelEnabled(level)) return;
    this.logger[level](`${outcome} account=${JSON.stringify(request.account)} key=${request.key} route=${request.route}`);
  }

  logStoreError(request: ClaimRequest, error: unknown): void {
    this.logger.error(`${request.route}: idempotency store error: ${error instanceof Error ? error.message : String(error)}`);
  }

  private replay(request: ClaimRequest, record: CompletedRecord, outcome: string): Acquired {
    this.log(request, outcome);
    return { kind: 'replay', record };
  }

  private assertSameRequest(request: ClaimRequest, found: FoundRecord, policy: AcquirePolicy): void {
    if (found.fingerprint === request.fingerprint) return;
    this.log(request, 'reuse');
    throw new IdempotencyKeyReuseError(policy.mismatchStatus);
  }

  private async storeCall<T>(request: ClaimRequest, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      this.logStoreError(request, error);
      this.log(request, 'unavailable', 'warn');
      throw new IdempotencyUnavailableError();
    }
  }
}
