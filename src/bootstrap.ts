import { NestFactory } from '@nestjs/core';
import type { INestApplication, LogLevel } from '@nestjs/common';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import compression from 'compression';
import { AppModule, type ExtraImports } from './app.module.js';
import { answerClientError } from './common/client-error.js';
import { errorAnswerOf } from './common/error-answer.js';
import { refuseNonUtf8Json } from './common/json-charset.middleware.js';
import { apiValidationPipe } from './common/validation.pipe.js';
import type { AppConfig, RabbitMqConfig } from './config/app-config.js';

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
  // Before the body parsers, which Nest registers at init().
  app.use(refuseNonUtf8Json);
  app.useGlobalPipes(apiValidationPipe());
  if (config.rabbitmq) connectCaptureConsumer(app, config.rabbitmq);
  await serveApiDocs(app, platform);
  // SIGTERM lets in-flight requests finish and store their outcome before the process exits.
  app.enableShutdownHooks();
  return app;
}

/**
 * The consumer of `payment.capture` events from RabbitMQ, acknowledged by hand (`noAck: false`):
 * the idempotency library acknowledges each message once its outcome is stored. It inherits the
 * app's global interceptor, guards and pipes, as the library's interceptor must see its handlers.
 * Started by `app.startAllMicroservices()`.
 */
function connectCaptureConsumer(app: INestApplication, rabbitmq: RabbitMqConfig): void {
  app.connectMicroservice<MicroserviceOptions>(
    {
      transport: Transport.RMQ,
      options: { urls: [rabbitmq.url], queue: rabbitmq.queue, noAck: false, prefetchCount: 32, queueOptions: { durable: true } },
    },
    { inheritAppConfig: true },
  );
}

/**
 * Swagger UI at `GET /docs`, the OpenAPI document at `GET /docs-json`. The document is built here,
 * before `init()`, as applications usually do: the idempotent routes are already complete, with
 * nothing declared for them in the controllers (R25).
 */
async function serveApiDocs(app: INestApplication, platform: HttpPlatform): Promise<void> {
  const config = new DocumentBuilder()
    .setTitle('Payments API')
    .setDescription('The example API of nestjs-idempotency: payments and exports that are safe to retry with an Idempotency-Key.')
    .setVersion('1.0')
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-Api-Key' }, 'api-key')
    .addSecurityRequirements('api-key')
    .build();
  const ui = platform === 'express' || (await canServeUiFilesOnFastify());
  SwaggerModule.setup('docs', app, SwaggerModule.createDocument(app, config), { ui });
}

// On Fastify the UI's files are served by @fastify/static, which SwaggerModule loads when the app
// starts and, failing that, ends the process. It cannot be loaded inside Jest's ESM sandbox on
// Node 20 (it require()s an ES module): there the app serves the document without the UI.
async function canServeUiFilesOnFastify(): Promise<boolean> {
  try {
    await import('@fastify/static');
    return true;
  } catch {
    return false;
  }
}

// Responses are compressed as production apps commonly do, with each package's default threshold.
async function createOnExpress(config: AppConfig, logger: LogLevel[], extraImports: ExtraImports): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(config, extraImports), { logger, rawBody: true });
  app.use(compression());
  // Requests Node's HTTP parser refuses (e.g. headers too large) never reach Express.
  app.getHttpServer().on('clientError', answerClientError);
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
    new FastifyAdapter({
      // Fastify's router refuses a malformed path or an over-long parameter, and Node's parser a
      // malformed request, before Nest sees the request: answered here in the API's error shape.
      frameworkErrors: (error: Error, _request: unknown, reply: import('fastify').FastifyReply) => {
        const { status, body } = errorAnswerOf(error);
        void reply.status(status).send(body);
      },
      clientErrorHandler: answerClientError,
    }),
    { logger, rawBody: true },
  );
  await app.register(compress);
  return app;
}
