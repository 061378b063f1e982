import { Injectable, type ExecutionContext } from '@nestjs/common';
import type { ThrottlerLimitDetail } from '@nestjs/throttler';
import { IdempotentThrottlerGuard } from 'nestjs-idempotency/throttler';
import type { AuthenticatedRequest } from '../auth/authenticated-request.js';
import { apiError } from '../common/api-error.js';

/**
 * The example's rate limit: one budget per account rather than per IP address, refused with the
 * API's own error body; replays pass uncharged (R24), as `IdempotentThrottlerGuard` decides.
 */
@Injectable()
export class AccountThrottlerGuard extends IdempotentThrottlerGuard {
  // ApiKeyGuard runs first (AppModule's own guard) and has put the account on the request.
  protected override async getTracker(request: Record<string, unknown>): Promise<string> {
    const account = (request as Pick<AuthenticatedRequest, 'user'>).user?.accountId;
    return account === undefined ? super.getTracker(request) : `account:${account}`;
  }

  // Retry-After is already set by the guard (in seconds) when this is called.
  protected override async throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    throw apiError(
      429,
      'rate_limited',
      `Rate limit of ${detail.limit} requests per ${detail.ttl / 1000} s reached for this account; ` +
        `retry after ${detail.timeToBlockExpire} s. Replays of a stored response are not counted.`,
    );
  }
}
