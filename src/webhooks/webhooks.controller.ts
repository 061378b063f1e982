import { Body, Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { Public } from '../auth/public.decorator.js';
import { ProviderEventDto } from './provider-event.dto.js';
import { WebhookSignatureGuard } from './webhook-signature.guard.js';
import { WebhooksService, type DeliveryReceipt } from './webhooks.service.js';

/** The payment provider's webhook: authenticated by its signature, not by an API key. */
@Controller('v1/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post('provider')
  @Public()
  @HttpCode(200)
  @UseGuards(WebhookSignatureGuard)
  receive(@Body() event: ProviderEventDto, @Req() request: { rawBody?: Buffer }): Promise<DeliveryReceipt> {
    return this.webhooks.receive(event, request.rawBody ?? Buffer.alloc(0));
  }
}
