import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import { validateHandlerOptions, type IdempotencyRouteOptions, type ResolvedModuleOptions } from './idempotency.options.js';
import type { EntityManager } from 'typeorm';
import { OnceRunner } from './claims/once-runner.js';
import { jsonResultCodec } from './claims/result-codec.js';
import { keyedCallerFingerprint } from './encryption/keyed-caller-fingerprint.js';
import { runOnceRecord } from './key/record-address.js';
import { IDEMPOTENCY_STORE, type ClaimRequest, type IdempotencyStore } from './store/idempotency-store.js';

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

const NO_FINGERPRINT = 'none';

/** Operations on stored idempotency records that are not tied to one HTTP request. */
@Injectable()
export class IdempotencyService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Idempotency');
  private purgeTimer?: NodeJS.Timeout;
  private purging?: Promise<PurgeResult>;

  constructor(
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
    private readonly runner: OnceRunner,
  ) {}

  /**
   * Runs `work` at most once per (scope, key) within the ttl and hands every later call its stored
   * result (R23): for webhook event ids, job ids, message ids. The same claim, in-flight wait,
   * mismatch and lease rules as routes apply; refusals are thrown as `IdempotencyKeyReuseError`,
   * `IdempotencyConflictError` and `IdempotencyUnavailableError`. A `work` that throws releases the
   * key, so the next delivery runs it again. Results are stored as JSON, dates kept: what
   * `JSON.stringify` keeps, with `Date` values as dates, is what a later call gets.
   */
  async runOnce<T>(options: RunOnceOptions, work: (context: RunOnceContext) => Promise<T> | T): Promise<T> {
    const route = this.options.resolveRoute(checkedRunOnceOptions(options));
    const fingerprint = options.fingerprint ?? NO_FINGERPRINT;
    const request: ClaimRequest = {
      // In a namespace of its own: a scope never shares keys with an HTTP account of the same name (R7a).
      ...runOnceRecord(options.scope, options.key),
      fingerprint: this.options.encryption ? keyedCallerFingerprint(this.options.encryption.fingerprintMacKey, fingerprint) : fingerprint,
      ttlMs: route.ttlMs,
      leaseMs: route.leaseMs,
      route: `runOnce ${options.scope}`,
    };
    const source = { transport: 'runOnce', route: request.route } as const;
    const { value } = await this.runner.run(request, route, source, jsonResultCodec<T>(), async (manager) => work({ manager }));
    return value;
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

/**
 * The route options of a `runOnce` call, checked as the module's are (a mistake throws before
 * anything is claimed, naming the option), with scope, key and fingerprint non-empty strings.
 */
function checkedRunOnceOptions(options: RunOnceOptions): IdempotencyRouteOptions {
  const problems = (['scope', 'key'] as const)
    .filter((name) => typeof options[name] !== 'string' || options[name] === '')
    .map((name) => `"${name}" must be a non-empty string`);
  if (options.fingerprint !== undefined && (typeof options.fingerprint !== 'string' || options.fingerprint === '')) {
    problems.push('"fingerprint" must be a non-empty string when given');
  }
  if (problems.length > 0) throw new TypeError(`nestjs-idempotency: invalid runOnce options:\n  - ${problems.join('\n  - ')}`);
  const route = Object.fromEntries(
    Object.entries({ ttl: options.ttl, lockTimeoutMs: options.lockTimeoutMs, inFlightWaitMs: options.inFlightWaitMs, atomic: options.atomic }).filter(
      ([, value]) => value !== undefined,
    ),
  ) as IdempotencyRouteOptions;
  validateHandlerOptions(route, 'runOnce options');
  return route;
}
