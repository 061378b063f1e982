import { Module } from '@nestjs/common';
import { IdempotencyMetrics } from './idempotency-metrics.js';
import { MetricsController } from './metrics.controller.js';

/** Prometheus metrics of the idempotency library's outcomes and store latency, at `GET /metrics`. */
@Module({ controllers: [MetricsController], providers: [IdempotencyMetrics] })
export class MetricsModule {}
