import type { INestApplication } from '@nestjs/common';
import type { HttpPlatform } from '../../src/bootstrap.js';

/** Allowed origin of the CORS setup the plugin suites run behind. */
export const CORS_ORIGIN = 'https://shop.example';

interface Registrable {
  register(plugin: unknown, options?: unknown): Promise<unknown>;
}

/** Response compression with each package's defaults: `compression` on Express, `@fastify/compress` on Fastify. */
export function compressResponses(platform: HttpPlatform): (app: INestApplication) => Promise<void> {
  return async (app) => {
    if (platform === 'fastify') {
      await (app as unknown as Registrable).register((await import('@fastify/compress')).default);
    } else {
      app.use((await import('compression')).default());
    }
  };
}

/**
 * What production apps commonly put around handlers, each from its usual package: compression,
 * helmet, CORS, and ETags (built into Express; `@fastify/etag` on Fastify).
 */
export function productionPlugins(platform: HttpPlatform): (app: INestApplication) => Promise<void> {
  const compression = compressResponses(platform);
  return async (app) => {
    app.enableCors({ origin: [CORS_ORIGIN], exposedHeaders: ['Idempotency-Replayed'] });
    if (platform === 'fastify') {
      const fastify = app as unknown as Registrable;
      await fastify.register((await import('@fastify/helmet')).default);
      await fastify.register((await import('@fastify/etag')).default);
    } else {
      app.use((await import('helmet')).default());
    }
    await compression(app);
  };
}
