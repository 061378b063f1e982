import { HttpStatus } from '@nestjs/common';
import { IdempotencyError } from './idempotency.error.js';

/** 503: the idempotency store cannot be reached, so the request fails closed (R18). */
export class IdempotencyUnavailableError extends IdempotencyError {
  constructor() {
    super(
      'idempotency_unavailable',
      'Idempotency is temporarily unavailable; the request was not processed. Retry with the same key.',
      HttpStatus.SERVICE_UNAVAILABLE,
      { 'Retry-After': '1' },
    );
  }
}
