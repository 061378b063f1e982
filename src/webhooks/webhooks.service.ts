import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { IdempotencyService, IdempotencyTransaction } from 'nestjs-idempotency';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { AppConfig } from '../config/app-config.js';
import type { ProviderEventDto } from './provider-event.dto.js';
import { WebhookEvent } from './webhook-event.entity.js';

/** What a delivery is answered with, the first time and on every redelivery. */
export interface DeliveryReceipt {
  readonly received: true;
  readonly eventId: string;
  readonly recordId: string;
}

@Injectable()
export class WebhooksService {
  constructor(
    private readonly idempotency: IdempotencyService,
    private readonly transaction: IdempotencyTransaction,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Processes each event id once; a redelivery gets the first delivery's receipt (R23). */
  receive(event: ProviderEventDto, rawBody: Buffer): Promise<DeliveryReceipt> {
    return this.idempotency.runOnce(
      {
        scope: 'webhook:provider',
        key: event.id,
        fingerprint: createHash('sha256').update(rawBody).digest('hex'),
        atomic: this.config.atomic,
      },
      () => this.process(event),
    );
  }

  private async process(event: ProviderEventDto): Promise<DeliveryReceipt> {
    const record = {
      id: `whe_${randomUUID().replaceAll('-', '')}`,
      eventId: event.id,
      type: event.type,
      processedAt: new Date().toISOString(),
    };
    // In atomic mode this insert commits together with the stored receipt.
    await this.transaction.manager.getRepository(WebhookEvent).insert(record);
    return { received: true, eventId: event.id, recordId: record.id };
  }
}
