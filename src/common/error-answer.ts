import { STATUS_CODES } from 'node:http';
import { HttpException, HttpStatus } from '@nestjs/common';
import { apiErrorBody, isApiErrorBody, type ApiErrorBody } from './api-error.js';
import { isDatabaseUnavailable } from './database-unavailable.js';

/** What the API answers an error with: a status and the API's error body (R17). */
export interface ErrorAnswer {
  readonly status: number;
  readonly body: ApiErrorBody;
}

const UNEXPECTED = 'An unexpected error occurred.';

// The JSON parsers' refusals of a body: Express's body-parser (a SyntaxError it marks with this type)
// and Fastify's (FastifyErrors with these codes), both mapped by Nest to a 400 HttpException.
const EXPRESS_JSON_PARSE_FAILED = 'entity.parse.failed';
const FASTIFY_JSON_PARSE_FAILED: ReadonlySet<string> = new Set(['FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_EMPTY_JSON_BODY']);

/**
 * The answer to any error, whoever raised it: the API's own errors (`apiError`) as they are, other
 * HTTP errors (Nest's, the body parsers', the router's) with a code named after their status, a
 * database that is unavailable as 503 `service_unavailable`, and anything else as 500 `internal_error`, with
 * nothing of the error itself.
 */
export function errorAnswerOf(exception: unknown): ErrorAnswer {
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse();
    if (isApiErrorBody(response)) return { status, body: response };
    if (status >= 500) return serverErrorAnswer(status);
    if (status === HttpStatus.BAD_REQUEST && isJsonParseFailure(exception.cause)) {
      return { status, body: apiErrorBody('malformed_json', 'The request body is not valid JSON.') };
    }
    return { status, body: apiErrorBody(codeOfStatus(status), messageOf(exception, response)) };
  }
  const clientStatus = clientErrorStatusOf(exception);
  if (clientStatus !== undefined) {
    const exposed = (exception as { expose?: unknown }).expose !== false;
    const message = exposed ? String((exception as { message?: unknown }).message) : `${STATUS_CODES[clientStatus] ?? 'Client error'}.`;
    return { status: clientStatus, body: apiErrorBody(codeOfStatus(clientStatus), message) };
  }
  if (isDatabaseUnavailable(exception)) return serverErrorAnswer(HttpStatus.SERVICE_UNAVAILABLE);
  return serverErrorAnswer(HttpStatus.INTERNAL_SERVER_ERROR);
}

/** `not_found`, `payload_too_large`, ...: the status's reason phrase in snake case; 500 is `internal_error`. */
export function codeOfStatus(status: number): string {
  if (status === HttpStatus.INTERNAL_SERVER_ERROR) return 'internal_error';
  const phrase = STATUS_CODES[status];
  return phrase === undefined ? `http_${status}` : phrase.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');
}

function serverErrorAnswer(status: number): ErrorAnswer {
  return { status, body: apiErrorBody(codeOfStatus(status), status === HttpStatus.INTERNAL_SERVER_ERROR ? UNEXPECTED : `${STATUS_CODES[status] ?? 'Server error'}.`) };
}

function isJsonParseFailure(cause: unknown): boolean {
  const { type, code } = (cause ?? {}) as { type?: unknown; code?: unknown };
  return type === EXPRESS_JSON_PARSE_FAILED || (typeof code === 'string' && FASTIFY_JSON_PARSE_FAILED.has(code));
}

function messageOf(exception: HttpException, response: string | object): string {
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (typeof message === 'string') return message;
  if (Array.isArray(message) && message.every((item) => typeof item === 'string')) return message.join('; ');
  return exception.message;
}

/**
 * The status of a client error that is not an HttpException: an `http-errors` error (Express
 * middleware) or a Fastify plugin's error (e.g. @fastify/compress refusing a Content-Encoding),
 * which Nest's adapters leave unmapped. Any other error is the server's.
 */
function clientErrorStatusOf(exception: unknown): number | undefined {
  // Not `instanceof Error`: an error of Node's own modules (zlib's, under @fastify/compress) is of another realm than the app's under Jest.
  if (typeof exception !== 'object' || exception === null) return undefined;
  const { statusCode, expose, code, message } = exception as { statusCode?: unknown; expose?: unknown; code?: unknown; message?: unknown };
  if (typeof message !== 'string') return undefined;
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 400 || statusCode > 499) return undefined;
  const fromHttpErrors = typeof expose === 'boolean';
  const fromFastify = typeof code === 'string' && code.startsWith('FST_');
  return fromHttpErrors || fromFastify ? statusCode : undefined;
}
