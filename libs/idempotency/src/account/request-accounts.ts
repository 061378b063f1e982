import { Logger } from '@nestjs/common';
import { IdempotencyAccountUnresolvedError } from '../errors/idempotency-account-unresolved.error.js';
import { accountIdText } from './account-id.js';
import { principalOf, type AccountResolver } from './account-resolver.js';

/** The scope of requests that carry no principal (R5a): keys there are global. */
export const ANONYMOUS_ACCOUNT = '';

/**
 * The account a request acts for, as text (R5): '' (the shared scope) only for a request without
 * a principal (R5a). A request whose `user` is set, from which no account comes out, is refused
 * with `IdempotencyAccountUnresolvedError`, never treated as anonymous, where it could replay
 * another user's response.
 */
export async function accountOf(resolver: AccountResolver, request: unknown): Promise<string> {
  const resolved = await resolver(request);
  let account: string | undefined;
  try {
    account = accountIdText(resolved);
  } catch (error) {
    throw new IdempotencyAccountUnresolvedError(
      `the account resolver returned ${describe(resolved)}, which names no account exactly (${(error as Error).message})`,
    );
  }
  if (account !== undefined) return account;
  if (principalOf(request) === undefined) return ANONYMOUS_ACCOUNT;
  throw new IdempotencyAccountUnresolvedError('request.user is set, but the account resolver found no account in it');
}

/** {@link accountOf} for the adapters that answer requests: each route refused this way is named in the log once. */
export class RequestAccounts {
  private readonly logger = new Logger('Idempotency');
  private readonly reportedRoutes = new Set<string>();

  constructor(private readonly resolver: AccountResolver) {}

  async of(request: unknown, route: string): Promise<string> {
    try {
      return await accountOf(this.resolver, request);
    } catch (error) {
      if (error instanceof IdempotencyAccountUnresolvedError) this.reportOnce(route, error.reason);
      throw error;
    }
  }

  private reportOnce(route: string, reason: string): void {
    if (this.reportedRoutes.has(route)) return;
    this.reportedRoutes.add(route);
    this.logger.error(
      `${route}: ${reason}. Such requests are refused (500 idempotency_account_unresolved) rather than put in the shared ` +
        "anonymous scope, where they could be answered with another user's response. Set the \"account\" option of " +
        'IdempotencyModule.forRoot() to return the id that scopes keys, e.g. account: (req) => req.user.tenantId.',
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return `an object (${Object.prototype.toString.call(value)})`;
  return typeof value === 'bigint' ? `${value}n` : String(value);
}
