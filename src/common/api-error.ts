import { HttpException } from '@nestjs/common';

/** The example API's error body: the same shape as the idempotency library's, `{"error":{code,message}}`. */
export function apiError(status: number, code: string, message: string, details?: unknown): HttpException {
  return new HttpException({ error: details === undefined ? { code, message } : { code, message, details } }, status);
}
