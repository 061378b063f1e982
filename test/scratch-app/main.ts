// A new Nest application that installed nestjs-idempotency from its tarball, as a user would:
// compiled by the package-install test in a folder outside this repository.
import 'reflect-metadata';
import { createRequire } from 'node:module';
import { Body, Controller, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  CreateIdempotencyRecords1764064800000,
  IdempotencyModule,
  IdempotencyRecord,
  Idempotent,
} from 'nestjs-idempotency';

// better-sqlite3 12 aborts Node 24.19+ when its statements are collected; 13 needs Node 22 and
// TypeORM 1.1 still names 12 as its peer, so on Node 22+ this app installs 13 as better-sqlite3-13.
const sqliteDriver = createRequire(import.meta.url)(
  Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-13' : 'better-sqlite3',
) as unknown;

let orders = 0;

@Controller('orders')
class OrdersController {
  @Post()
  @Idempotent({ required: true })
  create(@Body() body: Record<string, unknown>): Record<string, unknown> {
    orders += 1;
    return { id: `ord_${orders}`, createdAt: new Date().toISOString(), body };
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({
      type: 'better-sqlite3',
      driver: sqliteDriver,
      database: process.env.SQLITE_PATH ?? 'scratch.sqlite',
      entities: [IdempotencyRecord],
      migrations: [CreateIdempotencyRecords1764064800000],
      migrationsRun: true,
    }),
    IdempotencyModule.forRoot({ account: () => 'scratch' }),
  ],
  controllers: [OrdersController],
})
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
console.log(`listening on ${await app.getUrl()}`);
