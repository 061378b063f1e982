import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity({ name: 'payments' })
export class Payment {
  @PrimaryColumn({ type: 'varchar', length: 40 })
  id!: string;

  @Column({ type: 'varchar', length: 191 })
  account!: string;

  @Column({ type: 'bigint', transformer: { to: (value: number) => value, from: (value: string | number) => Number(value) } })
  amount!: number;

  @Column({ type: 'varchar', length: 3 })
  currency!: string;

  @Column({ name: 'customer_id', type: 'varchar', length: 255 })
  customerId!: string;

  @Column({ type: 'varchar', length: 20 })
  status!: 'succeeded';

  @Column({ name: 'created_at', type: 'varchar', length: 30 })
  createdAt!: string;
}
