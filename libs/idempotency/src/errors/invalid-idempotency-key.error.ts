import { HttpStatus } from '@nestjs/common';
import { IdempotencyError, type KeyCarrier } from './idempotency.error.js';

/** 400: the key is malformed, empty, repeated or holds control characters (R3, R4). */
export class InvalidIdempotencyKeyError extends IdempotencyError {
  constructor(name: string, expected: string, carrier: KeyCarrier = 'header') {
    super('invalid_idempotency_key', `The ${name} ${carrier} must be exactly one ${expected}.`, HttpStatus.BAD_REQUEST);
  }
}
