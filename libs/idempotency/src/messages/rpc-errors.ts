import type { RpcException } from '@nestjs/microservices';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import type { IdempotencyError } from '../errors/idempotency.error.js';

// `@nestjs/microservices` is an optional peer: loaded when the first message is refused, which
// happens only in an application that has it.
let loaded: Promise<typeof import('@nestjs/microservices')> | undefined;

/**
 * A contract refusal as an `RpcException`: a requester (`ClientProxy.send`) gets
 * `{ code, message, status, retryAfter? }` with the contract's code (R17).
 */
export async function refusalAsRpcException(error: IdempotencyError): Promise<RpcException> {
  loaded ??= import('@nestjs/microservices');
  const { RpcException: Exception } = await loaded;
  const retryAfter = error instanceof IdempotencyConflictError ? Number(error.headers['Retry-After']) : undefined;
  return new Exception({ code: error.code, message: error.message, status: error.getStatus(), ...(retryAfter === undefined ? {} : { retryAfter }) });
}
