// The example API plus one route, for `npm run bench` only: POST /bench/payments-unkeyed runs the
// handler of POST /v1/payments (the same DTO, PaymentsService.charge, the same insert and Location
// header) without @Idempotent(), the baseline of the atomic rows. Started like dist/src/main.js,
// without main.ts's rate limit, which would refuse the bench's load on POST /v1/payments.
// Plain JS on the built example: Nest's decorators applied by hand, as tsc would emit them.
import 'reflect-metadata';
import { Body, Controller, Module, Post, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CurrentAccount } from '../../dist/src/auth/current-account.decorator.js';
import { createPaymentsApp } from '../../dist/src/bootstrap.js';
import { loadAppConfig } from '../../dist/src/config/app-config.js';
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

const parameter = (decorator, index) => (target, key) => decorator(target, key, index);
const { prototype } = UnkeyedPaymentsController;
const create = Reflect.decorate(
  [
    Post(),
    parameter(CurrentAccount(), 0),
    parameter(Body(), 1),
    parameter(Res({ passthrough: true }), 2),
    // What emitDecoratorMetadata writes: the validation pipe reads the body's class from it.
    Reflect.metadata('design:paramtypes', [String, CreatePaymentDto, Object]),
  ],
  prototype,
  'create',
  Object.getOwnPropertyDescriptor(prototype, 'create'),
);
Object.defineProperty(prototype, 'create', create);
Reflect.decorate(
  [Controller('bench/payments-unkeyed'), Reflect.metadata('design:paramtypes', [PaymentsService, HttpAdapterHost])],
  UnkeyedPaymentsController,
);

class UnkeyedPaymentsModule {}
Reflect.decorate(
  [Module({ imports: [TypeOrmModule.forFeature([Payment])], controllers: [UnkeyedPaymentsController], providers: [PaymentsService] })],
  UnkeyedPaymentsModule,
);

const config = loadAppConfig(process.env);
const platform = process.env.HTTP_PLATFORM === 'fastify' ? 'fastify' : 'express';
const app = await createPaymentsApp(config, platform, ['error', 'warn'], [UnkeyedPaymentsModule]);
await app.listen(config.port, '127.0.0.1');
