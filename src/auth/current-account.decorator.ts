import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { AuthenticatedRequest } from './authenticated-request.js';

/** The authenticated account of the request. */
export const CurrentAccount = createParamDecorator((_: unknown, context: ExecutionContext): string => {
  const account = context.switchToHttp().getRequest<AuthenticatedRequest>().user?.accountId;
  if (!account) throw new Error('CurrentAccount used on a route without authentication');
  return account;
});
