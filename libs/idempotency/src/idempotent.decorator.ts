import { applyDecorators } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { validateHandlerOptions, type IdempotentHandlerOptions } from './idempotency.options.js';

/** The handler metadata `@Idempotent()` writes; read only by `IdempotentRoutes`. */
export const IdempotentMetadata = Reflector.createDecorator<IdempotentHandlerOptions>();

/**
 * Makes a handler idempotent. On a controller method it honours the `Idempotency-Key` header: the
 * first request with a key runs the handler, later ones with the same key and request get the
 * stored response. On a GraphQL mutation or a message handler the same holds for the key that
 * `key` points at (R23).
 */
export function Idempotent(options: IdempotentHandlerOptions = {}): MethodDecorator {
  validateHandlerOptions(options, '@Idempotent() options');
  return applyDecorators(IdempotentMetadata(options));
}
