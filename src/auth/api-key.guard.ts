import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { apiError } from '../common/api-error.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { AppConfig } from '../config/app-config.js';
import { Public } from './public.decorator.js';
import { requestOf } from './request-of.js';

/**
 * `X-Api-Key` authentication: the key names the account, which scopes idempotency keys. As a
 * global guard it runs for routes and for every GraphQL field, whose request is the context's `req`.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.reflector.get(Public, context.getHandler())) return true;
    const request = requestOf(context);
    const presented = request.headers['x-api-key'];
    const account = typeof presented === 'string' ? this.config.apiKeys.get(presented) : undefined;
    if (!account) throw apiError(401, 'unauthorized', 'A valid X-Api-Key header is required.');
    request.user = { accountId: account };
    return true;
  }
}
