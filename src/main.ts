import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createPaymentsApp, type HttpPlatform } from './bootstrap.js';
import { loadAppConfig, type AppConfig } from './config/app-config.js';
import { RateLimitModule } from './rate-limit/rate-limit.module.js';

const config = loadAppConfig(process.env);
const platform: HttpPlatform = process.env.HTTP_PLATFORM === 'fastify' ? 'fastify' : 'express';
// Added here, not in AppModule: the suites that build AppModule in Jest cannot load @nestjs/throttler.
const rateLimit = config.rateLimit ? [RateLimitModule.forRoot(config.rateLimit)] : [];
const app = await createPaymentsApp(config, platform, undefined, rateLimit);
await app.listen(config.port, '127.0.0.1');
new Logger('PaymentsApi').log(
  `listening on http://127.0.0.1:${config.port} (${platform}, ${databaseLabel(config)}, ` +
    `${config.redisStore ? 'idempotency records in Redis, ' : ''}atomic mode ${config.atomic ? 'on' : `off${atomicOffReason(config)}`})`,
);

function atomicOffReason(config: AppConfig): string {
  if (config.redisStore) return ': records in Redis cannot commit with the database';
  return config.databaseUrl ? ' (IDEMPOTENCY_ATOMIC=off)' : ': it needs MySQL/MariaDB or PostgreSQL';
}

function databaseLabel(config: AppConfig): string {
  if (!config.databaseUrl) return `SQLite ${config.sqlitePath}`;
  return config.databaseUrl.startsWith('postgres') ? 'PostgreSQL' : 'MySQL';
}
