import { HttpException } from '@nestjs/common';

/** The example API's error body: the same shape as the idempotency library's, `{"error":{code,message}}`. */
export interface ApiErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details?: unknown };
}

/** An HttpException whose response is the API's error body. */
export function apiError(status: number, code: string, message: string, details?: unknown): HttpException {
  return new HttpException(apiErrorBody(code, message, details), status);
}

/** The API's error body; `details` only when there are some (validation_failed's fields). */
export function apiErrorBody(code: string, message: string, details?: unknown): ApiErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Whether a body already has the API's shape (as `apiError` and the idempotency library build it). */
export function isApiErrorBody(body: unknown): body is ApiErrorBody {
  const error = (body as Partial<ApiErrorBody> | null)?.error;
  return typeof error === 'object' && error !== null && typeof error.code === 'string' && typeof error.message === 'string';
}
