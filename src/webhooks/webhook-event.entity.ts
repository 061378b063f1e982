import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One provider event, recorded when it is processed: the business effect of a delivery. */
@Entity({ name: 'webhook_events' })
export class WebhookEvent {
  @PrimaryColumn({ type: 'varchar', length: 40 })
  id!: string;

  @Column({ name: 'event_id', type: 'varchar', length: 255 })
  eventId!: string;

  @Column({ type: 'varchar', length: 100 })
  type!: string;

  @Column({ name: 'processed_at', type: 'varchar', length: 30 })
  processedAt!: string;
}
