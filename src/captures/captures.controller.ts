import { Controller, Get, Param } from '@nestjs/common';
import { CurrentAccount } from '../auth/current-account.decorator.js';
import type { Capture } from './capture.entity.js';
import { CapturesService } from './captures.service.js';

type CaptureView = Omit<Capture, 'paymentId'>;

@Controller('v1/payments/:id/captures')
export class CapturesController {
  constructor(private readonly captures: CapturesService) {}

  @Get()
  async list(@CurrentAccount() account: string, @Param('id') paymentId: string): Promise<{ data: CaptureView[] }> {
    const captures = await this.captures.listFor(account, paymentId);
    return { data: captures.map(({ id, eventId, amount, capturedAt }) => ({ id, eventId, amount, capturedAt })) };
  }
}
