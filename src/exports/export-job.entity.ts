import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity({ name: 'export_jobs' })
export class ExportJob {
  @PrimaryColumn({ type: 'varchar', length: 40 })
  id!: string;

  @Column({ type: 'varchar', length: 191 })
  account!: string;

  @Column({
    name: 'datastream_id',
    type: 'bigint',
    transformer: { to: (value: number) => value, from: (value: string | number) => Number(value) },
  })
  datastreamId!: number;

  @Column({ type: 'varchar', length: 20 })
  status!: 'queued';

  @Column({ name: 'created_at', type: 'varchar', length: 30 })
  createdAt!: string;
}
