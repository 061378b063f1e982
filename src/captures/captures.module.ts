import { Module } from '@nestjs/common';

/** Captures of payments, recorded once per `payment.capture` event. */
@Module({})
export class CapturesModule {}
