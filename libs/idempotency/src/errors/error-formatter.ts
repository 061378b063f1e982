import type { IdempotencyErrorCode } from './idempotency.error.js';

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
