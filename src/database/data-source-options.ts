import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CreateIdempotencyRecords1764064800000, IdempotencyRecord } from 'nestjs-idempotency';
import type { DataSourceOptions } from 'typeorm';
import { Capture } from '../captures/capture.entity.js';
import { ExportJob } from '../exports/export-job.entity.js';
import { Payment } from '../payments/payment.entity.js';
import { WebhookEvent } from '../webhooks/webhook-event.entity.js';
import { betterSqlite3ForThisNode } from './sqlite-driver.js';
import { CreateWebhookEvents1764065100000 } from './migrations/1764065100000-create-webhook-events.js';
import { CreateCaptures1764065200000 } from './migrations/1764065200000-create-captures.js';
import { CreatePaymentsAndExports1764065000000 } from './migrations/1764065000000-create-payments-and-exports.js';

/**
 * MySQL/MariaDB or PostgreSQL when a URL is given, else an embedded SQLite file, so the API runs with no server
 * to set up. Migrations (the library's and the app's) run at start.
 */
export function dataSourceOptions(databaseUrl: string | undefined, sqlitePath: string): DataSourceOptions {
  const shared = {
    entities: [Payment, ExportJob, WebhookEvent, Capture, IdempotencyRecord],
    migrations: [
      CreateIdempotencyRecords1764064800000,
      CreatePaymentsAndExports1764065000000,
      CreateWebhookEvents1764065100000,
      CreateCaptures1764065200000,
    ],
    migrationsRun: true,
    synchronize: false,
  };
  if (databaseUrl) {
    // A connection opened into a silent network would otherwise hold its pool slot forever (R18).
    if (/^postgres(ql)?:\/\//.test(databaseUrl)) return { ...shared, type: 'postgres', url: databaseUrl, connectTimeoutMS: 5000 };
    if (/^mysql:\/\//.test(databaseUrl)) return { ...shared, type: 'mysql', url: databaseUrl, charset: 'utf8mb4' };
    throw new Error('DATABASE_URL must be a mysql:// URL (MySQL or MariaDB) or a postgres:// URL (PostgreSQL)');
  }
  mkdirSync(dirname(sqlitePath), { recursive: true });
  return {
    ...shared,
    type: 'better-sqlite3',
    driver: betterSqlite3ForThisNode(),
    database: sqlitePath,
    // WAL lets readers run beside the writer; the busy timeout makes a second process wait for the
    // write lock instead of failing at once.
    prepareDatabase: (db: { pragma(statement: string): unknown }) => {
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
    },
  };
}
