import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { requestOf } from './request-of.js';

/** The authenticated account of the request, on a route or a GraphQL resolver. */
export const CurrentAccount = createParamDecorator((_: unknown, context: ExecutionContext): string => {
  const account = requestOf(context).user?.accountId;
  if (!account) throw new Error('CurrentAccount used on a route without authentication');
  return account;
});
