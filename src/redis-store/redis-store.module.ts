import { Inject, Logger, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { RedisIdempotencyStore } from 'nestjs-idempotency';
import type { RedisStoreConfig } from '../config/app-config.js';
import { connectRedis } from './redis-connection.js';

const REDIS_CLIENT = Symbol('REDIS_CLIENT');

/**
 * The Redis idempotency store (IDEMPOTENCY_STORE=redis) and its ioredis client (one Redis, a
 * Cluster or a Sentinel-managed primary), connected before the app starts and closed when it shuts
 * down. Exports `RedisIdempotencyStore` for `IdempotencyModule`.
 */
@Module({})
export class RedisStoreModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly client: Redis | Cluster) {}

  static forRoot(config: RedisStoreConfig): DynamicModule {
    return {
      module: RedisStoreModule,
      providers: [
        { provide: REDIS_CLIENT, useFactory: () => connectRedis(config.connection, new Logger('RedisStore')) },
        {
          provide: RedisIdempotencyStore,
          inject: [REDIS_CLIENT],
          useFactory: (client: Redis | Cluster) =>
            new RedisIdempotencyStore(client, {
              keyPrefix: config.keyPrefix,
              timeoutMs: config.timeoutMs,
              waitForReplicas: config.waitForReplicas,
            }),
        },
      ],
      exports: [RedisIdempotencyStore],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    // QUIT lets the replies of commands already sent arrive; with no connection there is nothing to wait for.
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
