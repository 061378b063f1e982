import { Inject, Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { runInTransaction } from '../atomic/idempotency-transaction.js';
import { IdempotencyUnavailableError } from '../errors/idempotency-unavailable.error.js';
import type { ResolvedRouteOptions } from '../idempotency.options.js';
import { LeaseHeartbeats } from '../lease/lease-heartbeats.js';
import type { ObservedSource, RequestObservation } from '../observability/request-observation.js';
import { atomicUnsupportedReasonOf } from '../store/atomic-support.js';
import {
  IDEMPOTENCY_STORE,
  type AtomicUnit,
  type Claim,
  type ClaimRequest,
  type IdempotencyStore,
  type StoredResponse,
} from '../store/idempotency-store.js';
import { ClaimCoordinator, type AtomicCommit, type HeldLease } from './claim-coordinator.js';
import type { ResultCodec } from './result-codec.js';

/** What a unit of work run through {@link OnceRunner} gave its caller. */
export interface OnceResult<T> {
  readonly value: T;
  /** True when `value` is a stored result: the work did not run for this call. */
  readonly replayed: boolean;
}

/** A unit of work; in atomic mode `manager` is the transaction that commits with its stored result. */
export type OnceWork<T> = (manager: EntityManager | undefined) => Promise<T>;

/** What the work returned, or what it threw. */
type WorkOutcome<T> = { readonly value: T } | { readonly error: unknown };

/** A finished run: its outcome, and when its claim's lease ends now that nobody renews it. */
type RanWork<T> = { readonly outcome: WorkOutcome<T>; readonly lease: HeldLease };

const UNSTORABLE = Symbol('unstorable');

/** What the caller gets for a run: its value, or its error thrown again. */
function answer<T>(outcome: WorkOutcome<T>): OnceResult<T> {
  if ('error' in outcome) throw outcome.error;
  return { value: outcome.value, replayed: false };
}

/** A call that won its claim. */
interface ClaimedCall {
  readonly request: ClaimRequest;
  readonly claim: Claim;
  readonly observation: RequestObservation;
  readonly route: ResolvedRouteOptions;
}

/**
 * The engine of every idempotent unit of work whose result is a value rather than HTTP bytes:
 * `runOnce`, GraphQL mutations and message handlers (R23). It claims the key through the
 * {@link ClaimCoordinator} (so refusals, waits and takeovers follow the same rules as routes),
 * runs the work once under a renewed lease, stores its result through the transport's codec and
 * hands later calls the decoded result. Work that throws releases the key, unless the codec
 * stores that failure as the answer; in atomic mode the claim, the work's writes and the stored
 * result commit once (R22a).
 */
@Injectable()
export class OnceRunner {
  private readonly logger = new Logger('Idempotency');

  constructor(
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    private readonly claims: ClaimCoordinator,
    private readonly heartbeats: LeaseHeartbeats,
  ) {}

  async run<T>(request: ClaimRequest, route: ResolvedRouteOptions, source: ObservedSource, codec: ResultCodec<T>, work: OnceWork<T>): Promise<OnceResult<T>> {
    if (route.atomic) return this.runAtomically(request, route, source, codec, work);
    const acquired = await this.claims.acquire(request, route, source);
    if (acquired.kind === 'replay') return { value: codec.decode(acquired.record.response), replayed: true };
    const call: ClaimedCall = { request, claim: acquired.claim, observation: acquired.observation, route };
    const { outcome, lease } = await this.runWork(call, work, undefined);
    const stored = this.encode(call, codec, outcome);
    if (stored === UNSTORABLE) {
      await this.claims.release(request, call.claim, call.observation, 'not_replayable', undefined, lease);
    } else if ((await this.claims.settle(request, call.claim, stored, route.ttlMs, call.observation, undefined, lease)) === 'unconfirmed') {
      // Too few replicas have the outcome: a failover could run the work again, so the caller retries.
      throw new IdempotencyUnavailableError();
    }
    return answer(outcome);
  }

  private async runAtomically<T>(
    request: ClaimRequest,
    route: ResolvedRouteOptions,
    source: ObservedSource,
    codec: ResultCodec<T>,
    work: OnceWork<T>,
  ): Promise<OnceResult<T>> {
    const unsupported = atomicUnsupportedReasonOf(this.store);
    if (unsupported) throw new Error(`nestjs-idempotency: atomic mode cannot run ${request.route} here: ${unsupported}`);
    const acquired = await this.claims.acquireAtomically(request, route, source);
    if (acquired.kind === 'replay') return { value: codec.decode(acquired.record.response), replayed: true };
    const { unit } = acquired;
    const call: ClaimedCall = { request, claim: acquired.claim, observation: acquired.observation, route };
    const { outcome } = await this.runWork(call, () => runInTransaction(unit.manager, () => work(unit.manager)), unit);
    // The database ended the transaction under the work: nothing of it counts, whatever it returned.
    const interruption = unit.interruption?.();
    if (interruption) {
      const winner = await this.claims.answerInterrupted(request, unit, call.observation, interruption, route);
      return { value: codec.decode(winner.response), replayed: true };
    }
    const stored = this.encode(call, codec, outcome);
    if (stored === UNSTORABLE) {
      // The result went nowhere yet its writes are real, as a response sent but not storable (R16b):
      // they commit, and the claim is deleted in the same commit.
      await this.claims.commitReleasingAtomically(request, call.claim, unit, call.observation);
      return answer(outcome);
    }
    if (!stored) {
      await this.claims.rollBackAtomically(request, unit, call.observation);
      return answer(outcome);
    }
    const committed = await this.claims.commitAtomically(request, call.claim, unit, stored, route.ttlMs, call.observation);
    if (committed !== 'committed') return this.answerUncommitted(call, codec, committed);
    call.observation.settled(undefined);
    return answer(outcome);
  }

  /** Runs the work under a renewed lease; what it returned or threw. */
  private async runWork<T>(call: ClaimedCall, work: OnceWork<T>, unit: AtomicUnit | undefined): Promise<RanWork<T>> {
    const heartbeat = this.heartbeats.start(call.claim, this.claims.leasePlan(call.request, call.observation, call.route, unit));
    let outcome: WorkOutcome<T>;
    try {
      outcome = { value: await work(unit?.manager) };
    } catch (error) {
      outcome = { error };
    }
    return { outcome, lease: { endsAt: heartbeat.stop(), leaseMs: call.route.leaseMs } };
  }

  /**
   * What to store for the outcome: the codec's answer, or UNSTORABLE when it cannot encode it (a
   * BigInt, a circular object). The key is then released rather than left claimed, and the caller
   * still gets what the work returned or threw.
   */
  private encode<T>({ request }: ClaimedCall, codec: ResultCodec<T>, outcome: WorkOutcome<T>): StoredResponse | undefined | typeof UNSTORABLE {
    try {
      return 'value' in outcome ? codec.encode(outcome.value) : codec.encodeFailure(outcome.error);
    } catch (error) {
      this.logger.warn(
        `${request.route}: the result cannot be stored (${error instanceof Error ? error.message : String(error)}); ` +
          'it was returned as is and the key released, so a retry runs the work again',
      );
      return UNSTORABLE;
    }
  }

  // Nothing of this run was committed: the caller gets the result of the run that took its claim
  // over, else the refusal (409, or 503 when the commit failed).
  private async answerUncommitted<T>({ request, observation, route }: ClaimedCall, codec: ResultCodec<T>, committed: Exclude<AtomicCommit, 'committed'>): Promise<OnceResult<T>> {
    const winner = await this.claims.answerUncommitted(request, observation, committed, route);
    return { value: codec.decode(winner.response), replayed: true };
  }
}
