import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { apiError } from '../common/api-error.js';
import type { CreatePaymentDto } from './create-payment.dto.js';
import { Payment } from './payment.entity.js';

/** Customer ids that make the fake processor misbehave, to show stored and released outcomes. */
const DECLINED_CUSTOMER = 'cus_declined';
const FAILING_CUSTOMER = 'cus_error';

@Injectable()
export class PaymentsService {
  constructor(@InjectRepository(Payment) private readonly payments: Repository<Payment>) {}

  async charge(account: string, request: CreatePaymentDto): Promise<Payment> {
    if (request.customerId === DECLINED_CUSTOMER) {
      throw apiError(402, 'card_declined', 'The card was declined.');
    }
    if (request.customerId === FAILING_CUSTOMER) {
      throw new Error('The payment processor failed unexpectedly.');
    }
    const payment = this.payments.create({
      id: `pay_${randomUUID().replaceAll('-', '')}`,
      account,
      amount: request.amount,
      currency: request.currency,
      customerId: request.customerId,
      status: 'succeeded',
      createdAt: new Date().toISOString(),
    });
    // insert, not save: save() reads the row first to choose between INSERT and UPDATE.
    await this.payments.insert(payment);
    return payment;
  }

  list(account: string): Promise<Payment[]> {
    return this.payments.find({ where: { account }, order: { createdAt: 'DESC', id: 'DESC' } });
  }

  async findOne(account: string, id: string): Promise<Payment> {
    const payment = await this.payments.findOne({ where: { account, id } });
    if (!payment) throw apiError(404, 'not_found', `No payment ${id}.`);
    return payment;
  }
}
