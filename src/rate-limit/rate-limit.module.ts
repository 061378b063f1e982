import { Module, type DynamicModule, type ExecutionContext } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import type { RateLimitConfig } from '../config/app-config.js';
import { PaymentsResolver } from '../graphql/payments.resolver.js';
import { PaymentsController } from '../payments/payments.controller.js';
import { AccountThrottlerGuard } from './account-throttler.guard.js';

// What moves money is limited, over REST and GraphQL; reads and the other routes are not.
const LIMITED_HANDLERS: ReadonlySet<unknown> = new Set([PaymentsController.prototype.create, PaymentsResolver.prototype.createPayment]);

/**
 * `POST /v1/payments` and the `createPayment` mutation limited per account (R24: replays are free). Loaded by main.ts only:
 * `@nestjs/throttler` is CommonJS and cannot be loaded where Jest builds the app in-process.
 */
@Module({})
export class RateLimitModule {
  static forRoot(config: RateLimitConfig): DynamicModule {
    return {
      module: RateLimitModule,
      imports: [
        ThrottlerModule.forRoot({
          throttlers: [{ limit: config.limit, ttl: config.windowMs }],
          skipIf: (context: ExecutionContext) => !LIMITED_HANDLERS.has(context.getHandler()),
        }),
      ],
      providers: [{ provide: APP_GUARD, useClass: AccountThrottlerGuard }],
    };
  }
}
