import type { IdempotencyError, IdempotencyErrorCode } from './idempotency.error.js';

/** What a formatter receives about a refused request. */
export interface IdempotencyErrorDetails {
  readonly code: IdempotencyErrorCode;
  readonly message: string;
  readonly status: number;
}

/** What a formatter returns: the body and its media type. */
export interface FormattedIdempotencyError {
  readonly contentType: string;
  readonly body: unknown;
}

/** Turns a refused request into its response body (R17). */
export type IdempotencyErrorFormatter = (error: IdempotencyErrorDetails) => FormattedIdempotencyError;

/** The default: `{"error":{"code":"...","message":"..."}}`. */
export const defaultErrorFormatter: IdempotencyErrorFormatter = ({ code, message }) => ({
  contentType: 'application/json; charset=utf-8',
  body: { error: { code, message } },
});

/** RFC 9457 problem details, with the contract code as both the `type` suffix and a `code` member. */
export const problemJsonErrorFormatter: IdempotencyErrorFormatter = ({ code, message, status }) => ({
  contentType: 'application/problem+json; charset=utf-8',
  body: {
    type: `urn:nestjs-idempotency:${code}`,
    title: code.replaceAll('_', ' '),
    status,
    detail: message,
    code,
  },
});

/** A refusal ready to send: status, headers (its own and the content type) and the body text. */
export interface RenderedIdempotencyError {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Renders a contract error with the configured formatter: the one place refusals take their shape. */
export function renderIdempotencyError(error: IdempotencyError, formatter: IdempotencyErrorFormatter): RenderedIdempotencyError {
  const status = error.getStatus();
  const response = error.getResponse() as { error?: { message?: string } };
  const formatted = formatter({ code: error.code, message: response.error?.message ?? error.message, status });
  return {
    status,
    headers: { ...error.headers, 'content-type': formatted.contentType },
    body: JSON.stringify(formatted.body),
  };
}
