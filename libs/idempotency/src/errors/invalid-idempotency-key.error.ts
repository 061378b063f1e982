import { HttpStatus } from '@nestjs/common';
import { IdempotencyError } from './idempotency.error.js';

/** 400: the key is malformed, empty, repeated or holds control characters (R3, R4). */
export class InvalidIdempotencyKeyError extends IdempotencyError {
  constructor(headerName: string, expected: string) {
    super('invalid_idempotency_key', `The ${headerName} header must be exactly one ${expected}.`, HttpStatus.BAD_REQUEST);
  }
}
