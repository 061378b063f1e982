import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { IdempotencyModule, RedisIdempotencyStore, type IdempotencyModuleOptions } from 'nestjs-idempotency';
import { ApiKeyGuard } from './auth/api-key.guard.js';
import { CapturesModule } from './captures/captures.module.js';
import { ApiExceptionFilter } from './common/api-exception.filter.js';
import { AppConfigModule } from './config/app-config.module.js';
import type { AppConfig } from './config/app-config.js';
import { dataSourceOptions } from './database/data-source-options.js';
import { ExportsModule } from './exports/exports.module.js';
import { PaymentsGraphqlModule } from './graphql/payments-graphql.module.js';
import { HealthController } from './health/health.controller.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { PaymentsModule } from './payments/payments.module.js';
import { RedisStoreModule } from './redis-store/redis-store.module.js';
import { WebhooksModule } from './webhooks/webhooks.module.js';

/** Modules added to the example by its entry point, such as the rate limit that main.ts loads. */
export type ExtraImports = NonNullable<ModuleMetadata['imports']>;

/** The example payments API, wired as an application would wire the idempotency library. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, extraImports: ExtraImports = []): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // Global guards run in the order their modules are scanned: ApiKeyGuard (this module's own)
        // first, so a rate limit keyed by account sees the account; these before IdempotencyKeyGuard,
        // so a request with a malformed key is counted too.
        ...extraImports,
        AppConfigModule.forRoot(config),
        TypeOrmModule.forRoot(dataSourceOptions(config.databaseUrl, config.sqlitePath)),
        idempotencyModule(config),
        PaymentsModule,
        PaymentsGraphqlModule,
        CapturesModule,
        ExportsModule,
        WebhooksModule,
        MetricsModule,
      ],
      controllers: [HealthController],
      providers: [
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        // Registered before IdempotencyModule's filter (this module is scanned first), so Nest asks
        // that one first: the library's refusals keep the library's rendering.
        { provide: APP_FILTER, useClass: ApiExceptionFilter },
      ],
    };
  }
}

// Keys are scoped by request.user.accountId, which ApiKeyGuard sets: the default resolver.
function idempotencyModule(config: AppConfig): DynamicModule {
  const options: IdempotencyModuleOptions = {
    purgeIntervalMs: 60 * 60 * 1000,
    atomic: config.atomic,
    // Timings, the replay cache and encryption at rest (IDEMPOTENCY_ENCRYPTION_KEYS) from the environment.
    ...definedOnly(config.idempotency),
  };
  // The TypeORM store in the app's database, unless IDEMPOTENCY_STORE=redis.
  if (!config.redisStore) return IdempotencyModule.forRoot(options);
  return IdempotencyModule.forRootAsync({
    imports: [RedisStoreModule.forRoot(config.redisStore)],
    inject: [RedisIdempotencyStore],
    useFactory: (store: RedisIdempotencyStore) => ({ ...options, store }),
  });
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}
