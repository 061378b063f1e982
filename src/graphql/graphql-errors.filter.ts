import { Catch, HttpException } from '@nestjs/common';
import type { GqlExceptionFilter } from '@nestjs/graphql';
import { GraphQLError } from 'graphql';

interface ApiErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details?: unknown };
}

/**
 * How a resolver's deliberate errors reach the client. The example API's own (`apiError`:
 * unauthorized, validation_failed, card_declined, ...) become GraphQL errors whose
 * `extensions.code` is the REST API's code, with its HTTP status; Apollo would report them as
 * INTERNAL_SERVER_ERROR. GraphQL errors (the idempotency library's refusals) go out as they are,
 * without the stack trace Nest logs for an error no filter handled. Anything else is a bug and
 * is left to Nest, which logs it.
 *
 * Filters run outside interceptors: the idempotency library sees the HttpException itself, so it
 * stores what it stores for the REST route (a 402 decline) and releases the rest (a 400).
 */
@Catch(HttpException, GraphQLError)
export class GraphqlErrorsFilter implements GqlExceptionFilter<HttpException | GraphQLError, GraphQLError> {
  catch(exception: HttpException | GraphQLError): GraphQLError {
    if (exception instanceof GraphQLError) return exception;
    const status = exception.getStatus();
    const body = exception.getResponse();
    const { code, message, details } = isApiErrorBody(body) ? body.error : { code: `http_${status}`, message: exception.message, details: undefined };
    return new GraphQLError(message, { extensions: { code, status, ...(details === undefined ? {} : { details }) } });
  }
}

function isApiErrorBody(body: unknown): body is ApiErrorBody {
  const error = (body as Partial<ApiErrorBody> | null)?.error;
  return typeof error === 'object' && error !== null && typeof error.code === 'string' && typeof error.message === 'string';
}
