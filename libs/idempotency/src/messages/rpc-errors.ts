import type { RpcException } from '@nestjs/microservices';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import type { IdempotencyError } from '../errors/idempotency.error.js';

// `@nestjs/microservices` is an optional peer: loaded when the first message is refused, which
// happens only in an application that has it.
let loaded: Promise<typeof import('@nestjs/microservices')> | undefined;

/** What a requester gets for a refusal: `{ code, message, status, retryAfter? }` with the contract's code (R17). */
export interface RpcRefusal {
  readonly code: string;
  readonly message: string;
  readonly status: number;
  readonly retryAfter?: number;
}

export function rpcRefusalOf(error: IdempotencyError): RpcRefusal {
  const retryAfter = error instanceof IdempotencyConflictError ? Number(error.headers['Retry-After']) : undefined;
  return { code: error.code, message: error.message, status: error.getStatus(), ...(retryAfter === undefined ? {} : { retryAfter }) };
}

/** A contract refusal as an `RpcException`: `ClientProxy.send` rejects with its {@link RpcRefusal}. */
export async function refusalAsRpcException(error: IdempotencyError): Promise<RpcException> {
  loaded ??= import('@nestjs/microservices');
  const { RpcException: Exception } = await loaded;
  return new Exception(rpcRefusalOf(error));
}
