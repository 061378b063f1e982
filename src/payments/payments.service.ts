import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IdempotencyTransaction } from 'nestjs-idempotency';
import type { Repository } from 'typeorm';
import { apiError } from '../common/api-error.js';
import type { CreatePaymentDto } from './create-payment.dto.js';
import { Payment } from './payment.entity.js';
import { isPaymentId, newPaymentId } from './payment-id.js';

/** Customer ids that make the fake processor misbehave, to show stored and released outcomes. */
const DECLINED_CUSTOMER = 'cus_declined';
const FAILING_CUSTOMER = 'cus_error';
/** Fails after the payment row is written: atomic mode rolls the row back, plain mode keeps it. */
const FAILING_AFTER_WRITE_CUSTOMER = 'cus_error_after_write';

@Injectable()
export class PaymentsService {
  constructor(
    @InjectRepository(Payment) private readonly payments: Repository<Payment>,
    private readonly transaction: IdempotencyTransaction,
  ) {}

  async charge(account: string, request: CreatePaymentDto): Promise<Payment> {
    if (request.customerId === DECLINED_CUSTOMER) {
      throw apiError(402, 'card_declined', 'The card was declined.');
    }
    if (request.customerId === FAILING_CUSTOMER) {
      throw new Error('The payment processor failed unexpectedly.');
    }
    const payment = this.payments.create({
      id: newPaymentId(),
      account,
      amount: request.amount,
      currency: request.currency,
      customerId: request.customerId,
      status: 'succeeded',
      createdAt: new Date().toISOString(),
    });
    // Through the idempotency transaction: in atomic mode the row commits with the stored response.
    // insert, not save: save() reads the row first to choose between INSERT and UPDATE.
    await this.transaction.manager.getRepository(Payment).insert(payment);
    // Work after the write (a receipt, a ledger call): lets a demo or a test crash the process here.
    if (request.processingMs) await sleep(request.processingMs);
    if (request.customerId === FAILING_AFTER_WRITE_CUSTOMER) {
      throw new Error('The payment processor failed after the payment was recorded.');
    }
    return payment;
  }

  list(account: string): Promise<Payment[]> {
    return this.payments.find({ where: { account }, order: { createdAt: 'DESC', id: 'DESC' } });
  }

  async findOne(account: string, id: string): Promise<Payment> {
    const payment = isPaymentId(id) ? await this.payments.findOne({ where: { account, id } }) : null;
    if (!payment) throw apiError(404, 'not_found', `No payment ${id}.`);
    return payment;
  }
}
