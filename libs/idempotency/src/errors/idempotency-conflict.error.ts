import { HttpStatus } from '@nestjs/common';
import { IdempotencyError } from './idempotency.error.js';

/** 409: a request with this key is still being processed (R11); `Retry-After` says when to try again. */
export class IdempotencyConflictError extends IdempotencyError {
  constructor(retryAfterSeconds: number) {
    super(
      'idempotency_conflict',
      'A request with this idempotency key is still being processed. Retry after the delay in Retry-After.',
      HttpStatus.CONFLICT,
      { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    );
  }
}
