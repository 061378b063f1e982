import { Catch, IntrinsicException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { errorAnswerOf } from './error-answer.js';

/**
 * Every error an HTTP request ends in, answered in the API's one shape (R17): the API's own errors as
 * they are, Nest's and the platforms' (malformed JSON, unknown routes, bodies too large, unsupported
 * media types) with a stable code, and anything unexpected as 500 `internal_error`, logged here and
 * told to nobody. As a global filter it also sees what the body parsers and the not-found handler raise.
 *
 * The idempotency library's refusals never get here: its own filter (global too, registered by a
 * module scanned after AppModule, so Nest asks it first) renders them with their headers and the
 * configured format. GraphQL and message handlers are left to their transports' handling.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('ExceptionsHandler');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    // Returning nothing outside HTTP leaves the exception to the transport's default handling.
    if (host.getType() !== 'http') return;
    const { status, body } = errorAnswerOf(exception);
    if (status >= 500 && !(exception instanceof IntrinsicException)) this.logger.error(exception);
    const adapter = this.adapterHost.httpAdapter;
    const response = host.switchToHttp().getResponse<unknown>();
    if (adapter.isHeadersSent(response)) adapter.end(response);
    else adapter.reply(response, body, status);
  }
}
