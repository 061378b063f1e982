import type { Server } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import { createPaymentsApp, type HttpPlatform } from '../../src/bootstrap.js';
import { parseApiKeys } from '../../src/config/app-config.js';
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

const EVERY_COMBINATION: ReadonlyArray<readonly [DatabaseKind, HttpPlatform]> = [
  ['mariadb', 'express'],
  ['mariadb', 'fastify'],
  ['postgres', 'express'],
  ['postgres', 'fastify'],
  ['sqlite', 'express'],
  ['sqlite', 'fastify'],
];

/**
 * The combinations every rule is proven on: all of them, or those of the databases TEST_DATABASES
 * names (`mariadb`, `postgres`, `sqlite`, comma-separated), as CI runs the example's suites on one
 * database on the Nodes other than 24. A name it does not know fails the run rather than narrowing
 * it to nothing.
 */
export const PLATFORM_MATRIX: ReadonlyArray<readonly [DatabaseKind, HttpPlatform]> = narrowedTo(process.env.TEST_DATABASES);

function narrowedTo(databases: string | undefined): ReadonlyArray<readonly [DatabaseKind, HttpPlatform]> {
  if (!databases) return EVERY_COMBINATION;
  const names = databases.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !EVERY_COMBINATION.some(([database]) => database === name));
  if (unknown.length > 0) throw new Error(`TEST_DATABASES names ${unknown.join(', ')}: choose among mariadb, postgres and sqlite`);
  return EVERY_COMBINATION.filter(([database]) => names.includes(database));
}

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
