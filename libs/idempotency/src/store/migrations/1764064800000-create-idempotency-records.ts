import type { MigrationInterface, QueryRunner } from 'typeorm';
import { sqlFamilyOf } from '../sql-dialect.js';

/** Creates `idempotency_records` on MySQL/MariaDB, PostgreSQL or SQLite. Add it to your DataSource's `migrations`. */
export class CreateIdempotencyRecords1764064800000 implements MigrationInterface {
  name = 'CreateIdempotencyRecords1764064800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (sqlFamilyOf(queryRunner.connection.options.type) === 'mysql') {
      // A binary NO PAD collation: `abc` and `ABC` are two token keys, and so are `abc` and `abc `
      // (utf8mb4_bin ignores trailing spaces, which would let two accounts share a record).
      // LONGBLOB: a stored body may be larger than BLOB's 64 KiB.
      const collation = await exactCollation(queryRunner);
      await queryRunner.query(`
        CREATE TABLE \`idempotency_records\` (
          \`account\` VARCHAR(191) CHARACTER SET utf8mb4 COLLATE ${collation} NOT NULL,
          \`idempotency_key\` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE ${collation} NOT NULL,
          \`fingerprint\` VARCHAR(64) CHARACTER SET ascii NOT NULL,
          \`state\` VARCHAR(16) CHARACTER SET ascii NOT NULL,
          \`owner_token\` VARCHAR(36) CHARACTER SET ascii NOT NULL,
          \`route\` VARCHAR(255) NOT NULL DEFAULT '',
          \`lease_expires_at\` BIGINT NOT NULL,
          \`expires_at\` BIGINT NOT NULL,
          \`created_at\` BIGINT NOT NULL,
          \`response_status\` INT NULL,
          \`response_headers\` TEXT NULL,
          \`response_body\` LONGBLOB NULL,
          PRIMARY KEY (\`account\`, \`idempotency_key\`),
          KEY \`idx_idempotency_records_expires_at\` (\`expires_at\`)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
      return;
    }
    // PostgreSQL's default (deterministic) collation and SQLite's BINARY one compare exactly, as the
    // binary collation does on MySQL; they differ only in the type that holds bytes.
    const bodyType = sqlFamilyOf(queryRunner.connection.options.type) === 'postgres' ? 'bytea' : 'blob';
    await queryRunner.query(`
      CREATE TABLE "idempotency_records" (
        "account" varchar(191) NOT NULL,
        "idempotency_key" varchar(255) NOT NULL,
        "fingerprint" varchar(64) NOT NULL,
        "state" varchar(16) NOT NULL,
        "owner_token" varchar(36) NOT NULL,
        "route" varchar(255) NOT NULL DEFAULT '',
        "lease_expires_at" bigint NOT NULL,
        "expires_at" bigint NOT NULL,
        "created_at" bigint NOT NULL,
        "response_status" integer,
        "response_headers" text,
        "response_body" ${bodyType},
        PRIMARY KEY ("account", "idempotency_key")
      )`);
    await queryRunner.query(
      `CREATE INDEX "idx_idempotency_records_expires_at" ON "idempotency_records" ("expires_at")`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      sqlFamilyOf(queryRunner.connection.options.type) === 'mysql'
        ? 'DROP TABLE `idempotency_records`'
        : 'DROP TABLE "idempotency_records"',
    );
  }
}

/** MariaDB's binary NO PAD collation, or MySQL 8's (which has no `utf8mb4_nopad_bin`). */
async function exactCollation(queryRunner: QueryRunner): Promise<string> {
  const [row] = (await queryRunner.query('SELECT VERSION() AS version')) as Array<{ version: string }>;
  return /mariadb/i.test(row?.version ?? '') ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';
}
