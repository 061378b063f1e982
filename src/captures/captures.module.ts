import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Payment } from '../payments/payment.entity.js';
import { Capture } from './capture.entity.js';
import { CaptureEventsController } from './capture-events.controller.js';
import { CapturesController } from './captures.controller.js';
import { CapturesService } from './captures.service.js';

/** Captures of payments: recorded once per `payment.capture` event, listed per payment. */
@Module({
  imports: [TypeOrmModule.forFeature([Capture, Payment])],
  controllers: [CapturesController, CaptureEventsController],
  providers: [CapturesService],
})
export class CapturesModule {}
