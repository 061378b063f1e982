export { IdempotentThrottlerGuard } from './idempotent-throttler.guard.js';
