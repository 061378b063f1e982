import type { ClaimRequest } from '../store/idempotency-store.js';
import type { IdempotencyOutcome, IdempotencyStoreOperation, IdempotencyTransport } from './idempotency-channels.js';
import { keyHashOf, outcomesObserved, publishOutcome, publishStoreCall } from './outcome-publisher.js';
import { RequestTrace } from './request-tracing.js';

/** Where a request came from, as its messages and spans name it. */
export interface ObservedSource {
  readonly transport: IdempotencyTransport;
  /** Bounded, fit for a metric label: the route's pattern, or `runOnce <scope>`. */
  readonly route: string;
}

/** How a run ended when its response was not simply stored. */
export type RunOutcome = Extract<IdempotencyOutcome, 'released' | 'unavailable' | 'lost_claim' | 'not_replayable'>;

/**
 * One idempotent request or `runOnce` call, from the start of its claim to its one outcome (R27):
 * times its store calls and its wait, publishes the outcome once on the outcome channel, and
 * feeds its spans when OpenTelemetry is installed. Costs a few clock reads when nobody listens.
 */
export class RequestObservation {
  private readonly startedAt = performance.now();
  private storeMs = 0;
  private waitStartedAt?: number;
  private waitMs?: number;
  private ranAs: 'fresh' | 'takeover' = 'fresh';
  private lost = false;
  private ended = false;
  private readonly trace: RequestTrace | undefined;

  constructor(
    private readonly request: ClaimRequest,
    private readonly source: ObservedSource,
  ) {
    this.trace = RequestTrace.start(() => ({
      'idempotency.route': source.route,
      'idempotency.transport': source.transport,
      'idempotency.account': request.account,
      'idempotency.key_hash': keyHashOf(request.account, request.key),
    }));
  }

  /** Runs one store call on this request's path, adding its time to `storeMs`. */
  async storeCall<T>(operation: IdempotencyStoreOperation, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let ok = false;
    try {
      const answer = await call();
      ok = true;
      return answer;
    } finally {
      const durationMs = performance.now() - started;
      this.storeMs += durationMs;
      publishStoreCall(() => ({ operation, durationMs, ok, route: this.source.route, transport: this.source.transport }));
    }
  }

  /** A store call off this request's path (a lease renewal), published but not added to `storeMs`. */
  backgroundStoreCall(operation: IdempotencyStoreOperation, durationMs: number, ok: boolean): void {
    publishStoreCall(() => ({ operation, durationMs, ok, route: this.source.route, transport: this.source.transport }));
  }

  /** Waits for a first attempt in flight (R11), timing it as `waitMs`. */
  async waiting<T>(wait: () => Promise<T>): Promise<T> {
    this.waitStartedAt = performance.now();
    this.trace?.waitStarted();
    try {
      return await wait();
    } finally {
      this.waitMs = performance.now() - this.waitStartedAt;
    }
  }

  /** This request won the claim and runs: its outcome comes when it settles. */
  claimed(as: 'fresh' | 'takeover'): void {
    this.ranAs = as;
    this.trace?.claimDecided(as);
  }

  /** The claim decided the outcome without running anything: a replay or a refusal. */
  answered(outcome: IdempotencyOutcome, status: number | undefined): void {
    if (this.ended) return;
    this.trace?.claimDecided(outcome);
    this.publish(outcome, status);
  }

  /** A renewal or a completion found the claim taken over (R20): the run ends as `lost_claim`. */
  claimLost(): void {
    this.lost = true;
  }

  /** The run's outcome is about to be stored (or the key released): starts the completion span. */
  settling(): void {
    this.trace?.completionStarted();
  }

  /** The run has ended: stored as it ran (`fresh` or `takeover`) unless `outcome` says otherwise. */
  settled(status: number | undefined, outcome?: RunOutcome): void {
    if (this.ended) return;
    const final = this.lost ? 'lost_claim' : (outcome ?? this.ranAs);
    this.trace?.completed(final);
    this.publish(final, status);
  }

  private publish(outcome: IdempotencyOutcome, status: number | undefined): void {
    this.ended = true;
    if (!outcomesObserved()) return;
    const { account, key } = this.request;
    // A store failure while polling ends the request before the wait has its measure.
    const waitMs = this.waitMs ?? (this.waitStartedAt === undefined ? undefined : performance.now() - this.waitStartedAt);
    publishOutcome({
      outcome,
      account,
      route: this.source.route,
      // Hashed only if a subscriber reads it: most never do, and it is a SHA-256 per request.
      get keyHash(): string {
        return keyHashOf(account, key);
      },
      transport: this.source.transport,
      totalMs: performance.now() - this.startedAt,
      storeMs: this.storeMs,
      ...(waitMs === undefined ? {} : { waitMs }),
      // runOnce has no HTTP exchange: the status of its stored record is the library's own.
      ...(status === undefined || this.source.transport !== 'http' ? {} : { status }),
    });
  }
}
