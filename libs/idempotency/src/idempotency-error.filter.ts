import { Catch, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { renderIdempotencyError } from './errors/error-formatter.js';
import { IdempotencyError } from './errors/idempotency.error.js';
import { GraphqlRefusal } from './graphql/graphql-errors.js';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions } from './idempotency.options.js';

/**
 * Sends the library's refusals in the configured format, with their headers (R17); hands GraphQL
 * refusals to GraphQL as they are, so that Nest does not log each as an unhandled error.
 */
@Catch(IdempotencyError, GraphqlRefusal)
export class IdempotencyErrorFilter implements ExceptionFilter<IdempotencyError | GraphqlRefusal> {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  catch(error: IdempotencyError | GraphqlRefusal, host: ArgumentsHost): GraphqlRefusal | void {
    if (error instanceof GraphqlRefusal) return error;
    if (host.getType() !== 'http') throw error;
    const adapter = this.adapterHost.httpAdapter;
    const response = host.switchToHttp().getResponse<unknown>();
    const rendered = renderIdempotencyError(error, this.options.errorFormatter);
    for (const [name, value] of Object.entries(rendered.headers)) adapter.setHeader(response, name, value);
    adapter.reply(response, rendered.body, rendered.status);
  }
}
