// A new Nest application that installed nestjs-idempotency from its tarball, as a user would:
// compiled by the package-install test in a folder outside this repository.
import 'reflect-metadata';
import { Body, Controller, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  CreateIdempotencyRecords1764064800000,
  IdempotencyModule,
  IdempotencyRecord,
  Idempotent,
} from 'nestjs-idempotency';

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
