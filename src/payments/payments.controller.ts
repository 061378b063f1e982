import { Body, Controller, Get, Param, Post, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Idempotent } from 'nestjs-idempotency';
import { CurrentAccount } from '../auth/current-account.decorator.js';
import { CreatePaymentDto } from './create-payment.dto.js';
import type { Payment } from './payment.entity.js';
import { PaymentsService } from './payments.service.js';

type PaymentView = Omit<Payment, 'account'>;

@Controller('v1/payments')
export class PaymentsController {
  constructor(
    private readonly payments: PaymentsService,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  @Post()
  @Idempotent({ required: true })
  async create(
    @CurrentAccount() account: string,
    @Body() body: CreatePaymentDto,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<PaymentView> {
    const payment = await this.payments.charge(account, body);
    this.adapterHost.httpAdapter.setHeader(response, 'Location', `/v1/payments/${payment.id}`);
    return view(payment);
  }

  @Get()
  async list(@CurrentAccount() account: string): Promise<{ data: PaymentView[] }> {
    return { data: (await this.payments.list(account)).map(view) };
  }

  @Get(':id')
  async findOne(@CurrentAccount() account: string, @Param('id') id: string): Promise<PaymentView> {
    return view(await this.payments.findOne(account, id));
  }
}

function view(payment: Payment): PaymentView {
  const { id, amount, currency, customerId, status, createdAt } = payment;
  return { id, amount, currency, customerId, status, createdAt };
}
