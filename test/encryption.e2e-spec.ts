import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication, LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken } from '@nestjs/typeorm';
import { fingerprintRequest, IdempotencyModule } from 'nestjs-idempotency';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createPaymentsApp } from '../src/bootstrap.js';
import { loadAppConfig, parseApiKeys, type AppConfig } from '../src/config/app-config.js';
import { PLATFORM_MATRIX, TEST_WEBHOOK_SECRET } from './support/payments-app.js';
import { bodyBytes, bytes, expectFresh, expectReplayOf, type SentResponse } from './support/raw-responses.js';
import { countOf, createTestDatabase, queryRows, type TestDatabase } from './support/test-database.js';

const acme = { 'X-Api-Key': 'key-acme' };

/** The raw row of a key, as whoever steals the table reads it. */
interface RawRow {
  readonly headers: string;
  readonly body: Buffer;
  readonly fingerprint: string;
}

/** One run of the example API on the suite's database; a new run starts with an empty replay cache. */
interface Instance {
  readonly server: Server;
  readonly dataSource: DataSource;
  /** Error lines the app logged (the library logs store failures at error level). */
  readonly errors: string[];
}

/** Writes nothing; keeps error lines so a test can read what an operator would. */
function capturingLogger(errors: string[]): LoggerService {
  const ignore = (): void => undefined;
  return { log: ignore, warn: ignore, debug: ignore, verbose: ignore, fatal: ignore, error: (message: unknown) => errors.push(String(message)) };
}

describe.each(PLATFORM_MATRIX)('encryption at rest on %s with %s', (kind, platform) => {
  const [oldKey, newKey, fingerprintKey] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const base64 = (key: Buffer): string => key.toString('base64');
  let database: TestDatabase;

  /** Runs `use` against a fresh instance of the example API with these keys (none: no encryption). */
  async function withApp<T>(keys: Buffer[] | undefined, use: (instance: Instance) => Promise<T>): Promise<T> {
    const config: AppConfig = {
      port: 0,
      databaseUrl: database.databaseUrl,
      sqlitePath: database.sqlitePath,
      apiKeys: parseApiKeys('key-acme:acme'),
      webhookSecret: TEST_WEBHOOK_SECRET,
      atomic: kind !== 'sqlite',
      // Keys as the environment gives them: base64 text, the first one sealing.
      idempotency: keys ? { encryption: { keys: keys.map(base64), fingerprintKey: base64(fingerprintKey) } } : {},
    };
    const errors: string[] = [];
    let app: INestApplication | undefined;
    try {
      app = await createPaymentsApp(config, platform, ['error']);
      app.useLogger(capturingLogger(errors));
      await app.init();
      if (platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
      return await use({ server: app.getHttpServer() as Server, dataSource: app.get<DataSource>(getDataSourceToken()), errors });
    } finally {
      await app?.close();
    }
  }

  const pay = (instance: Instance, key: string, body: object): Promise<SentResponse> =>
    bytes(request(instance.server).post('/v1/payments').set(acme).set('Idempotency-Key', key).send(body));

  const paymentCount = (instance: Instance): Promise<number> => countOf(instance.dataSource, 'SELECT COUNT(*) AS n FROM payments');

  async function rawRow(instance: Instance, key: string): Promise<RawRow> {
    const [row] = await queryRows<{ response_headers: string; response_body: Buffer | Uint8Array; fingerprint: string }>(
      instance.dataSource,
      'SELECT response_headers, response_body, fingerprint FROM idempotency_records WHERE idempotency_key = ?',
      [key],
    );
    expect(row).toBeDefined();
    return { headers: row.response_headers, body: Buffer.from(row.response_body), fingerprint: row.fingerprint };
  }

  /** The 4-byte key id of a sealed record: [version][key id][iv][tag][ciphertext]. */
  const keyIdOfRow = (row: RawRow): string => row.body.subarray(1, 5).toString('hex');

  async function expectUnavailable(instance: Instance, key: string, body: object): Promise<void> {
    const answer = await pay(instance, key, body);
    expect(answer.status).toBe(503);
    expect(JSON.parse(bodyBytes(answer).toString('utf8')).error.code).toBe('idempotency_unavailable');
    expect(answer.headers['idempotency-replayed']).toBeUndefined();
  }

  // Shared by the steps below, which follow one rotation in order: [old] -> [new, old] -> [new].
  const marker = `cus_marker_${randomUUID().replaceAll('-', '')}`;
  const payment = { amount: 4200, currency: 'EUR', customerId: marker };
  const secondPayment = { amount: 990, currency: 'EUR', customerId: `${marker}_second` };
  const [sealedWithOld, sealedWithNew] = [randomUUID(), randomUUID()];
  let first: SentResponse;
  let second: SentResponse;

  beforeAll(async () => {
    database = await createTestDatabase(kind, `encryption_${platform}`);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('stores no plaintext of the body or headers, only a sealed envelope (R26)', async () => {
    await withApp([oldKey], async (instance) => {
      first = await pay(instance, sealedWithOld, payment);
      expect(first.status).toBe(201);
      expectFresh(first);
      const id = JSON.parse(bodyBytes(first).toString('utf8')).id as string;
      expect(first.headers.location).toBe(`/v1/payments/${id}`);

      const row = await rawRow(instance, sealedWithOld);
      expect(row.headers).toBe('{}');
      for (const plaintext of [marker, id, '/v1/payments/', 'location', 'application/json', '"amount"']) {
        expect(row.body.includes(Buffer.from(plaintext))).toBe(false);
        expect(row.headers).not.toContain(plaintext);
      }
      expect(row.body.includes(bodyBytes(first).subarray(0, 16))).toBe(false);
      expect(row.body[0]).toBe(1);
    });
  });

  it('replays the sealed record byte-for-byte with Idempotency-Replayed: true and runs nothing (R9, R26)', async () => {
    await withApp([oldKey], async (instance) => {
      const before = await paymentCount(instance);
      const replay = await pay(instance, sealedWithOld, payment);
      expectReplayOf(replay, first);
      expect(replay.headers.location).toBe(first.headers.location);
      expect(await paymentCount(instance)).toBe(before);
    });
  });

  it('keys the fingerprint: the column is not the plain SHA-256 of the request (R7, R26)', async () => {
    const input = { method: 'POST', path: '/v1/payments', query: '', headers: { 'content-type': 'application/json' }, body: payment, rawBody: undefined };
    const plainKey = randomUUID();
    // The same request through an app without encryption: the unkeyed fingerprint, as computed here.
    const plain = await withApp(undefined, async (instance) => {
      expect((await pay(instance, plainKey, payment)).status).toBe(201);
      return rawRow(instance, plainKey);
    });
    expect(plain.fingerprint).toBe(fingerprintRequest(input));
    await withApp([oldKey], async (instance) => {
      const keyed = await rawRow(instance, sealedWithOld);
      expect(keyed.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(keyed.fingerprint).not.toBe(fingerprintRequest(input));
    });
  });

  it('replays records sealed under [old] after rotation to [new, old], and seals new records with the new key (R26)', async () => {
    await withApp([newKey, oldKey], async (instance) => {
      const before = await paymentCount(instance);
      const replay = await pay(instance, sealedWithOld, payment);
      expectReplayOf(replay, first);
      expect(replay.headers.location).toBe(first.headers.location);
      expect(await paymentCount(instance)).toBe(before);

      second = await pay(instance, sealedWithNew, secondPayment);
      expect(second.status).toBe(201);
      expectFresh(second);
      const [oldRow, newRow] = [await rawRow(instance, sealedWithOld), await rawRow(instance, sealedWithNew)];
      expect(keyIdOfRow(newRow)).not.toBe(keyIdOfRow(oldRow));
      expect(newRow.body.includes(Buffer.from(marker))).toBe(false);
    });
  });

  it('answers a record whose key was dropped with 503 idempotency_unavailable, never runs it again, and logs its key id (R18, R26)', async () => {
    await withApp([newKey], async (instance) => {
      const before = await paymentCount(instance);
      await expectUnavailable(instance, sealedWithOld, payment);
      await expectUnavailable(instance, sealedWithOld, payment);
      expect(await paymentCount(instance)).toBe(before);

      // Records of the key still configured replay as before.
      expectReplayOf(await pay(instance, sealedWithNew, secondPayment), second);
      expect(await paymentCount(instance)).toBe(before);

      const keyId = keyIdOfRow(await rawRow(instance, sealedWithOld));
      const logged = instance.errors.join('\n');
      expect(logged).toContain(`key id ${keyId}`);
      for (const key of [oldKey, newKey, fingerprintKey]) {
        expect(logged).not.toContain(key.toString('base64'));
        expect(logged).not.toContain(key.toString('hex'));
      }
    });
  });

  it('answers a record whose stored bytes were tampered with with 503 and never runs it again (R26)', async () => {
    await withApp([newKey, oldKey], async (instance) => {
      const row = await rawRow(instance, sealedWithNew);
      const tampered = Buffer.from(row.body);
      tampered[tampered.length - 1] ^= 0x01;
      await queryRows(instance.dataSource, 'UPDATE idempotency_records SET response_body = ? WHERE idempotency_key = ?', [
        tampered,
        sealedWithNew,
      ]);
      const before = await paymentCount(instance);
      await expectUnavailable(instance, sealedWithNew, secondPayment);
      await expectUnavailable(instance, sealedWithNew, secondPayment);
      expect(await paymentCount(instance)).toBe(before);
      expect((await rawRow(instance, sealedWithNew)).body.equals(tampered)).toBe(true);
    });
  });
});

describe('encryption settings at start-up', () => {
  /** The error a module with these idempotency options fails to compile with. */
  async function startFailure(encryption: unknown): Promise<Error> {
    const failure: unknown = await Test.createTestingModule({
      imports: [IdempotencyModule.forRootAsync({ useFactory: () => ({ encryption: encryption as never }) })],
    })
      .compile()
      .then(
        () => new Error('the module started although its encryption option is invalid'),
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(Error);
    return failure as Error;
  }

  it('stops the app on a key of the wrong length, naming the option and never printing the key (R26)', async () => {
    const short = randomBytes(16).toString('base64');
    const { message } = await startFailure({ keys: [randomBytes(32), short], fingerprintKey: randomBytes(32) });
    expect(message).toContain('nestjs-idempotency');
    expect(message).toContain('encryption.keys[1] is 16 bytes; it must be 32');
    expect(message).not.toContain(short);
  });

  it('stops the app on an empty key list or a missing fingerprint key, naming the option (R26)', async () => {
    expect((await startFailure({ keys: [], fingerprintKey: randomBytes(32) })).message).toContain('encryption.keys must list at least one key');
    expect((await startFailure({ keys: [randomBytes(32)] })).message).toContain('encryption.fingerprintKey is missing');
  });

  it('reads the example API\'s keys from IDEMPOTENCY_ENCRYPTION_KEYS and IDEMPOTENCY_FINGERPRINT_KEY (R26)', () => {
    const [first, second, fingerprint] = [randomBytes(32), randomBytes(32), randomBytes(32)].map((key) => key.toString('base64'));
    const config = loadAppConfig({ IDEMPOTENCY_ENCRYPTION_KEYS: ` ${first}, ${second} `, IDEMPOTENCY_FINGERPRINT_KEY: fingerprint });
    expect(config.idempotency.encryption).toEqual({ keys: [first, second], fingerprintKey: fingerprint });
    expect(loadAppConfig({}).idempotency.encryption).toBeUndefined();
    expect(() => loadAppConfig({ IDEMPOTENCY_ENCRYPTION_KEYS: first })).toThrow(/IDEMPOTENCY_FINGERPRINT_KEY: required/);
  });
});
