import { NestFactory } from '@nestjs/core';
import type { INestApplication, LogLevel } from '@nestjs/common';
import { AppModule } from './app.module.js';
import { apiValidationPipe } from './common/validation.pipe.js';
import type { AppConfig } from './config/app-config.js';

/** The HTTP platforms the example API runs on. */
export type HttpPlatform = 'express' | 'fastify';

/** Builds the example API on the chosen platform, ready to `listen()` or to test with supertest. */
export async function createPaymentsApp(
  config: AppConfig,
  platform: HttpPlatform = 'express',
  logger: LogLevel[] = ['error', 'warn', 'log'],
): Promise<INestApplication> {
  const app =
    platform === 'fastify'
      ? await NestFactory.create(AppModule.forRoot(config), await fastifyAdapter(), { logger, rawBody: true })
      : await NestFactory.create(AppModule.forRoot(config), { logger, rawBody: true });
  app.useGlobalPipes(apiValidationPipe());
  // SIGTERM lets in-flight requests finish and store their outcome before the process exits.
  app.enableShutdownHooks();
  return app;
}

async function fastifyAdapter() {
  // Imported only when asked for: the example runs on Express by default.
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  return new FastifyAdapter();
}
