import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { IdempotencyKeyMissingError } from './errors/idempotency-key-missing.error.js';
import { InvalidIdempotencyKeyError } from './errors/invalid-idempotency-key.error.js';
import { headerValues, httpExchangeOf } from './http/http-exchange.js';
import { IdempotentRoutes } from './idempotent-routes.js';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions } from './idempotency.options.js';
import { describeKeyFormat, parseIdempotencyKey } from './key/idempotency-key.parser.js';
import { rememberRequestKey } from './key/request-key.js';

/** Checks the `Idempotency-Key` header of idempotent routes: presence where required, format (R1-R4). */
@Injectable()
export class IdempotencyKeyGuard implements CanActivate {
  constructor(
    private readonly routes: IdempotentRoutes,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const exchange = httpExchangeOf(context);
    const route = this.routes.optionsFor(context, exchange.fingerprintInput.method);
    if (!route) return true;
    const { headerName } = this.options;
    const parsed = parseIdempotencyKey(headerValues(exchange.incoming, headerName), route.keyFormat);
    if (parsed.ok) {
      rememberRequestKey(exchange.incoming, parsed.key);
      return true;
    }
    if (parsed.failure === 'missing') {
      if (route.required) throw new IdempotencyKeyMissingError(headerName);
      return true;
    }
    throw new InvalidIdempotencyKeyError(headerName, describeKeyFormat(route.keyFormat));
  }
}
