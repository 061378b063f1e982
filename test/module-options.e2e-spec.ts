import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Inject,
  Injectable,
  Module,
  type ConfigurableModuleOptionsFactory,
  type DynamicModule,
  type INestApplication,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { IdempotencyModule, Idempotent, type IdempotencyModuleOptions } from 'nestjs-idempotency';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { HandlerRuns, ProbeController, probeDataSourceOptions } from './support/probe-app.js';
import { createTestDatabase } from './support/test-database.js';

/** What an application's own configuration module would hold, e.g. read from the environment. */
interface IdempotencySettings {
  readonly headerName: string;
  readonly mismatchStatus: 409 | 422;
}

const IDEMPOTENCY_SETTINGS = 'IDEMPOTENCY_SETTINGS';

@Module({
  providers: [{ provide: IDEMPOTENCY_SETTINGS, useValue: { headerName: 'X-Config-Key', mismatchStatus: 409 } satisfies IdempotencySettings }],
  exports: [IDEMPOTENCY_SETTINGS],
})
class SettingsModule {}

/** `useClass` options factory: ConfigurableModuleBuilder calls its `create()` method. */
@Injectable()
class IdempotencyOptionsFromSettings implements ConfigurableModuleOptionsFactory<IdempotencyModuleOptions, 'create'> {
  constructor(@Inject(IDEMPOTENCY_SETTINGS) private readonly settings: IdempotencySettings) {}

  create(): IdempotencyModuleOptions {
    return { headerName: this.settings.headerName, mismatchStatus: this.settings.mismatchStatus };
  }
}

interface RunningApp {
  readonly app: INestApplication;
  readonly runs: HandlerRuns;
  close(): Promise<void>;
}

/**
 * The probe routes with the library configured by `idempotency`, on a SQLite database of their own.
 * The DataSource is opened before the app and handed to TypeOrmModule, so that an app that fails to
 * start leaves no connection attempt running after the suite has dropped the database.
 */
async function startApp(idempotency: DynamicModule, suite: string): Promise<RunningApp> {
  const database = await createTestDatabase('sqlite', suite);
  const dataSource = await new DataSource(probeDataSourceOptions(database)).initialize();
  try {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRootAsync({ useFactory: () => probeDataSourceOptions(database), dataSourceFactory: async () => dataSource }),
        idempotency,
      ],
      controllers: [ProbeController],
      providers: [HandlerRuns],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: ['error'] });
    await app.init();
    return {
      app,
      runs: app.get(HandlerRuns),
      async close() {
        await app.close();
        if (dataSource.isInitialized) await dataSource.destroy();
        await database.drop();
      },
    };
  } catch (error) {
    if (dataSource.isInitialized) await dataSource.destroy();
    await database.drop();
    throw error;
  }
}

/** Expects app creation to fail, and returns the error for its message. */
async function startFailure(idempotency: DynamicModule, suite: string): Promise<Error> {
  let app: RunningApp | undefined;
  try {
    app = await startApp(idempotency, suite);
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }
  await app.close();
  throw new Error('the app started although its idempotency options are invalid');
}

/** Shared by both async styles: the factory's header is the one read, and the default one is not. */
function describeConfiguredApp(style: string, suite: string, idempotency: () => DynamicModule): void {
  describe(`forRootAsync with ${style}`, () => {
    let running: RunningApp;

    beforeAll(async () => {
      running = await startApp(idempotency(), suite);
    });

    afterAll(async () => {
      await running?.close();
    });

    it('replays a request sent again with the key in the header the options provider named (R1, R9)', async () => {
      const before = running.runs.count('echo');
      const key = randomUUID();
      const first = await request(running.app.getHttpServer()).post('/probe/echo').set('X-Config-Key', key).send({ a: 1 }).expect(201);
      const second = await request(running.app.getHttpServer()).post('/probe/echo').set('X-Config-Key', key).send({ a: 1 }).expect(201);
      expect(first.headers['idempotency-replayed']).toBeUndefined();
      expect(second.headers['idempotency-replayed']).toBe('true');
      expect(second.text).toBe(first.text);
      expect(running.runs.count('echo')).toBe(before + 1);
    });

    it('applies the other options the provider gave: key reuse answers 409 (R10)', async () => {
      const key = randomUUID();
      await request(running.app.getHttpServer()).post('/probe/echo').set('X-Config-Key', key).send({ a: 1 }).expect(201);
      const reuse = await request(running.app.getHttpServer()).post('/probe/echo').set('X-Config-Key', key).send({ a: 2 }).expect(409);
      expect(reuse.body.error.code).toBe('idempotency_key_reuse');
    });

    it('no longer reads Idempotency-Key once another header is configured (R1)', async () => {
      const before = running.runs.count('echo');
      const key = randomUUID();
      await request(running.app.getHttpServer()).post('/probe/echo').set('Idempotency-Key', key).send({ a: 1 }).expect(201);
      const again = await request(running.app.getHttpServer()).post('/probe/echo').set('Idempotency-Key', key).send({ a: 1 }).expect(201);
      expect(again.headers['idempotency-replayed']).toBeUndefined();
      expect(running.runs.count('echo')).toBe(before + 2);
    });
  });
}

describe('module options', () => {
  describeConfiguredApp('imports, inject and useFactory', 'options_async', () =>
    IdempotencyModule.forRootAsync({
      imports: [SettingsModule],
      inject: [IDEMPOTENCY_SETTINGS],
      useFactory: (settings: IdempotencySettings): IdempotencyModuleOptions => ({
        headerName: settings.headerName,
        mismatchStatus: settings.mismatchStatus,
      }),
    }),
  );

  describeConfiguredApp('imports and useClass', 'options_class', () =>
    IdempotencyModule.forRootAsync({ imports: [SettingsModule], useClass: IdempotencyOptionsFromSettings }),
  );

  describe('invalid options stop the app at start-up', () => {
    it.each([
      ['a ttl of 0', 'R12', { ttl: 0 }, /"ttl"/],
      ['an unknown option', 'R12', { ttlMs: 1000 }, /unknown option "ttlMs"/],
      ['a negative inFlightWaitMs', 'R11', { inFlightWaitMs: -1 }, /"inFlightWaitMs"/],
      ['a mismatchStatus other than 409 or 422', 'R10', { mismatchStatus: 418 }, /"mismatchStatus"/],
      ['a header name with a space', 'R1', { headerName: 'Idempotency Key' }, /"headerName"/],
      ['set-cookie in storedHeaders', 'R15', { storedHeaders: ['set-cookie'] }, /"set-cookie"/],
      ['Authorization in storedHeaders', 'R15', { storedHeaders: ['Authorization'] }, /"Authorization"/],
    ])('refuses %s in forRoot with a message naming it (%s)', async (_what, _rule, options, message) => {
      const error = await startFailure(IdempotencyModule.forRoot(options as unknown as IdempotencyModuleOptions), 'options_bad');
      expect(error.message).toMatch(message);
      expect(error.message).toContain('nestjs-idempotency');
    });

    it('refuses invalid options returned by a forRootAsync factory with a message naming the option (R15)', async () => {
      const error = await startFailure(
        IdempotencyModule.forRootAsync({ useFactory: () => ({ storedHeaders: ['X-Trace', 'Set-Cookie'] }) }),
        'options_bad',
      );
      expect(error.message).toMatch(/"Set-Cookie"/);
    });

    it('refuses @Idempotent() options naming a header that is never stored, when the decorator is applied (R15)', () => {
      const defineController = () => {
        class SessionController {
          @Idempotent({ storedHeaders: ['X-Trace', 'Authorization'] })
          login(): void {}
        }
        return SessionController;
      };
      expect(defineController).toThrow(/"Authorization"/);
    });

    it('refuses an invalid @Idempotent() ttl when the decorator is applied (R12)', () => {
      const defineController = () => {
        class OrdersController {
          @Idempotent({ ttl: 0 })
          create(): void {}
        }
        return OrdersController;
      };
      expect(defineController).toThrow(/"ttl"/);
    });

    it('fails to start without a TypeORM DataSource or a store, saying to import TypeOrmModule or pass dataSource or store (R6)', async () => {
      const error = await Test.createTestingModule({ imports: [IdempotencyModule.forRoot({})] })
        .compile()
        .then(
          () => undefined,
          (failure: unknown) => failure,
        );
      expect(error).toBeInstanceOf(Error);
      const { message } = error as Error;
      expect(message).toMatch(/TypeOrmModule/);
      expect(message).toMatch(/"dataSource"/);
      expect(message).toMatch(/"store"/);
    });
  });
});
