import { Catch, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { renderIdempotencyError } from './errors/error-formatter.js';
import { IdempotencyError } from './errors/idempotency.error.js';
import type { GraphQLError } from 'graphql';
import { throwError, type Observable } from 'rxjs';
import { GraphqlRefusal, refusalAsGraphqlError } from './graphql/graphql-errors.js';
import { loadGraphql } from './graphql/graphql-package.js';
import { rpcRefusalOf } from './messages/rpc-errors.js';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions } from './idempotency.options.js';

/**
 * Sends the library's refusals in the configured format, with their headers (R17). GraphQL and
 * message handlers get them in their transport's form (the adapters convert their own; this also
 * serves an `IdempotencyError` thrown inside a resolver or handler, e.g. by a nested `runOnce`),
 * answered here so that Nest does not log each refusal as an unhandled error.
 */
@Catch(IdempotencyError, GraphqlRefusal)
export class IdempotencyErrorFilter implements ExceptionFilter<IdempotencyError | GraphqlRefusal> {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  catch(error: IdempotencyError | GraphqlRefusal, host: ArgumentsHost): GraphqlRefusal | Promise<GraphQLError> | Observable<never> | void {
    if (error instanceof GraphqlRefusal) return error;
    const transport = host.getType<'http' | 'graphql' | 'rpc'>();
    if (transport === 'graphql') return loadGraphql().then((graphql) => refusalAsGraphqlError(graphql, error));
    // What Nest's RPC filter does with an RpcException: the requester gets its error object.
    if (transport === 'rpc') return throwError(() => rpcRefusalOf(error));
    if (transport !== 'http') throw error;
    const adapter = this.adapterHost.httpAdapter;
    const response = host.switchToHttp().getResponse<unknown>();
    const rendered = renderIdempotencyError(error, this.options.errorFormatter);
    for (const [name, value] of Object.entries(rendered.headers)) adapter.setHeader(response, name, value);
    adapter.reply(response, rendered.body, rendered.status);
  }
}
