import { HttpException } from '@nestjs/common';
import type { GraphQLError } from 'graphql';
import type { FailureCodec } from '../claims/result-codec.js';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import type { IdempotencyError } from '../errors/idempotency.error.js';
import type { StoreResponsePredicate } from '../response/stored-status-policy.js';
import type { loadGraphql } from './graphql-package.js';

type GraphqlModule = Awaited<ReturnType<typeof loadGraphql>>;

const refusals = new WeakSet<object>();

/**
 * Matches, in `@Catch()`, the GraphQL errors made by {@link refusalAsGraphqlError}, and no other:
 * the library's filter answers them without Nest logging each refusal as an unhandled error, while
 * the application's own GraphQL errors stay the application's. A marker rather than a subclass of
 * `GraphQLError`, which would load `graphql` with the library.
 */
export class GraphqlRefusal {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && refusals.has(value);
  }
}

/** A contract refusal as a GraphQL error: `extensions.code` is the contract's code (R17). */
export function refusalAsGraphqlError(graphql: GraphqlModule, error: IdempotencyError): GraphQLError {
  const retryAfter = error instanceof IdempotencyConflictError ? Number(error.headers['Retry-After']) : undefined;
  const refusal = new graphql.GraphQLError(error.message, {
    extensions: { code: error.code, status: error.getStatus(), ...(retryAfter === undefined ? {} : { retryAfter }) },
  });
  refusals.add(refusal);
  return refusal;
}

// Codes that say the mutation never really ran, as 400/401/403 do for routes (R14): not stored.
const NEVER_RAN_CODES = new Set([
  'BAD_REQUEST',
  'BAD_USER_INPUT',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'INTERNAL_SERVER_ERROR',
  'PERSISTED_QUERY_NOT_FOUND',
]);

type DescribedFailure =
  | { readonly kind: 'graphql'; readonly message: string; readonly extensions: Record<string, unknown> }
  | { readonly kind: 'http'; readonly status: number; readonly response: string | object };

/**
 * Which errors of a mutation are its answer, stored and thrown again to a retry (a declined card):
 * a `GraphQLError` with an `extensions.code` of the application's own, and an `HttpException` whose
 * status the route stores (R14). Anything else releases the key, so a retry runs the mutation.
 */
export function graphqlFailureCodec(graphql: GraphqlModule, storeResponse: StoreResponsePredicate): FailureCodec {
  return {
    describe(error): DescribedFailure | undefined {
      if (error instanceof graphql.GraphQLError) {
        const code = error.extensions?.code;
        if (typeof code !== 'string' || NEVER_RAN_CODES.has(code)) return undefined;
        // A status it carries decides as for routes: a 503 or a 429 is not an answer to keep (R14).
        const status = statusOf(error.extensions);
        if (status !== undefined && !storeResponse(status)) return undefined;
        return { kind: 'graphql', message: error.message, extensions: { ...error.extensions } };
      }
      if (error instanceof HttpException && storeResponse(error.getStatus())) {
        return { kind: 'http', status: error.getStatus(), response: error.getResponse() };
      }
      return undefined;
    },
    revive(described) {
      const failure = described as DescribedFailure;
      return failure.kind === 'graphql'
        ? new graphql.GraphQLError(failure.message, { extensions: failure.extensions })
        : new HttpException(failure.response, failure.status);
    },
  };
}

/** The HTTP status a GraphQL error says it stands for: Apollo's `extensions.http.status`, or `extensions.status`. */
function statusOf(extensions: Readonly<Record<string, unknown>> | undefined): number | undefined {
  const http = extensions?.http as { status?: unknown } | undefined;
  const status = http?.status ?? extensions?.status;
  return typeof status === 'number' && Number.isInteger(status) ? status : undefined;
}
