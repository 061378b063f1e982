import { HttpStatus } from '@nestjs/common';
import { IdempotencyError } from './idempotency.error.js';

/** 400: the route requires an `Idempotency-Key` and the request has none (R2). */
export class IdempotencyKeyMissingError extends IdempotencyError {
  constructor(headerName: string) {
    super('idempotency_key_missing', `This endpoint requires an ${headerName} header.`, HttpStatus.BAD_REQUEST);
  }
}
