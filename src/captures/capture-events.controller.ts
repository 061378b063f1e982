import { Controller } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { Idempotent } from 'nestjs-idempotency';
import { Public } from '../auth/public.decorator.js';
import { CapturesService } from './captures.service.js';

/**
 * Consumes `payment.capture` from RabbitMQ. A redelivered or republished event (same `eventId`)
 * does not capture again (R23); the library acknowledges each message once its outcome is stored,
 * and requeues it when the handler fails, so the broker's redelivery runs it again.
 */
@Controller()
export class CaptureEventsController {
  constructor(private readonly captures: CapturesService) {}

  // The broker's credentials admit the producer: an API key is for HTTP clients.
  @Public()
  @EventPattern('payment.capture')
  @Idempotent({ key: { payload: 'eventId' }, required: true, manualAck: true })
  async capture(@Payload() payload: unknown): Promise<void> {
    await this.captures.capture(payload);
  }
}
