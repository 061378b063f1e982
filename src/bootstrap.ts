import { NestFactory } from '@nestjs/core';
import type { INestApplication, LogLevel } from '@nestjs/common';
import compression from 'compression';
import { AppModule, type ExtraImports } from './app.module.js';
import { apiValidationPipe } from './common/validation.pipe.js';
import type { AppConfig } from './config/app-config.js';

/** The HTTP platforms the example API runs on. */
export type HttpPlatform = 'express' | 'fastify';

/** Builds the example API on the chosen platform, ready to `listen()` or to test with supertest. */
export async function createPaymentsApp(
  config: AppConfig,
  platform: HttpPlatform = 'express',
  logger: LogLevel[] = ['error', 'warn', 'log'],
  // Modules only the built app loads (main.ts: the rate limit, whose package Jest cannot load).
  extraImports: ExtraImports = [],
): Promise<INestApplication> {
  const app =
    platform === 'fastify' ? await createOnFastify(config, logger, extraImports) : await createOnExpress(config, logger, extraImports);
  app.useGlobalPipes(apiValidationPipe());
  // SIGTERM lets in-flight requests finish and store their outcome before the process exits.
  app.enableShutdownHooks();
  return app;
}

// Responses are compressed as production apps commonly do, with each package's default threshold.
async function createOnExpress(config: AppConfig, logger: LogLevel[], extraImports: ExtraImports): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(config, extraImports), { logger, rawBody: true });
  app.use(compression());
  return app;
}

async function createOnFastify(config: AppConfig, logger: LogLevel[], extraImports: ExtraImports): Promise<INestApplication> {
  // Imported only when asked for: the example runs on Express by default.
  const [{ FastifyAdapter }, { default: compress }] = await Promise.all([
    import('@nestjs/platform-fastify'),
    import('@fastify/compress'),
  ]);
  const app = await NestFactory.create<import('@nestjs/platform-fastify').NestFastifyApplication>(
    AppModule.forRoot(config, extraImports),
    new FastifyAdapter(),
    { logger, rawBody: true },
  );
  await app.register(compress);
  return app;
}
