import { unwrapResolverError } from '@apollo/server/errors';
import { HttpException } from '@nestjs/common';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';

/**
 * Apollo's `formatError`: the errors the API means (GraphQL errors, among them the API's own and
 * the idempotency library's refusals, and HTTP errors) go out as formatted; anything else is a bug
 * whose message may hold internals (a SQL error, a path), sent as `internal_error` with a fixed
 * message, as REST answers it. Nest has logged the error itself.
 */
export function maskUnexpectedErrors(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  if (original instanceof GraphQLError || original instanceof HttpException) return formatted;
  return {
    message: 'An unexpected error occurred.',
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions: { code: 'internal_error', status: 500 },
  };
}
