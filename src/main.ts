import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createPaymentsApp, type HttpPlatform } from './bootstrap.js';
import { loadAppConfig, type AppConfig, type RabbitMqConfig } from './config/app-config.js';
import { RateLimitModule } from './rate-limit/rate-limit.module.js';

const config = loadAppConfig(process.env);
const platform: HttpPlatform = process.env.HTTP_PLATFORM === 'fastify' ? 'fastify' : 'express';
// Added here, not in AppModule: the suites that build AppModule in Jest cannot load @nestjs/throttler.
const rateLimit = config.rateLimit ? [RateLimitModule.forRoot(config.rateLimit)] : [];
const app = await createPaymentsApp(config, platform, undefined, rateLimit);
const logger = new Logger('PaymentsApi');
// Initialised before the consumer starts: a message already waiting in the queue is delivered at
// once, and its guards and interceptors must be ready for it (listen() would initialise too late).
await app.init();
if (config.rabbitmq) startConsumer(config.rabbitmq);
await app.listen(config.port, '127.0.0.1');
logger.log(
  `listening on http://127.0.0.1:${config.port} (${platform}, ${databaseLabel(config)}, ` +
    `${config.redisStore ? 'idempotency records in Redis, ' : ''}atomic mode ${config.atomic ? 'on' : `off${atomicOffReason(config)}`})`,
);

// Not awaited: with the broker down, starting the consumer waits until it answers, and the HTTP API
// must not wait with it. Nest's RabbitMQ server keeps reconnecting on its own.
function startConsumer(rabbitmq: RabbitMqConfig): void {
  const where = `RabbitMQ ${redactedUrl(rabbitmq.url)}, queue ${rabbitmq.queue}`;
  const warning = setTimeout(() => logger.warn(`${where} does not answer yet: payment.capture events wait; reconnecting`), 5000);
  warning.unref();
  app.startAllMicroservices().then(
    () => {
      clearTimeout(warning);
      logger.log(`consuming payment.capture from ${where}`);
    },
    (error: unknown) => logger.error(`${where}: ${error instanceof Error ? error.message : String(error)}`),
  );
}

function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

function atomicOffReason(config: AppConfig): string {
  if (config.redisStore) return ': records in Redis cannot commit with the database';
  return config.databaseUrl ? ' (IDEMPOTENCY_ATOMIC=off)' : ': it needs MySQL/MariaDB or PostgreSQL';
}

function databaseLabel(config: AppConfig): string {
  if (!config.databaseUrl) return `SQLite ${config.sqlitePath}`;
  return config.databaseUrl.startsWith('postgres') ? 'PostgreSQL' : 'MySQL';
}
