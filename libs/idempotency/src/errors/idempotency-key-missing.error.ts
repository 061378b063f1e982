import { HttpStatus } from '@nestjs/common';
import { IdempotencyError, type KeyCarrier } from './idempotency.error.js';

/** 400: the route requires an `Idempotency-Key` and the request has none (R2). */
export class IdempotencyKeyMissingError extends IdempotencyError {
  /** `carrier`: what holds the key, for the message; a mutation's argument or a message's payload property. */
  constructor(name: string, carrier: KeyCarrier = 'header') {
    super(
      'idempotency_key_missing',
      carrier === 'header' ? `This endpoint requires an ${name} header.` : `This endpoint requires a key in its ${name} ${carrier}.`,
      HttpStatus.BAD_REQUEST,
    );
  }
}
