import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import amqp from 'amqplib';
import { eventually, send, startAppProcess, type AppProcess } from './support/app-process.js';
import { connectSql } from './support/sql-client.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { rowWrittenUncommitted } from './support/uncommitted-writes.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/test-database.js';

/**
 * The example's consumer of `payment.capture` (R23), as `npm start` runs it: the built app in a
 * child process, a hybrid of the HTTP API and a RabbitMQ consumer, against the real broker.
 */
const RABBITMQ_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const RABBITMQ = new URL(RABBITMQ_URL);

let connection: amqp.ChannelModel;
let channel: amqp.Channel;
const queues: string[] = [];
let app: AppProcess | undefined;
let database: TestDatabase | undefined;
let proxy: TcpProxy | undefined;

beforeAll(async () => {
  connection = await amqp.connect(RABBITMQ_URL);
  channel = await connection.createChannel();
});

afterEach(async () => {
  await app?.stop();
  await database?.drop();
  await proxy?.stop();
  [app, database, proxy] = [undefined, undefined, undefined];
});

afterAll(async () => {
  for (const queue of queues) await channel.deleteQueue(queue);
  await connection.close();
});

/** A queue of this test's own, declared as the app declares it, so nothing published is dropped. */
async function newQueue(): Promise<string> {
  const queue = `test-captures-${randomUUID()}`;
  await channel.assertQueue(queue, { durable: true });
  queues.push(queue);
  return queue;
}

async function startApp(kind: DatabaseKind, env: Record<string, string>): Promise<AppProcess> {
  database = await createTestDatabase(kind, 'captures');
  app = await startAppProcess({
    ...(database.databaseUrl ? { DATABASE_URL: database.databaseUrl } : { SQLITE_PATH: database.sqlitePath }),
    ...env,
  });
  return app;
}

async function createPayment(running: AppProcess, amount = 5000): Promise<string> {
  const answer = await send(running.url, 'POST', '/v1/payments', { key: randomUUID(), body: { amount, currency: 'EUR', customerId: 'cus_42' } });
  expect(answer.status).toBe(201);
  return (JSON.parse(answer.body.toString()) as { id: string }).id;
}

/** Publishes as any producer would: Nest's RMQ envelope, persistent. */
function publishCapture(queue: string, data: { eventId: string; paymentId: string; amount: number; processingMs?: number }): void {
  channel.sendToQueue(queue, Buffer.from(JSON.stringify({ pattern: 'payment.capture', data })), { persistent: true });
}

interface CaptureView {
  readonly id: string;
  readonly eventId: string;
  readonly amount: number;
}

async function capturesOf(running: AppProcess, paymentId: string, apiKey = 'key-acme'): Promise<CaptureView[]> {
  const answer = await send(running.url, 'GET', `/v1/payments/${paymentId}/captures`, { apiKey });
  expect(answer.status).toBe(200);
  return (JSON.parse(answer.body.toString()) as { data: CaptureView[] }).data;
}

/** Waits until the queue holds no message, delivered or not: every delivery was acknowledged. */
async function drained(queue: string): Promise<void> {
  await eventually(async () => {
    const { messageCount } = await channel.checkQueue(queue);
    return messageCount === 0 ? true : undefined;
  });
  // checkQueue counts ready messages only: an unacknowledged one shows once the consumer is gone.
}

describe.each([
  ['mariadb', 'express'],
  ['sqlite', 'fastify'],
] as const)('payment.capture events on the example API (%s, %s)', (kind, platform) => {
  it('the same event published 20 times at once, and once more later, captures once; another event captures again (R23)', async () => {
    const queue = await newQueue();
    const running = await startApp(kind, { RABBITMQ_URL, RABBITMQ_QUEUE: queue, HTTP_PLATFORM: platform });
    await eventually(async () => (running.output().includes('consuming payment.capture') ? true : undefined), 200);
    const paymentId = await createPayment(running);
    const event = { eventId: `evt_${randomUUID()}`, paymentId, amount: 1200 };

    for (let i = 0; i < 20; i++) publishCapture(queue, event);
    await drained(queue);
    await eventually(async () => ((await capturesOf(running, paymentId)).length > 0 ? true : undefined));
    publishCapture(queue, event);
    await drained(queue);
    const second = { eventId: `evt_${randomUUID()}`, paymentId, amount: 300 };
    publishCapture(queue, second);
    await drained(queue);
    await eventually(async () => ((await capturesOf(running, paymentId)).length === 2 ? true : undefined));

    const captures = await capturesOf(running, paymentId);
    expect(captures.map(({ eventId, amount }) => ({ eventId, amount })).sort((a, b) => b.amount - a.amount)).toEqual([
      { eventId: event.eventId, amount: 1200 },
      { eventId: second.eventId, amount: 300 },
    ]);
    // Every delivery was acknowledged: stopping the consumer returns nothing to the queue.
    await running.stop();
    app = undefined;
    expect((await channel.checkQueue(queue)).messageCount).toBe(0);
  });
});

describe.each(['mariadb', 'postgres'] as const)('a consumer killed while it captures (%s, atomic mode)', (kind) => {
  it('leaves nothing behind: the redelivery to another instance captures once and is acknowledged (R23, R22a, R20)', async () => {
    const queue = await newQueue();
    database = await createTestDatabase(kind, 'captures_crash');
    const env = { DATABASE_URL: database.databaseUrl ?? '', RABBITMQ_URL, RABBITMQ_QUEUE: queue };
    const consuming = (instance: AppProcess) =>
      eventually(async () => (instance.output().includes('consuming payment.capture') ? true : undefined), 200);
    const sql = await connectSql(database.databaseUrl ?? '');
    const doomed = await startAppProcess(env);
    try {
      await consuming(doomed);
      const paymentId = await createPayment(doomed);
      const event = { eventId: `evt_${randomUUID()}`, paymentId, amount: 900, processingMs: 3000 };
      publishCapture(queue, event);
      // The capture is written, not committed, and the delivery not acknowledged: kill -9 now.
      await eventually(async () => ((await rowWrittenUncommitted(sql, 'captures', 'event_id', event.eventId)) ? true : undefined));
      doomed.signal('SIGKILL');
      await doomed.exited();

      // Another instance starts with the redelivered event already waiting for it.
      app = await startAppProcess(env);
      await consuming(app);
      const survivor = app;
      await eventually(async () => ((await capturesOf(survivor, paymentId)).length > 0 ? true : undefined), 200);
      // Acknowledged right after its commit: stopping the survivor returns nothing to the queue.
      await survivor.stop();
      app = undefined;
      expect((await channel.checkQueue(queue)).messageCount).toBe(0);
      const rows = await sql.rows<{ event_id: string }>('SELECT event_id FROM captures');
      expect(rows.map((row) => row.event_id)).toEqual([event.eventId]);
    } finally {
      await doomed.stop();
      await sql.end();
    }
  });
});

describe('the example API with RabbitMQ down at start', () => {
  it('serves HTTP, warns, keeps reconnecting, and consumes once the broker answers (R23)', async () => {
    const queue = await newQueue();
    proxy = new TcpProxy(RABBITMQ.hostname, Number(RABBITMQ.port || 5672));
    await proxy.start();
    proxy.refuse();
    const through = new URL(RABBITMQ_URL);
    through.port = String(proxy.port);
    const running = await startApp('sqlite', { RABBITMQ_URL: through.toString(), RABBITMQ_QUEUE: queue });

    const paymentId = await createPayment(running);
    await eventually(async () => (running.output().includes('does not answer yet') ? true : undefined), 200);
    expect(running.output()).not.toContain('consuming payment.capture');

    proxy.restore();
    await eventually(async () => (running.output().includes('consuming payment.capture') ? true : undefined), 300);
    const event = { eventId: `evt_${randomUUID()}`, paymentId, amount: 700 };
    publishCapture(queue, event);
    publishCapture(queue, event);
    await drained(queue);
    await eventually(async () => ((await capturesOf(running, paymentId)).length > 0 ? true : undefined));
    expect((await capturesOf(running, paymentId)).map(({ eventId }) => eventId)).toEqual([event.eventId]);
  });
});

describe('captures of another account', () => {
  it("are not listed: another account's payment is 404 (R5)", async () => {
    const running = await startApp('sqlite', { RABBITMQ_URL: 'off' });
    const paymentId = await createPayment(running);
    const answer = await send(running.url, 'GET', `/v1/payments/${paymentId}/captures`, { apiKey: 'key-globex' });
    expect(answer.status).toBe(404);
    expect(running.output()).not.toContain('payment.capture');
  });
});
