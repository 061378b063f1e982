// The example API plus two routes, for `npm run bench` only, each the handler of an idempotent route
// without @Idempotent() (the same DTO, service call, insert and answer):
// - POST /bench/payments-unkeyed: POST /v1/payments's, the baseline of the atomic rows;
// - POST /bench/exports-unkeyed: POST /v1/exports's, the "route without @Idempotent()" row of ours,
//   which shows what the global interceptor costs a route that does not use it.
// Started like dist/src/main.js, without main.ts's rate limit, which would refuse the bench's load.
// Plain JS on the built example: Nest's decorators applied by hand, as tsc would emit them.
import 'reflect-metadata';
import { Body, Controller, HttpCode, Module, Post, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CurrentAccount } from '../../dist/src/auth/current-account.decorator.js';
import { createPaymentsApp } from '../../dist/src/bootstrap.js';
import { loadAppConfig } from '../../dist/src/config/app-config.js';
import { CreateExportDto } from '../../dist/src/exports/create-export.dto.js';
import { ExportJob } from '../../dist/src/exports/export-job.entity.js';
import { ExportsService } from '../../dist/src/exports/exports.service.js';
import { CreatePaymentDto } from '../../dist/src/payments/create-payment.dto.js';
import { Payment } from '../../dist/src/payments/payment.entity.js';
import { PaymentsService } from '../../dist/src/payments/payments.service.js';

class UnkeyedPaymentsController {
  constructor(payments, adapterHost) {
    this.payments = payments;
    this.adapterHost = adapterHost;
  }

  async create(account, body, response) {
    const { id, amount, currency, customerId, status, createdAt } = await this.payments.charge(account, body);
    this.adapterHost.httpAdapter.setHeader(response, 'Location', `/v1/payments/${id}`);
    return { id, amount, currency, customerId, status, createdAt };
  }
}

class UnkeyedExportsController {
  constructor(exports) {
    this.exports = exports;
  }

  async create(account, body) {
    const job = await this.exports.queue(account, body);
    return { id: job.id, datastreamId: job.datastreamId, status: job.status };
  }
}

const parameter = (decorator, index) => (target, key) => decorator(target, key, index);

/** Decorates `Controller.prototype.create` as tsc would emit `@Post() create(...)` with these decorators. */
function decorateCreate(Controller, decorators) {
  const { prototype } = Controller;
  Object.defineProperty(prototype, 'create', Reflect.decorate(decorators, prototype, 'create', Object.getOwnPropertyDescriptor(prototype, 'create')));
}

decorateCreate(UnkeyedPaymentsController, [
  Post(),
  parameter(CurrentAccount(), 0),
  parameter(Body(), 1),
  parameter(Res({ passthrough: true }), 2),
  // What emitDecoratorMetadata writes: the validation pipe reads the body's class from it.
  Reflect.metadata('design:paramtypes', [String, CreatePaymentDto, Object]),
]);
Reflect.decorate(
  [Controller('bench/payments-unkeyed'), Reflect.metadata('design:paramtypes', [PaymentsService, HttpAdapterHost])],
  UnkeyedPaymentsController,
);

decorateCreate(UnkeyedExportsController, [
  Post(),
  HttpCode(202),
  parameter(CurrentAccount(), 0),
  parameter(Body(), 1),
  Reflect.metadata('design:paramtypes', [String, CreateExportDto]),
]);
Reflect.decorate([Controller('bench/exports-unkeyed'), Reflect.metadata('design:paramtypes', [ExportsService])], UnkeyedExportsController);

class UnkeyedRoutesModule {}
Reflect.decorate(
  [
    Module({
      imports: [TypeOrmModule.forFeature([Payment, ExportJob])],
      controllers: [UnkeyedPaymentsController, UnkeyedExportsController],
      providers: [PaymentsService, ExportsService],
    }),
  ],
  UnkeyedRoutesModule,
);

const config = loadAppConfig(process.env);
const platform = process.env.HTTP_PLATFORM === 'fastify' ? 'fastify' : 'express';
const app = await createPaymentsApp(config, platform, ['error', 'warn'], [UnkeyedRoutesModule]);
await app.listen(config.port, '127.0.0.1');
