import { Inject, Logger, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RedisIdempotencyStore } from 'nestjs-idempotency';
import type { RedisStoreConfig } from '../config/app-config.js';

const REDIS_CLIENT = Symbol('REDIS_CLIENT');

/**
 * The Redis idempotency store (IDEMPOTENCY_STORE=redis) and its ioredis client, connected before the
 * app starts and closed when it shuts down. Exports `RedisIdempotencyStore` for `IdempotencyModule`.
 */
@Module({})
export class RedisStoreModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly client: Redis) {}

  static forRoot(config: RedisStoreConfig): DynamicModule {
    return {
      module: RedisStoreModule,
      providers: [
        { provide: REDIS_CLIENT, useFactory: () => connect(config.url) },
        {
          provide: RedisIdempotencyStore,
          inject: [REDIS_CLIENT],
          useFactory: (client: Redis) => new RedisIdempotencyStore(client, { keyPrefix: config.keyPrefix }),
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

async function connect(url: string): Promise<Redis> {
  // Imported only when this store is chosen: apps on the TypeORM store need no ioredis installed.
  const { Redis } = await import('ioredis');
  // As the library recommends: without a connection a command fails at once (503) instead of queueing.
  const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  const logger = new Logger('RedisStore');
  // ioredis reconnects by itself; without a listener each failed attempt would print a stack trace.
  client.on('error', (error: Error) => logger.warn(`Redis connection: ${error.message}`));
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new Error(`IDEMPOTENCY_STORE=redis: no Redis answered at ${withoutPassword(url)} (REDIS_URL): ${String(error)}`);
  }
  return client;
}

function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'REDIS_URL';
  }
}
