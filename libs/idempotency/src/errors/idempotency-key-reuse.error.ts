import { IdempotencyError } from './idempotency.error.js';

/** 422 (or the configured status): the key was first used with a different request (R10). */
export class IdempotencyKeyReuseError extends IdempotencyError {
  constructor(status: number) {
    super(
      'idempotency_key_reuse',
      'This idempotency key was already used with a different request. Use a new key for a new request.',
      status,
    );
  }
}
