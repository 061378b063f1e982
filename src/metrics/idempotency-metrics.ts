import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { IDEMPOTENCY_CHANNELS, type IdempotencyOutcomeMessage, type IdempotencyStoreCallMessage } from 'nestjs-idempotency';
import { Counter, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of every idempotent request, fed by the library's diagnostics channels (R27).
 * The channels are process-wide: an exporter counts every app in the process that uses the library.
 */
@Injectable()
export class IdempotencyMetrics implements OnModuleInit, OnModuleDestroy {
  /** This app's own registry rather than prom-client's global one, so two apps in one process never register a metric twice. */
  readonly registry = new Registry();

  private readonly requests = new Counter({
    name: 'idempotency_requests_total',
    help: 'Idempotent requests and runOnce calls, by route and outcome (fresh, replayed, waited, conflict, reuse, released, unavailable, takeover, lost_claim, not_replayable).',
    labelNames: ['route', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly waits = new Histogram({
    name: 'idempotency_in_flight_wait_seconds',
    help: 'How long a retry waited for a first attempt still in flight, by route and the outcome the wait ended in.',
    labelNames: ['route', 'outcome'] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10],
    registers: [this.registry],
  });

  private readonly storeCalls = new Histogram({
    name: 'idempotency_store_call_duration_seconds',
    help: 'Latency of idempotency store calls, by operation (claim, inspect, complete, release, renew) and whether the store answered.',
    labelNames: ['operation', 'ok'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  // Arrow functions: the same function objects must be given to unsubscribe.
  private readonly onOutcome = (message: unknown): void => {
    const { route, outcome, waitMs } = message as IdempotencyOutcomeMessage;
    this.requests.inc({ route, outcome });
    if (waitMs !== undefined) this.waits.observe({ route, outcome }, waitMs / 1000);
  };

  private readonly onStoreCall = (message: unknown): void => {
    const { operation, durationMs, ok } = message as IdempotencyStoreCallMessage;
    this.storeCalls.observe({ operation, ok: String(ok) }, durationMs / 1000);
  };

  onModuleInit(): void {
    subscribe(IDEMPOTENCY_CHANNELS.outcome, this.onOutcome);
    subscribe(IDEMPOTENCY_CHANNELS.store, this.onStoreCall);
  }

  onModuleDestroy(): void {
    unsubscribe(IDEMPOTENCY_CHANNELS.outcome, this.onOutcome);
    unsubscribe(IDEMPOTENCY_CHANNELS.store, this.onStoreCall);
  }
}
