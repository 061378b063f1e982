import { Catch, HttpException } from '@nestjs/common';
import type { GqlExceptionFilter } from '@nestjs/graphql';
import { GraphQLError } from 'graphql';
import { errorAnswerOf } from '../common/error-answer.js';

/**
 * How a resolver's deliberate errors reach the client. The example API's own (`apiError`:
 * unauthorized, validation_failed, card_declined, ...) become GraphQL errors whose
 * `extensions.code` is the REST API's code, with its HTTP status; Apollo would report them as
 * INTERNAL_SERVER_ERROR; any other HTTP error gets the code REST would answer it with. GraphQL
 * errors (the idempotency library's refusals) go out as they are, without the stack trace Nest
 * logs for an error no filter handled. Anything else is a bug and is left to Nest, which logs it
 * (and `maskUnexpectedErrors` keeps its message from the client).
 *
 * Filters run outside interceptors: the idempotency library sees the HttpException itself, so it
 * stores what it stores for the REST route (a 402 decline) and releases the rest (a 400).
 */
@Catch(HttpException, GraphQLError)
export class GraphqlErrorsFilter implements GqlExceptionFilter<HttpException | GraphQLError, GraphQLError> {
  catch(exception: HttpException | GraphQLError): GraphQLError {
    if (exception instanceof GraphQLError) return exception;
    const { status, body } = errorAnswerOf(exception);
    const { code, message, details } = body.error;
    return new GraphQLError(message, { extensions: { code, status, ...(details === undefined ? {} : { details }) } });
  }
}
