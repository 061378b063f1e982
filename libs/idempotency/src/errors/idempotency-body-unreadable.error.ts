import { HttpStatus } from '@nestjs/common';
import { IdempotencyError } from './idempotency.error.js';

/**
 * 400: the body could not be read (the client aborted it, or something consumed it and kept
 * neither its bytes nor a parsed value), so the request cannot be fingerprinted and is refused
 * rather than hashed as empty (R7).
 */
export class IdempotencyBodyUnreadableError extends IdempotencyError {
  constructor() {
    super(
      'idempotency_body_unreadable',
      'The request body could not be read, so this idempotent request cannot be told apart from others; it was not processed.',
      HttpStatus.BAD_REQUEST,
    );
  }
}
