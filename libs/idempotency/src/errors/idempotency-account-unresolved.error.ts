import { HttpStatus } from '@nestjs/common';
import { IdempotencyError } from './idempotency.error.js';

/**
 * 500: the request carries a principal, but no account came out of it (R5a). Never answered by
 * putting the request in the shared anonymous scope, where it could replay another user's
 * response: the application's `account` option must say where the account is. A server error,
 * since no client can mend it; the request did not run.
 */
export class IdempotencyAccountUnresolvedError extends IdempotencyError {
  constructor(readonly reason: string) {
    super(
      'idempotency_account_unresolved',
      'The request is authenticated, but the idempotency account could not be resolved from its principal; ' +
        'the request was not processed. The application must set the "account" option of IdempotencyModule.',
      HttpStatus.INTERNAL_SERVER_ERROR,
    );
  }
}
