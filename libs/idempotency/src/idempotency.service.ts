import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions } from './idempotency.options.js';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from './store/idempotency-store.js';

/** What one purge run did. */
export interface PurgeResult {
  /** Records deleted in all. */
  readonly deleted: number;
  /** Statements it took; each deletes at most `purgeBatchSize` rows, so none holds locks for long. */
  readonly batches: number;
}

/** Operations on stored idempotency records that are not tied to one request. */
@Injectable()
export class IdempotencyService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Idempotency');
  private purgeTimer?: NodeJS.Timeout;
  private purging?: Promise<PurgeResult>;

  constructor(
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

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
