import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Captures of payments, one row per processed `payment.capture` event. */
export class CreateCaptures1764065200000 implements MigrationInterface {
  name = 'CreateCaptures1764065200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'captures',
        columns: [
          { name: 'id', type: 'varchar', length: '40', isPrimary: true },
          { name: 'event_id', type: 'varchar', length: '255' },
          { name: 'payment_id', type: 'varchar', length: '40' },
          { name: 'amount', type: 'bigint' },
          { name: 'captured_at', type: 'varchar', length: '30' },
        ],
        // Not unique on event_id on purpose: a second processing of an event would show as a second row.
        indices: [new TableIndex({ name: 'idx_captures_payment', columnNames: ['payment_id'] })],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('captures');
  }
}
