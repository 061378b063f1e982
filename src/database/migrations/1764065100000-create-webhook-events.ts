import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Processed provider events, one row per processing: the webhook's business effect. */
export class CreateWebhookEvents1764065100000 implements MigrationInterface {
  name = 'CreateWebhookEvents1764065100000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'webhook_events',
        columns: [
          { name: 'id', type: 'varchar', length: '40', isPrimary: true },
          { name: 'event_id', type: 'varchar', length: '255' },
          { name: 'type', type: 'varchar', length: '100' },
          { name: 'processed_at', type: 'varchar', length: '30' },
        ],
        // Not unique on purpose: the table counts processings, so a double one would show.
        indices: [new TableIndex({ name: 'idx_webhook_events_event', columnNames: ['event_id'] })],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('webhook_events');
  }
}
