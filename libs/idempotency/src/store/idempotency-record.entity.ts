import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One idempotency key of one account. The primary key (account, idempotency_key) is the unique
 * index that decides every race (R6): whichever insert the database accepts first owns the key.
 *
 * `synchronize: false`: the table is created by {@link CreateIdempotencyRecords1764064800000} only,
 * which picks types per database (LONGBLOB and binary collation on MySQL, bytea on PostgreSQL) that a portable entity
 * cannot state; letting `synchronize` "correct" it would shrink the body column and make keys
 * case-insensitive.
 */
@Entity({ name: 'idempotency_records', synchronize: false })
@Index('idx_idempotency_records_expires_at', ['expiresAt'])
export class IdempotencyRecord {
  @PrimaryColumn({ type: 'varchar', length: 191 })
  account!: string;

  @PrimaryColumn({ name: 'idempotency_key', type: 'varchar', length: 255 })
  key!: string;

  @Column({ type: 'varchar', length: 64 })
  fingerprint!: string;

  @Column({ type: 'varchar', length: 16 })
  state!: 'in_flight' | 'completed';

  @Column({ name: 'owner_token', type: 'varchar', length: 36 })
  ownerToken!: string;

  @Column({ type: 'varchar', length: 255, default: '' })
  route!: string;

  /** Milliseconds since the epoch, database clock. */
  @Column({ name: 'lease_expires_at', type: 'bigint' })
  leaseExpiresAt!: string;

  /** Milliseconds since the epoch, database clock. */
  @Column({ name: 'expires_at', type: 'bigint' })
  expiresAt!: string;

  /** Milliseconds since the epoch, database clock. */
  @Column({ name: 'created_at', type: 'bigint' })
  createdAt!: string;

  @Column({ name: 'response_status', type: 'integer', nullable: true })
  responseStatus!: number | null;

  @Column({ name: 'response_headers', type: 'text', nullable: true })
  responseHeaders!: string | null;

  // response_body (LONGBLOB, bytea or BLOB) is left out: no one column type is valid on every
  // database TypeORM would check it against, and the store reads it with its own SQL.
}
