import { Module, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, DiscoveryModule } from '@nestjs/core';
import { RequestAccounts } from './account/request-accounts.js';
import { AtomicModeCheck } from './atomic/atomic-mode.check.js';
import { IdempotencyTransaction } from './atomic/idempotency-transaction.js';
import { ClaimCoordinator } from './claims/claim-coordinator.js';
import { OnceRunner } from './claims/once-runner.js';
import { IdempotentMutations } from './graphql/idempotent-mutations.js';
import { IdempotentMessages } from './messages/idempotent-messages.js';
import { DataSource } from 'typeorm';
import { SealingStore } from './encryption/sealing.store.js';
import { RawBodyCheck } from './fingerprint/raw-body.check.js';
import { IdempotencyErrorFilter } from './idempotency-error.filter.js';
import { IdempotencyKeyGuard } from './idempotency-key.guard.js';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';
import { ConfigurableIdempotencyModule, IDEMPOTENCY_MODULE_OPTIONS } from './idempotency.module-definition.js';
import { ATOMIC_DATA_SOURCE, RESOLVED_OPTIONS } from './idempotency.constants.js';
import { resolveModuleOptions, type IdempotencyModuleOptions, type ResolvedModuleOptions } from './idempotency.options.js';
import { IdempotencyService } from './idempotency.service.js';
import { IdempotentRoutes } from './idempotent-routes.js';
import { LeaseHeartbeats } from './lease/lease-heartbeats.js';
import { openApiDocumentationProvider } from './openapi/openapi-documentation.provider.js';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from './store/idempotency-store.js';
import { ReplayCachingStore } from './store/replay-cache.store.js';
import { TypeOrmIdempotencyStore } from './store/typeorm-idempotency.store.js';

const providers: Provider[] = [
  {
    provide: RESOLVED_OPTIONS,
    inject: [IDEMPOTENCY_MODULE_OPTIONS],
    useFactory: (options: IdempotencyModuleOptions) => resolveModuleOptions(options),
  },
  {
    provide: IDEMPOTENCY_STORE,
    inject: [RESOLVED_OPTIONS, { token: DataSource, optional: true }],
    useFactory: (options: ResolvedModuleOptions, injected?: DataSource): IdempotencyStore => {
      const configured = options.store ?? typeOrmStore(options, injected);
      // Sealing sits below the cache: memory holds opened responses, the database only sealed bytes.
      const store = options.encryption ? new SealingStore(configured, options.encryption) : configured;
      return options.replayCache === false ? store : new ReplayCachingStore(store, options.replayCache);
    },
  },
  {
    provide: ATOMIC_DATA_SOURCE,
    inject: [RESOLVED_OPTIONS, { token: DataSource, optional: true }],
    useFactory: (options: ResolvedModuleOptions, injected?: DataSource) => options.dataSource ?? injected,
  },
  {
    provide: RequestAccounts,
    inject: [RESOLVED_OPTIONS],
    useFactory: (options: ResolvedModuleOptions) => new RequestAccounts(options.account),
  },
  IdempotentRoutes,
  IdempotencyService,
  LeaseHeartbeats,
  ClaimCoordinator,
  OnceRunner,
  IdempotentMutations,
  IdempotentMessages,
  IdempotencyTransaction,
  AtomicModeCheck,
  RawBodyCheck,
  openApiDocumentationProvider,
  // Global enhancers that act only on idempotent routes: a route needs nothing but @Idempotent().
  { provide: APP_GUARD, useClass: IdempotencyKeyGuard },
  { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
  { provide: APP_FILTER, useClass: IdempotencyErrorFilter },
];

function typeOrmStore(options: ResolvedModuleOptions, injected: DataSource | undefined): IdempotencyStore {
  const dataSource = options.dataSource ?? injected;
  if (!dataSource) {
    throw new Error(
      'nestjs-idempotency: no store. Import TypeOrmModule.forRoot(...) so that its DataSource can be used, ' +
        'or pass "dataSource" (or your own "store") to IdempotencyModule.forRoot().',
    );
  }
  return new TypeOrmIdempotencyStore(dataSource, { timeoutMs: options.storeTimeoutMs });
}

/**
 * Idempotency-Key support for the whole application: `IdempotencyModule.forRoot({...})` or
 * `forRootAsync({ useFactory, inject, imports })`, then `@Idempotent()` on controller methods.
 */
@Module({ imports: [DiscoveryModule], providers, exports: [IdempotencyService, IdempotencyTransaction, IDEMPOTENCY_STORE] })
export class IdempotencyModule extends ConfigurableIdempotencyModule {}
