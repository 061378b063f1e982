import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IdempotencyTransaction } from 'nestjs-idempotency';
import type { Repository } from 'typeorm';
import { apiError } from '../common/api-error.js';
import { Payment } from '../payments/payment.entity.js';
import { isPaymentId } from '../payments/payment-id.js';
import { Capture } from './capture.entity.js';
import { captureEventProblem, type CaptureEvent } from './capture-event.js';

/** What processing a capture event did: stored, and what a redelivery gets again. */
export type CaptureOutcome =
  | { readonly status: 'captured'; readonly captureId: string }
  | { readonly status: 'rejected'; readonly reason: string };

@Injectable()
export class CapturesService {
  private readonly logger = new Logger('Captures');

  constructor(
    @InjectRepository(Capture) private readonly captures: Repository<Capture>,
    @InjectRepository(Payment) private readonly payments: Repository<Payment>,
    private readonly transaction: IdempotencyTransaction,
  ) {}

  /** Records one capture per event; an event that can never apply is rejected, not retried. */
  async capture(payload: unknown): Promise<CaptureOutcome> {
    const problem = captureEventProblem(payload);
    if (problem) return this.rejected(payload, problem);
    const event = payload as CaptureEvent;
    const payment = await this.payments.findOne({ where: { id: event.paymentId } });
    if (!payment) return this.rejected(event, `no payment ${event.paymentId}`);
    const capture: Capture = {
      id: `cap_${randomUUID().replaceAll('-', '')}`,
      eventId: event.eventId,
      paymentId: event.paymentId,
      amount: event.amount,
      capturedAt: new Date().toISOString(),
    };
    // Through the idempotency transaction: in atomic mode the row commits with the stored outcome.
    await this.transaction.manager.getRepository(Capture).insert(capture);
    // Work after the write (a ledger call): lets a demo or a test crash the consumer here.
    if (event.processingMs) await sleep(event.processingMs);
    return { status: 'captured', captureId: capture.id };
  }

  /** The captures of one of the account's payments, oldest first. */
  async listFor(account: string, paymentId: string): Promise<Capture[]> {
    const payment = isPaymentId(paymentId) ? await this.payments.findOne({ where: { account, id: paymentId } }) : null;
    if (!payment) throw apiError(404, 'not_found', `No payment ${paymentId}.`);
    return this.captures.find({ where: { paymentId }, order: { capturedAt: 'ASC', id: 'ASC' } });
  }

  private rejected(payload: unknown, reason: string): CaptureOutcome {
    const eventId = (payload as { eventId?: unknown } | null)?.eventId;
    this.logger.warn(`payment.capture ${typeof eventId === 'string' ? eventId : '(no eventId)'} rejected: ${reason}`);
    return { status: 'rejected', reason };
  }
}
