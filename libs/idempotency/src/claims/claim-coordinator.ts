import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import { IdempotencyKeyReuseError } from '../errors/idempotency-key-reuse.error.js';
import { IdempotencyUnavailableError } from '../errors/idempotency-unavailable.error.js';
import type { IdempotencyStoreOperation } from '../observability/idempotency-channels.js';
import { RequestObservation, type ObservedSource, type RunOutcome } from '../observability/request-observation.js';
import { loadOpenTelemetry } from '../observability/request-tracing.js';
import type { ResolvedRouteOptions } from '../idempotency.options.js';
import { pollWithBackoff, waitForSettledRecord } from '../lease/in-flight-wait.js';
import type { HeartbeatPlan } from '../lease/lease-heartbeats.js';
import { TransactionLostRaceError } from '../store/lost-race.error.js';
import { StoreReplicationError } from '../store/store-replication.error.js';
import {
  IDEMPOTENCY_STORE,
  type AtomicClaimOutcome,
  type AtomicInterruption,
  type AtomicUnit,
  type Claim,
  type ClaimRequest,
  type CompletedRecord,
  type FoundRecord,
  type IdempotencyStore,
  type StoredResponse,
} from '../store/idempotency-store.js';


/** What acquiring a key gave: the right to run the work, or the stored outcome of an earlier run. */
export type Acquired =
  | { readonly kind: 'run'; readonly claim: Claim; readonly observation: RequestObservation }
  | { readonly kind: 'replay'; readonly record: CompletedRecord };

/** What acquiring a key for atomic work gave: its open transaction with the claim in it, or a stored outcome. */
export type AtomicAcquired =
  | { readonly kind: 'run'; readonly claim: Claim; readonly observation: RequestObservation; readonly unit: AtomicUnit }
  | { readonly kind: 'replay'; readonly record: CompletedRecord };

/**
 * How an atomic run ended when it tried to commit its response. `lost_race`: another transaction
 * committed the key first (a Galera certification conflict) and this one was rolled back.
 */
export type AtomicCommit = 'committed' | 'lost_claim' | 'lost_race' | 'failed';

/**
 * How a run's outcome was settled. `unconfirmed`: the store took the response but could not
 * confirm it durable (too few replicas acknowledged it), so its caller must not be told it is.
 */
export type Settlement = 'settled' | 'unconfirmed';

/**
 * The lease a run still holds once its work is done: until when (monotonic, `performance.now()`),
 * and how long each renewal extends it. Settling retries a failed store write within it (R20a).
 */
export interface HeldLease {
  readonly endsAt: number;
  readonly leaseMs: number;
}

// A failed completion is retried from this delay, doubling up to the cap, while the lease holds.
const SETTLE_RETRY_FIRST_DELAY_MS = 50;
const SETTLE_RETRY_MAX_DELAY_MS = 1000;

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
 * cannot answer fails closed (R18). Each outcome is logged with its account, key and label, and
 * published, once per request, on the outcome channel with its timings (R27).
 */
@Injectable()
export class ClaimCoordinator implements OnModuleInit {
  private readonly logger = new Logger('Idempotency');

  constructor(@Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore) {}

  // Before the first request, so that its spans are not lost to a load still under way.
  onModuleInit(): Promise<void> {
    return loadOpenTelemetry();
  }

  async acquire(request: ClaimRequest, policy: AcquirePolicy, source: ObservedSource): Promise<Acquired> {
    const observation = new RequestObservation(request, source);
    const outcome = await this.storeCall(request, observation, 'claim', () => this.store.claim(request));
    if (outcome.status === 'claimed') {
      this.log(request, 'fresh');
      observation.claimed('fresh');
      return { kind: 'run', claim: outcome.claim, observation };
    }
    this.assertSameRequest(request, outcome, policy, observation);
    if (outcome.status === 'completed') return this.replay(request, outcome, 'replayed', observation);

    const settled = await observation.waiting(() =>
      waitForSettledRecord(
        outcome,
        () => this.storeCall(request, observation, 'inspect', () => this.store.inspect(request.account, request.key)),
        policy.inFlightWaitMs,
      ),
    );
    if (settled?.status === 'completed') {
      this.assertSameRequest(request, settled, policy, observation);
      return this.replay(request, settled, 'waited', observation);
    }
    if (settled === undefined || settled.leaseRemainingMs <= 0) {
      // The first attempt released the key or died while we waited: this retry may run it now.
      const retried = await this.storeCall(request, observation, 'claim', () => this.store.claim(request));
      if (retried.status === 'claimed') {
        this.log(request, 'takeover');
        observation.claimed('takeover');
        return { kind: 'run', claim: retried.claim, observation };
      }
      this.assertSameRequest(request, retried, policy, observation);
      if (retried.status === 'completed') return this.replay(request, retried, 'waited', observation);
    }
    this.log(request, 'conflict');
    const conflict = new IdempotencyConflictError(policy.inFlightWaitMs / 1000);
    observation.answered('conflict', conflict.getStatus());
    throw conflict;
  }

  /**
   * Atomic mode in one commit (R22a): the claim is made inside the transaction the work then writes
   * through, and commits with it. The same rules as `acquire`, decided by the database: another
   * request holding the key, even uncommitted, is refused at once (R10); this request's first
   * attempt in flight is waited for, polling with claim attempts that each hold a connection only
   * for their own statements (R11); a first attempt that rolled back or died (its connection gone)
   * left nothing behind, so the next attempt simply claims the key.
   */
  async acquireAtomically(request: ClaimRequest, policy: AcquirePolicy, source: ObservedSource): Promise<AtomicAcquired> {
    const { beginAtomic } = this.store;
    if (!beginAtomic) throw new Error('nestjs-idempotency: this store cannot run atomic mode');
    const observation = new RequestObservation(request, source);
    const attempt = (): Promise<{ unit: AtomicUnit; outcome: AtomicClaimOutcome }> =>
      this.storeCall(request, observation, 'claim', async () => {
        const unit = beginAtomic.call(this.store);
        return { unit, outcome: await unit.claim(request) };
      });
    const first = await attempt();
    if (first.outcome.status === 'claimed') return this.ranAtomically(request, first.unit, first.outcome.claim, 'fresh', observation);
    this.refuseOtherRequest(request, first.outcome, policy, observation);
    if (first.outcome.status === 'completed') return this.replay(request, first.outcome, 'replayed', observation);

    const settled = await observation.waiting(() =>
      pollWithBackoff(policy.inFlightWaitMs, async () => {
        const next = await attempt();
        if (next.outcome.status === 'claimed') return next;
        this.refuseOtherRequest(request, next.outcome, policy, observation);
        return next.outcome.status === 'completed' ? next : undefined;
      }),
    );
    if (settled?.outcome.status === 'claimed') return this.ranAtomically(request, settled.unit, settled.outcome.claim, 'takeover', observation);
    if (settled?.outcome.status === 'completed') return this.replay(request, settled.outcome, 'waited', observation);
    this.log(request, 'conflict');
    const conflict = new IdempotencyConflictError(policy.inFlightWaitMs / 1000);
    observation.answered('conflict', conflict.getStatus());
    throw conflict;
  }

  /**
   * Stores an atomic run's response with its writes, in the one commit (R22a). A failure is
   * logged, not thrown: the caller answers it (the winner's response, or 503), since nothing of
   * the run was committed.
   */
  async commitAtomically(
    request: ClaimRequest,
    claim: Claim,
    unit: AtomicUnit,
    response: StoredResponse,
    ttlMs: number,
    observation: RequestObservation,
  ): Promise<AtomicCommit> {
    observation.settling();
    try {
      if (await observation.storeCall('complete', () => unit.commitWith(claim, response, ttlMs))) return 'committed';
      this.claimLost(request, observation);
      return 'lost_claim';
    } catch (error) {
      if (error instanceof TransactionLostRaceError) {
        this.claimLost(request, observation);
        return 'lost_race';
      }
      this.logStoreError(request, error);
      return 'failed';
    }
  }

  /**
   * The answer to an atomic run the database ended under its handler (R22a): its transaction is
   * rolled back (nothing of it counts), and its caller gets what a retry would get now: the winner's
   * record after a lost race, else 409; or 503 when the connection is gone.
   */
  async answerInterrupted(
    request: ClaimRequest,
    unit: AtomicUnit,
    observation: RequestObservation,
    interruption: AtomicInterruption,
    policy: Pick<AcquirePolicy, 'inFlightWaitMs' | 'mismatchStatus'>,
  ): Promise<CompletedRecord> {
    observation.settling();
    // A connection that is gone cannot roll back: the unit discards it, and the server rolls back.
    await unit.rollback().catch(() => undefined);
    if (interruption === 'lost_race') {
      this.claimLost(request, observation);
      return this.answerUncommitted(request, observation, 'lost_race', policy);
    }
    this.log(request, 'unavailable', 'warn');
    return this.answerUncommitted(request, observation, 'failed', policy);
  }

  /** Ends an atomic run whose outcome is not stored: its writes and its claim go together (R14). */
  async rollBackAtomically(
    request: ClaimRequest,
    unit: AtomicUnit,
    observation: RequestObservation,
    outcome: Exclude<RunOutcome, 'lost_claim'> = 'released',
    status?: number,
  ): Promise<void> {
    observation.settling();
    try {
      await observation.storeCall('release', () => unit.rollback());
      this.log(request, 'released');
    } catch (error) {
      // The connection is discarded: the database rolls back what it held, the key with it.
      this.logStoreError(request, error);
    }
    observation.settled(status, outcome);
  }

  /**
   * Ends an atomic run whose response went out and cannot be stored (R16b): its writes commit, as
   * the response reports them, and the claim is deleted in the same commit.
   */
  async commitReleasingAtomically(request: ClaimRequest, claim: Claim, unit: AtomicUnit, observation: RequestObservation, status?: number): Promise<void> {
    observation.settling();
    try {
      await observation.storeCall('release', () => unit.commitReleasing(claim));
      this.log(request, 'released');
      observation.settled(status, 'not_replayable');
    } catch (error) {
      this.logStoreError(request, error);
      observation.settled(status, 'unavailable');
    }
  }

  /**
   * The answer to an atomic run that did not commit (R20, R22a): nothing of it was stored. If a run
   * of the same request did commit (the database ended this one's session and another took the
   * key), this run lost its claim to it and its caller gets that run's record; otherwise the caller
   * gets a 409 to retry, or a 503 when the commit failed. The outcome is published either way.
   */
  async answerUncommitted(
    request: ClaimRequest,
    observation: RequestObservation,
    committed: Exclude<AtomicCommit, 'committed'>,
    policy: Pick<AcquirePolicy, 'inFlightWaitMs' | 'mismatchStatus'>,
  ): Promise<CompletedRecord> {
    const winner = committed === 'lost_race' ? await this.raceWinner(request, observation, policy) : await this.inspectQuietly(request, observation);
    if (winner?.status === 'completed' && winner.fingerprint === request.fingerprint) {
      if (committed === 'failed') this.claimLost(request, observation);
      observation.settled(winner.response.status);
      return winner;
    }
    if (committed === 'lost_race' && winner && winner.fingerprint !== request.fingerprint) {
      // Another request took the key first: this one was never going to be its request (R10).
      observation.settled(policy.mismatchStatus);
      throw new IdempotencyKeyReuseError(policy.mismatchStatus);
    }
    const refusal = committed === 'failed' ? new IdempotencyUnavailableError() : new IdempotencyConflictError(policy.inFlightWaitMs / 1000);
    observation.settled(refusal.getStatus(), committed === 'failed' ? 'unavailable' : undefined);
    throw refusal;
  }

  /**
   * The transaction that beat this one to the key committed before this one learnt it lost; its
   * record is read (on Galera, after this node has applied it) and, if still in flight (a winner of
   * a plain claim), waited for like any first attempt (R11).
   */
  private async raceWinner(request: ClaimRequest, observation: RequestObservation, policy: Pick<AcquirePolicy, 'inFlightWaitMs'>): Promise<FoundRecord | undefined> {
    const inspect = (): Promise<FoundRecord | undefined> => this.inspectQuietly(request, observation);
    const first = await inspect();
    if (first?.status !== 'in_flight') return first;
    return observation.waiting(() => waitForSettledRecord(first, inspect, policy.inFlightWaitMs));
  }

  private inspectQuietly(request: ClaimRequest, observation: RequestObservation): Promise<FoundRecord | undefined> {
    return observation.storeCall('inspect', () => this.store.inspect(request.account, request.key)).catch(() => undefined);
  }

  /**
   * How a claimed run's lease is renewed while it runs (R20): through the store, or inside its
   * transaction for an atomic claim (which keeps the session alive too); each renewal is observed
   * (R27) and a lost claim is logged.
   */
  leasePlan(
    request: ClaimRequest,
    observation: RequestObservation,
    route: Pick<ResolvedRouteOptions, 'leaseMs' | 'maxLockHoldMs'>,
    unit?: AtomicUnit,
  ): HeartbeatPlan {
    return {
      ...(unit ? { renew: (held: Claim, leaseMs: number) => unit.renew(held, leaseMs) } : {}),
      leaseMs: route.leaseMs,
      maxHoldMs: route.maxLockHoldMs,
      onLost: () => this.claimLost(request, observation),
      onRenewed: (durationMs, ok) => observation.backgroundStoreCall('renew', durationMs, ok),
    };
  }

  /**
   * Stores the outcome of a run, or releases the key so it can run again. A store failure here is
   * logged, not thrown: the work has happened and its result is the truth the caller must get.
   * While `lease` holds, a failed write is retried with backoff, renewing the claim between tries,
   * so a brief store outage does not leave the key to be taken over and run again (R20a).
   * `status` is the HTTP status sent, for the outcome message.
   */
  async settle(
    request: ClaimRequest,
    claim: Claim,
    response: StoredResponse | undefined,
    ttlMs: number,
    observation: RequestObservation,
    status?: number,
    lease?: HeldLease,
  ): Promise<Settlement> {
    if (!response) {
      await this.release(request, claim, observation, 'released', status, lease);
      return 'settled';
    }
    observation.settling();
    try {
      const completed = await this.whileLeaseHolds(request, claim, observation, lease, 'complete', () => this.store.complete(claim, response, ttlMs));
      if (!completed) this.claimLost(request, observation);
      observation.settled(status);
      return 'settled';
    } catch (error) {
      this.logStoreError(request, error);
      // Stored, but perhaps only on a primary that may yet die: its caller gets 503 and retries,
      // rather than an answer a failover could let run again (R18).
      if (error instanceof StoreReplicationError) {
        observation.settled(new IdempotencyUnavailableError().getStatus(), 'unavailable');
        return 'unconfirmed';
      }
      observation.settled(status, 'unavailable');
      return 'settled';
    }
  }

  /**
   * Releases a claim whose outcome is not stored, logging rather than throwing on failure; `outcome`
   * says why, for the outcome message (R14, R16b, R18). Retried like a completion while `lease` holds.
   */
  async release(
    request: ClaimRequest,
    claim: Claim,
    observation: RequestObservation,
    outcome: Exclude<RunOutcome, 'lost_claim'> = 'released',
    status?: number,
    lease?: HeldLease,
  ): Promise<void> {
    observation.settling();
    try {
      if (await this.whileLeaseHolds(request, claim, observation, lease, 'release', () => this.store.release(claim))) {
        this.log(request, 'released');
      } else {
        // Fenced (R20): the key is someone else's now, and was not released by this run.
        this.claimLost(request, observation);
      }
      observation.settled(status, outcome);
    } catch (error) {
      this.logStoreError(request, error);
      observation.settled(status, 'unavailable');
    }
  }

  /**
   * Runs a completion or release, retrying a failure with backoff for as long as the claim's lease
   * holds, less a tenth of it for safety; between tries the claim is renewed, which moves that end
   * when it succeeds. Past it, another instance may take the key over, so the last error is thrown.
   */
  private async whileLeaseHolds(
    request: ClaimRequest,
    claim: Claim,
    observation: RequestObservation,
    lease: HeldLease | undefined,
    operation: 'complete' | 'release',
    write: () => Promise<boolean>,
  ): Promise<boolean> {
    let endsAt = lease?.endsAt ?? 0;
    let delay = SETTLE_RETRY_FIRST_DELAY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await observation.storeCall(operation, write);
      } catch (error) {
        // A write the store made but could not replicate is not retried: a second write of it
        // would find the claim completed and look lost. The store has waited for it already.
        if (error instanceof StoreReplicationError) throw error;
        if (!lease || performance.now() + delay >= endsAt - lease.leaseMs / 10) throw error;
        if (attempt === 1) this.logStoreError(request, error, `; retrying the ${operation} while the claim's lease holds`);
        await sleep(delay);
        delay = Math.min(delay * 2, SETTLE_RETRY_MAX_DELAY_MS);
        const sent = performance.now();
        const renewed = await observation.storeCall('renew', () => this.store.renew(claim, lease.leaseMs)).catch(() => false);
        if (renewed) endsAt = Math.max(endsAt, sent + lease.leaseMs);
      }
    }
  }

  /** A renewal or completion found this run's claim taken over (R20): logged, and its outcome is `lost_claim`. */
  claimLost(request: ClaimRequest, observation: RequestObservation): void {
    this.log(request, 'lost claim', 'warn');
    observation.claimLost();
  }

  log(request: ClaimRequest, outcome: string, level: 'debug' | 'warn' = 'debug'): void {
    // Skip building the line on the hot path when nobody would read it.
    if (!Logger.isLevelEnabled(level)) return;
    this.logger[level](`${outcome} account=${JSON.stringify(request.account)} key=${request.key} route=${request.route}`);
  }

  logStoreError(request: ClaimRequest, error: unknown, then = ''): void {
    this.logger.error(`${request.route}: idempotency store error: ${error instanceof Error ? error.message : String(error)}${then}`);
  }

  private replay(
    request: ClaimRequest,
    record: CompletedRecord,
    outcome: 'replayed' | 'waited',
    observation: RequestObservation,
  ): Extract<Acquired, { kind: 'replay' }> {
    this.log(request, outcome);
    observation.answered(outcome, record.response.status);
    return { kind: 'replay', record };
  }

  private ranAtomically(
    request: ClaimRequest,
    unit: AtomicUnit,
    claim: Claim,
    as: 'fresh' | 'takeover',
    observation: RequestObservation,
  ): AtomicAcquired {
    this.log(request, as);
    observation.claimed(as);
    return { kind: 'run', claim, observation, unit };
  }

  /** Refuses, at once, a request whose key another request holds or held (R10). */
  private refuseOtherRequest(
    request: ClaimRequest,
    found: Exclude<AtomicClaimOutcome, { status: 'claimed' }>,
    policy: AcquirePolicy,
    observation: RequestObservation,
  ): void {
    if (found.status !== 'locked') return this.assertSameRequest(request, found, policy, observation);
    if (found.sameRequest) return;
    this.log(request, 'reuse');
    observation.answered('reuse', policy.mismatchStatus);
    throw new IdempotencyKeyReuseError(policy.mismatchStatus);
  }

  private assertSameRequest(request: ClaimRequest, found: FoundRecord, policy: AcquirePolicy, observation: RequestObservation): void {
    if (found.fingerprint === request.fingerprint) return;
    this.log(request, 'reuse');
    observation.answered('reuse', policy.mismatchStatus);
    throw new IdempotencyKeyReuseError(policy.mismatchStatus);
  }

  private async storeCall<T>(
    request: ClaimRequest,
    observation: RequestObservation,
    operation: IdempotencyStoreOperation,
    call: () => Promise<T>,
  ): Promise<T> {
    try {
      return await observation.storeCall(operation, call);
    } catch (error) {
      this.logStoreError(request, error);
      this.log(request, 'unavailable', 'warn');
      const unavailable = new IdempotencyUnavailableError();
      observation.answered('unavailable', unavailable.getStatus());
      throw unavailable;
    }
  }
}
