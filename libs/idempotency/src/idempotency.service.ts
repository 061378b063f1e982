import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions, ResolvedRouteOptions } from './idempotency.options.js';
import type { EntityManager } from 'typeorm';
import { storedAccount } from './account/account-resolver.js';
import { runInTransaction } from './atomic/idempotency-transaction.js';
import { ClaimCoordinator, type AtomicCommit } from './claims/claim-coordinator.js';
import { IdempotencyConflictError } from './errors/idempotency-conflict.error.js';
import { IdempotencyUnavailableError } from './errors/idempotency-unavailable.error.js';
import { LeaseHeartbeats, type LeaseHeartbeat } from './lease/lease-heartbeats.js';
import type { ObservedSource, RequestObservation } from './observability/request-observation.js';
import { atomicUnsupportedReasonOf } from './store/atomic-support.js';
import {
  IDEMPOTENCY_STORE,
  type AtomicUnit,
  type Claim,
  type ClaimRequest,
  type IdempotencyStore,
  type StoredResponse,
} from './store/idempotency-store.js';

/** What one purge run did. */
export interface PurgeResult {
  /** Records deleted in all. */
  readonly deleted: number;
  /** Statements it took; each deletes at most `purgeBatchSize` rows, so none holds locks for long. */
  readonly batches: number;
}

/** Which unit of work `runOnce` runs at most once. */
export interface RunOnceOptions {
  /** Groups keys, like an account does for routes: `webhook:stripe`, `job:invoices`. */
  readonly scope: string;
  /** The unit's identity within the scope: an event id, a job id. */
  readonly key: string;
  /** Identifies the input; a later call with the same key and another fingerprint is refused. */
  readonly fingerprint?: string;
  /** How long the stored result lives, in ms. Default: the module's `ttl`. */
  readonly ttl?: number;
  /** Lease of the claim while `work` runs, in ms. Default: the module's `lockTimeoutMs`. */
  readonly lockTimeoutMs?: number;
  /** How long a call waits for another call with the same key to finish. Default: the module's. */
  readonly inFlightWaitMs?: number;
  /** Run `work` in a transaction that commits with the stored result (R22). Default: the module's `atomic`. */
  readonly atomic?: boolean;
}

/** What `work` receives. */
export interface RunOnceContext {
  /** In atomic mode, the transaction to write through; otherwise undefined. */
  readonly manager: EntityManager | undefined;
}

/** A `runOnce` call that won its claim. */
interface ClaimedCall {
  readonly request: ClaimRequest;
  readonly claim: Claim;
  readonly observation: RequestObservation;
  readonly ttlMs: number;
}

const NO_FINGERPRINT = 'none';
const RUN_ONCE_SCOPE_PREFIX = 'runOnce:';

/** Operations on stored idempotency records that are not tied to one HTTP request. */
@Injectable()
export class IdempotencyService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Idempotency');
  private purgeTimer?: NodeJS.Timeout;
  private purging?: Promise<PurgeResult>;

  constructor(
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
    private readonly claims: ClaimCoordinator,
    private readonly heartbeats: LeaseHeartbeats,
  ) {}

  /**
   * Runs `work` at most once per (scope, key) within the ttl and hands every later call its stored
   * result (R23): for webhook event ids, job ids, message ids. The same claim, in-flight wait,
   * mismatch and lease rules as routes apply; refusals are thrown as `IdempotencyKeyReuseError`,
   * `IdempotencyConflictError` and `IdempotencyUnavailableError`. A `work` that throws releases the
   * key, so the next delivery runs it again. Results are stored as JSON: what `JSON.stringify`
   * keeps is what a later call gets.
   */
  async runOnce<T>(options: RunOnceOptions, work: (context: RunOnceContext) => Promise<T> | T): Promise<T> {
    const route = this.options.resolveRoute({
      ttl: options.ttl,
      lockTimeoutMs: options.lockTimeoutMs,
      inFlightWaitMs: options.inFlightWaitMs,
      atomic: options.atomic,
    });
    const request: ClaimRequest = {
      // Prefixed so that a scope never shares keys with an HTTP account of the same name.
      account: storedAccount(`${RUN_ONCE_SCOPE_PREFIX}${options.scope}`),
      key: options.key,
      fingerprint: options.fingerprint ?? NO_FINGERPRINT,
      ttlMs: route.ttlMs,
      leaseMs: route.leaseMs,
      route: `runOnce ${options.scope}`,
    };
    const source = { transport: 'runOnce', route: request.route } as const;
    if (route.atomic) return this.runAtomically(request, route, source, work);
    const acquired = await this.claims.acquire(request, route, source);
    if (acquired.kind === 'replay') return parsedResult<T>(acquired.record.response);

    const run: ClaimedCall = { request, claim: acquired.claim, observation: acquired.observation, ttlMs: route.ttlMs };
    const heartbeat = this.startHeartbeat(run, route);
    try {
      return await this.runPlain(run, work);
    } finally {
      heartbeat.stop();
    }
  }

  private startHeartbeat({ request, claim, observation }: ClaimedCall, route: ResolvedRouteOptions, unit?: AtomicUnit): LeaseHeartbeat {
    return this.heartbeats.start(claim, {
      ...(unit ? { renew: (held: Claim, leaseMs: number) => unit.renew(held, leaseMs) } : {}),
      leaseMs: route.leaseMs,
      maxHoldMs: route.maxLockHoldMs,
      onLost: () => this.claims.claimLost(request, observation),
      onRenewed: (durationMs, ok) => observation.backgroundStoreCall('renew', durationMs, ok),
    });
  }

  private async runPlain<T>({ request, claim, observation, ttlMs }: ClaimedCall, work: (context: RunOnceContext) => Promise<T> | T): Promise<T> {
    let result: T;
    try {
      result = await work({ manager: undefined });
    } catch (error) {
      await this.claims.release(request, claim, observation);
      throw error;
    }
    await this.claims.settle(request, claim, storedResult(result), ttlMs, observation);
    return result;
  }

  // The claim, the work's writes and the stored result commit once, together (R22a).
  private async runAtomically<T>(
    request: ClaimRequest,
    route: ResolvedRouteOptions,
    source: ObservedSource,
    work: (context: RunOnceContext) => Promise<T> | T,
  ): Promise<T> {
    const unsupported = atomicUnsupportedReasonOf(this.store);
    if (unsupported) throw new Error(`nestjs-idempotency: runOnce({ atomic: true }) cannot run here: ${unsupported}`);
    const acquired = await this.claims.acquireAtomically(request, route, source);
    if (acquired.kind === 'replay') return parsedResult<T>(acquired.record.response);
    const { claim, observation, unit } = acquired;
    const heartbeat = this.startHeartbeat({ request, claim, observation, ttlMs: route.ttlMs }, route, unit);
    let committed: AtomicCommit;
    let result: T;
    try {
      try {
        result = await runInTransaction(unit.manager, () => work({ manager: unit.manager }));
      } catch (error) {
        await this.claims.rollBackAtomically(request, unit, observation);
        throw error;
      }
      heartbeat.stop();
      committed = await this.claims.commitAtomically(request, claim, unit, storedResult(result), route.ttlMs, observation);
    } finally {
      heartbeat.stop();
    }
    if (committed === 'committed') {
      observation.settled(undefined);
      return result;
    }
    // Nothing of this run was committed: the caller gets the result of a run of the same call that
    // did commit (this run lost its claim to it), or an error it must not take as done.
    const winner = await this.claims.winnerAfter(request, observation, committed);
    observation.settled(undefined, winner || committed !== 'failed' ? undefined : 'unavailable');
    if (winner) return parsedResult<T>(winner.response);
    throw committed === 'failed' ? new IdempotencyUnavailableError() : new IdempotencyConflictError(1);
  }

  /**
   * Deletes expired records in batches of `purgeBatchSize` until none is left (R21). Each batch is
   * its own short statement, so concurrent claims wait on no long table lock. Concurrent calls share
   * one run.
   */
  purgeExpired(): Promise<PurgeResult> {
    this.purging ??= this.purgeAll().finally(() => {
      this.purging = undefined;
    });
    return this.purging;
  }

  onApplicationBootstrap(): void {
    const every = this.options.purgeIntervalMs;
    if (every === undefined) return;
    this.purgeTimer = setInterval(() => {
      this.purgeExpired().catch((error: unknown) =>
        this.logger.warn(`scheduled purge failed: ${error instanceof Error ? error.message : String(error)}`),
      );
    }, every);
    this.purgeTimer.unref();
  }

  onModuleDestroy(): void {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
  }

  private async purgeAll(): Promise<PurgeResult> {
    const limit = this.options.purgeBatchSize;
    let deleted = 0;
    let batches = 0;
    for (;;) {
      const removed = await this.store.purgeExpired(limit);
      batches++;
      deleted += removed;
      if (removed < limit) return { deleted, batches };
    }
  }
}

function parsedResult<T>(response: StoredResponse): T {
  return JSON.parse(response.body.toString('utf8')) as T;
}

function storedResult(result: unknown): StoredResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(result === undefined ? null : result), 'utf8'),
  };
}
