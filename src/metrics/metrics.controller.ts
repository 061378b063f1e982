import { Controller, Get, Header } from '@nestjs/common';
import { Registry } from 'prom-client';
import { Public } from '../auth/public.decorator.js';
import { IdempotencyMetrics } from './idempotency-metrics.js';

/**
 * `GET /metrics` in Prometheus text format. Unauthenticated in this example so a scraper needs no
 * API key; a deployment serves it on an internal port or behind its own authentication.
 */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: IdempotencyMetrics) {}

  @Get()
  @Public()
  @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
