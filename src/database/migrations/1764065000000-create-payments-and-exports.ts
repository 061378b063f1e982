import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** The example API's own tables, built with TypeORM's schema API so one migration serves MySQL and SQLite. */
export class CreatePaymentsAndExports1764065000000 implements MigrationInterface {
  name = 'CreatePaymentsAndExports1764065000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'payments',
        columns: [
          { name: 'id', type: 'varchar', length: '40', isPrimary: true },
          { name: 'account', type: 'varchar', length: '191' },
          { name: 'amount', type: 'bigint' },
          { name: 'currency', type: 'varchar', length: '3' },
          { name: 'customer_id', type: 'varchar', length: '255' },
          { name: 'status', type: 'varchar', length: '20' },
          { name: 'created_at', type: 'varchar', length: '30' },
        ],
        indices: [new TableIndex({ name: 'idx_payments_account_created', columnNames: ['account', 'created_at'] })],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'export_jobs',
        columns: [
          { name: 'id', type: 'varchar', length: '40', isPrimary: true },
          { name: 'account', type: 'varchar', length: '191' },
          { name: 'datastream_id', type: 'bigint' },
          { name: 'status', type: 'varchar', length: '20' },
          { name: 'created_at', type: 'varchar', length: '30' },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('export_jobs');
    await queryRunner.dropTable('payments');
  }
}
