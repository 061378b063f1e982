import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { headerValues, httpExchangeOf } from './http/http-exchange.js';
import { IdempotentRoutes } from './idempotent-routes.js';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions } from './idempotency.options.js';
import { acceptKey } from './key/accepted-key.js';
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
    const key = acceptKey(headerValues(exchange.incoming, headerName), { name: headerName, carrier: 'header' }, route);
    if (key !== undefined) rememberRequestKey(exchange.incoming, key);
    return true;
  }
}
