import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import {
  Body,
  CanActivate,
  Controller,
  ExecutionContext,
  HttpCode,
  Inject,
  Injectable,
  Module,
  Post,
  UnauthorizedException,
  ValidationPipe,
} from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { Idempotent, NodeIdempotencyModule } from '@node-idempotency/nestjs';
import { StorageAdapterEnum } from '@node-idempotency/shared';
import { IsInt, IsOptional, IsPositive, Max, Min } from 'class-validator';
import { createPool, type Pool } from 'mysql2/promise';

// The peer of `npm run bench`, shaped like the example API's POST /v1/exports so that only the
// idempotency layer differs: the same X-Api-Key guard, the same validated body, one insert into
// MariaDB, 202; POST /v1/exports-unkeyed is the same route without @Idempotent(), the peer's baseline.
// Storage: STORAGE=redis (REDIS_URL, default 127.0.0.1:6379; keys under KEY_PREFIX) or memory.
// HTTP_PLATFORM=fastify or express.
const POOL = Symbol('POOL');
const API_KEYS = new Map([['bench-key', 'bench']]);

class CreateExportDto {
  @IsInt() @IsPositive() datastreamId!: number;
  @IsOptional() @IsInt() @Min(0) @Max(10_000) processingMs?: number;
}

@Injectable()
class ApiKeyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, unknown>; user?: unknown }>();
    const key = request.headers['x-api-key'];
    const account = typeof key === 'string' ? API_KEYS.get(key) : undefined;
    if (!account) throw new UnauthorizedException();
    request.user = { accountId: account };
    return true;
  }
}

async function queueExport(pool: Pool, body: CreateExportDto) {
  const id = `exp_${randomUUID().replaceAll('-', '')}`;
  await pool.execute(
    'INSERT INTO export_jobs (id, account, datastream_id, status, created_at) VALUES (?, ?, ?, ?, ?)',
    [id, 'bench', body.datastreamId, 'queued', new Date().toISOString()],
  );
  return { id, datastreamId: body.datastreamId, status: 'queued' };
}

@Controller('v1/exports')
class ExportsController {
  constructor(@Inject(POOL) private readonly pool: Pool) {}

  @Post()
  @HttpCode(202)
  @Idempotent()
  create(@Body() body: CreateExportDto) {
    return queueExport(this.pool, body);
  }
}

// The peer's own baseline: the same route without @Idempotent(), so without the library's interceptor.
@Controller('v1/exports-unkeyed')
class UnkeyedExportsController {
  constructor(@Inject(POOL) private readonly pool: Pool) {}

  @Post()
  @HttpCode(202)
  create(@Body() body: CreateExportDto) {
    return queueExport(this.pool, body);
  }
}

@Module({
  imports: [
    NodeIdempotencyModule.forRootAsync({
      storage:
        process.env.STORAGE === 'memory'
          ? { adapter: StorageAdapterEnum.memory }
          : { adapter: StorageAdapterEnum.redis, options: { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' } },
      cacheTTLMS: 24 * 60 * 60 * 1000,
      // The bench's own prefix, so that it can delete its keys afterwards.
      ...(process.env.KEY_PREFIX ? { cacheKeyPrefix: process.env.KEY_PREFIX } : {}),
    }),
  ],
  controllers: [ExportsController, UnkeyedExportsController],
  providers: [
    { provide: POOL, useFactory: () => createPool({ uri: process.env.DATABASE_URL, connectionLimit: 10 }) },
    { provide: APP_GUARD, useClass: ApiKeyGuard },
  ],
})
class BenchModule {}

async function main(): Promise<void> {
  const logger: Array<'error' | 'warn'> = ['error', 'warn'];
  const app =
    process.env.HTTP_PLATFORM === 'fastify'
      ? await NestFactory.create(BenchModule, new (await import('@nestjs/platform-fastify')).FastifyAdapter(), { logger })
      : await NestFactory.create(BenchModule, { logger });
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  await app.listen(Number(process.env.PORT ?? 3100), '127.0.0.1');
}

void main();
