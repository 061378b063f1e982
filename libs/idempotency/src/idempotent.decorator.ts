import { applyDecorators } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { validateRouteOptions, type IdempotencyRouteOptions } from './idempotency.options.js';

/** The route metadata `@Idempotent()` writes; read only by `IdempotentRoutes`. */
export const IdempotentMetadata = Reflector.createDecorator<IdempotencyRouteOptions>();

/**
 * Makes a controller method honour the `Idempotency-Key` header: the first request with a key runs
 * the handler, later ones with the same key and request get the stored response.
 */
export function Idempotent(options: IdempotencyRouteOptions = {}): MethodDecorator {
  validateRouteOptions(options, '@Idempotent() options');
  return applyDecorators(IdempotentMetadata(options));
}
