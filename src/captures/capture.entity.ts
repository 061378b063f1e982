import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One capture of a payment, recorded when a `payment.capture` event is processed. */
@Entity({ name: 'captures' })
export class Capture {
  @PrimaryColumn({ type: 'varchar', length: 40 })
  id!: string;

  @Column({ name: 'event_id', type: 'varchar', length: 255 })
  eventId!: string;

  @Column({ name: 'payment_id', type: 'varchar', length: 40 })
  paymentId!: string;

  @Column({ type: 'bigint', transformer: { to: (value: number) => value, from: (value: string | number) => Number(value) } })
  amount!: number;

  @Column({ name: 'captured_at', type: 'varchar', length: 30 })
  capturedAt!: string;
}
