import type { Server } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import { createPaymentsApp, type HttpPlatform } from '../../src/bootstrap.js';
import { parseApiKeys } from '../../src/config/app-config.js';
import { onChosenDatabases } from './chosen-databases.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './test-database.js';

/** The example API, started on a real HTTP server and a database of its own. */
export interface RunningPaymentsApp {
  readonly app: INestApplication;
  /** The Node HTTP server, for supertest. */
  readonly server: Server;
  readonly dataSource: DataSource;
  readonly database: TestDatabase;
  close(): Promise<void>;
}

/** The webhook secret of every test instance of the example API. */
export const TEST_WEBHOOK_SECRET = 'whsec_test';

/** The combinations every rule is proven on: each database TEST_DATABASES chooses (all by default) on both platforms. */
export const PLATFORM_MATRIX: ReadonlyArray<readonly [DatabaseKind, HttpPlatform]> = onChosenDatabases([
  ['mariadb', 'express'],
  ['mariadb', 'fastify'],
  ['postgres', 'express'],
  ['postgres', 'fastify'],
  ['sqlite', 'express'],
  ['sqlite', 'fastify'],
] as const);

export async function startPaymentsApp(
  kind: DatabaseKind,
  platform: HttpPlatform,
  suite: string,
): Promise<RunningPaymentsApp> {
  const database = await createTestDatabase(kind, `${suite}_${platform}`);
  const app = await createPaymentsApp(
    {
      port: 0,
      databaseUrl: database.databaseUrl,
      sqlitePath: database.sqlitePath,
      apiKeys: parseApiKeys('key-acme:acme,key-globex:globex'),
      webhookSecret: TEST_WEBHOOK_SECRET,
      atomic: kind !== 'sqlite',
      idempotency: {},
    },
    platform,
    ['error'],
  );
  await app.init();
  if (platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
  return {
    app,
    server: app.getHttpServer(),
    dataSource: app.get<DataSource>(getDataSourceToken()),
    database,
    async close() {
      await app.close();
      await database.drop();
    },
  };
}
