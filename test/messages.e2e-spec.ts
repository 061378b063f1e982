import { createHash, randomUUID } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { connect as connectNats, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import amqp from 'amqplib';
import { IDEMPOTENCY_CHANNELS, type IdempotencyOutcome, type IdempotencyOutcomeMessage } from 'nestjs-idempotency';
import { lastValueFrom } from 'rxjs';
import {
  EFFECTS_TABLE,
  EVENT_ID_HEADER,
  KEYLESS_TAG,
  MESSAGE_PATTERNS,
  startMessageApp,
  type CaptureEvent,
  type Quote,
  type QuoteRequest,
  type RefundEvent,
  type RunningMessageApp,
  type SettleEvent,
  type TaggedEvent,
} from './support/message-handlers-app.js';
import { countOf, createTestDatabase, queryRows, type TestDatabase } from './support/test-database.js';

/**
 * `@Idempotent()` on microservice handlers (R23) against the real brokers: RabbitMQ and NATS
 * deliver to a hybrid app whose handlers write to MariaDB, so "ran once" is one row.
 */
const RABBITMQ_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** Outcomes that end a delivery: the handler ran and its result was stored, or the stored one was used. */
const FINAL_OUTCOMES: ReadonlySet<IdempotencyOutcome> = new Set(['fresh', 'takeover', 'replayed', 'waited']);

let database: TestDatabase;
let amqpConnection: amqp.ChannelModel;
let channel: amqp.Channel;
let nats: NatsConnection;
const queues: string[] = [];
const outcomes: IdempotencyOutcomeMessage[] = [];
const collectOutcome = (message: unknown): void => {
  outcomes.push(message as IdempotencyOutcomeMessage);
};

let running: RunningMessageApp | undefined;
let requester: ClientProxy | undefined;

beforeAll(async () => {
  database = await createTestDatabase('mariadb', 'messages');
  amqpConnection = await amqp.connect(RABBITMQ_URL);
  channel = await amqpConnection.createChannel();
  nats = await connectNats({ servers: NATS_URL });
  diagnosticsChannel.subscribe(IDEMPOTENCY_CHANNELS.outcome, collectOutcome);
});

afterEach(async () => {
  await requester?.close();
  await running?.close();
  [requester, running] = [undefined, undefined];
});

afterAll(async () => {
  diagnosticsChannel.unsubscribe(IDEMPOTENCY_CHANNELS.outcome, collectOutcome);
  for (const queue of queues) await channel?.deleteQueue(queue);
  await amqpConnection?.close();
  await nats?.close();
  await database?.drop();
});

/** A queue of this test's own, declared as the app declares it, so nothing published before it consumes is lost. */
async function newQueue(): Promise<string> {
  const queue = `test-messages-${randomUUID()}`;
  await channel.assertQueue(queue, { durable: true });
  queues.push(queue);
  return queue;
}

async function start(settings: { ackedQueue?: string; autoAckedQueue?: string; nats?: boolean }): Promise<RunningMessageApp> {
  running = await startMessageApp({ database, rabbitmqUrl: RABBITMQ_URL, natsUrl: NATS_URL, ...settings });
  return running;
}

/** A requester as a Nest client writes one: `ClientProxy.send` over RabbitMQ. */
async function requesterOn(queue: string): Promise<ClientProxy> {
  requester = ClientProxyFactory.create({ transport: Transport.RMQ, options: { urls: [RABBITMQ_URL], queue } });
  await requester.connect();
  return requester;
}

/** Publishes as any producer would: Nest's RMQ envelope for an event (no id), with optional headers. */
function publish(queue: string, pattern: string, data: unknown, headers?: Record<string, string>): void {
  channel.sendToQueue(queue, Buffer.from(JSON.stringify({ pattern, data })), { persistent: true, ...(headers ? { headers } : {}) });
}

function publishNats(subject: string, data: unknown, eventId: string): void {
  const h = natsHeaders();
  h.set(EVENT_ID_HEADER, eventId);
  nats.publish(subject, JSON.stringify({ pattern: subject, data }), { headers: h });
}

/** Polls until `probe` gives a value, for at most `withinMs`. */
async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, withinMs = 20_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`still waiting after ${withinMs} ms for ${what}`);
    await sleep(50);
  }
}

/** The outcomes published for one (scope, key), in order; the scope is `message:<pattern length>:<pattern>[:account]`. */
function outcomesOf(pattern: string, key: string, account?: string): IdempotencyOutcome[] {
  const scope = `message:${pattern.length}:${pattern}${account === undefined ? '' : `:${account}`}`;
  const keyHash = createHash('sha256').update(`${scope}\0${key}`).digest('hex').slice(0, 16);
  return outcomes.filter((message) => message.keyHash === keyHash && message.transport === 'message').map((message) => message.outcome);
}

/** Waits until `count` deliveries of one key have ended (ran, or were answered with the stored result). */
async function finalOutcomes(count: number, pattern: string, key: string, account?: string): Promise<IdempotencyOutcome[]> {
  return eventually(() => {
    const final = outcomesOf(pattern, key, account).filter((outcome) => FINAL_OUTCOMES.has(outcome));
    return final.length >= count ? final : undefined;
  }, `${count} settled deliveries of ${pattern} ${key}`);
}

async function effectsOf(pattern: string, eventId: string): Promise<number> {
  return countOf(running!.dataSource, `SELECT COUNT(*) AS n FROM ${EFFECTS_TABLE} WHERE pattern = ? AND event_id = ?`, [pattern, eventId]);
}

/**
 * Stops the consumer, then reads the queue: a delivery never acknowledged goes back to the queue
 * when its channel closes, so an empty queue means every message was acknowledged.
 */
async function messagesLeftAfterConsumerStops(queue: string): Promise<number> {
  await running?.close();
  running = undefined;
  return (await channel.checkQueue(queue)).messageCount;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe('@Idempotent() on RabbitMQ handlers (manual acknowledgement)', () => {
  it('runs an event handler once for one event published 20 times at once and once more later; every delivery is acknowledged (R23, R11, R9)', async () => {
    const queue = await newQueue();
    const app = await start({ ackedQueue: queue });
    const eventId = `evt_${randomUUID()}`;
    const event: CaptureEvent = { eventId, amount: 1200, workMs: 300 };

    for (let i = 0; i < 20; i++) publish(queue, MESSAGE_PATTERNS.captured, event);
    const concurrent = await finalOutcomes(20, MESSAGE_PATTERNS.captured, eventId);
    publish(queue, MESSAGE_PATTERNS.captured, event);
    const all = await finalOutcomes(21, MESSAGE_PATTERNS.captured, eventId);

    expect(await effectsOf(MESSAGE_PATTERNS.captured, eventId)).toBe(1);
    expect(app.runs.count(MESSAGE_PATTERNS.captured, eventId)).toBe(1);
    expect(concurrent.filter((outcome) => outcome === 'fresh')).toHaveLength(1);
    expect(all.slice(20)).toEqual(['replayed']);
    // The library acknowledged the run once it was stored, and the 20 copies it answered from the store.
    expect(await messagesLeftAfterConsumerStops(queue)).toBe(0);
  });

  it('requeues an event whose handler threw, runs its redelivery, and records its effect once; a later copy does not run it (R23, R14)', async () => {
    const queue = await newQueue();
    const app = await start({ ackedQueue: queue });
    const eventId = `evt_${randomUUID()}`;
    const event: CaptureEvent = { eventId, amount: 700 };

    publish(queue, MESSAGE_PATTERNS.flaky, event);
    await eventually(async () => ((await effectsOf(MESSAGE_PATTERNS.flaky, eventId)) === 1 ? true : undefined), 'the redelivery to record its effect');
    // The failure released the key and requeued the delivery, so the broker's redelivery ran the handler.
    expect(app.runs.redeliveries(MESSAGE_PATTERNS.flaky, eventId)).toEqual([false, true]);
    expect(outcomesOf(MESSAGE_PATTERNS.flaky, eventId)[0]).toBe('released');

    publish(queue, MESSAGE_PATTERNS.flaky, event);
    const final = await finalOutcomes(2, MESSAGE_PATTERNS.flaky, eventId);
    expect(final[1]).toBe('replayed');
    expect(await effectsOf(MESSAGE_PATTERNS.flaky, eventId)).toBe(1);
    expect(app.runs.count(MESSAGE_PATTERNS.flaky, eventId)).toBe(2);
    expect(await messagesLeftAfterConsumerStops(queue)).toBe(0);
  });

  it('acknowledges a duplicate that arrives while the first delivery is in flight once the first is done, without running the handler again (R23, R11)', async () => {
    const queue = await newQueue();
    const app = await start({ ackedQueue: queue });
    const eventId = `evt_${randomUUID()}`;
    const event: CaptureEvent = { eventId, amount: 900, workMs: 1000 };

    publish(queue, MESSAGE_PATTERNS.captured, event);
    await eventually(() => (app.runs.count(MESSAGE_PATTERNS.captured, eventId) === 1 ? true : undefined), 'the first delivery to start');
    publish(queue, MESSAGE_PATTERNS.captured, event);

    // The waiter may publish before the winner does: the order of the two is not part of the promise.
    expect((await finalOutcomes(2, MESSAGE_PATTERNS.captured, eventId)).sort()).toEqual(['fresh', 'waited']);
    expect(app.runs.count(MESSAGE_PATTERNS.captured, eventId)).toBe(1);
    expect(await effectsOf(MESSAGE_PATTERNS.captured, eventId)).toBe(1);
    expect(await messagesLeftAfterConsumerStops(queue)).toBe(0);
  });

  it('rejects, without running the handler, an event whose id comes again with another payload (R23, R10)', async () => {
    const queue = await newQueue();
    const app = await start({ ackedQueue: queue });
    const eventId = `evt_${randomUUID()}`;

    publish(queue, MESSAGE_PATTERNS.captured, { eventId, amount: 100 } satisfies CaptureEvent);
    await finalOutcomes(1, MESSAGE_PATTERNS.captured, eventId);
    publish(queue, MESSAGE_PATTERNS.captured, { eventId, amount: 999 } satisfies CaptureEvent);
    await eventually(() => (outcomesOf(MESSAGE_PATTERNS.captured, eventId).includes('reuse') ? true : undefined), 'the second payload to be refused');

    expect(outcomesOf(MESSAGE_PATTERNS.captured, eventId)).toEqual(['fresh', 'reuse']);
    expect(app.runs.count(MESSAGE_PATTERNS.captured, eventId)).toBe(1);
    expect(await effectsOf(MESSAGE_PATTERNS.captured, eventId)).toBe(1);
    // Refused for good: rejected (to a dead-letter exchange, if the queue had one), not requeued to be refused again.
    expect(await messagesLeftAfterConsumerStops(queue)).toBe(0);
  });

  it('rejects an event whose key function throws, without running the handler, and goes on consuming (R23, R17)', async () => {
    const queue = await newQueue();
    const app = await start({ ackedQueue: queue });
    const id = `tag_${randomUUID()}`;

    publish(queue, MESSAGE_PATTERNS.tagged, {} satisfies TaggedEvent);
    publish(queue, MESSAGE_PATTERNS.tagged, { meta: { id } } satisfies TaggedEvent);
    publish(queue, MESSAGE_PATTERNS.tagged, { meta: { id } } satisfies TaggedEvent);
    await finalOutcomes(2, MESSAGE_PATTERNS.tagged, id);
    expect(await effectsOf(MESSAGE_PATTERNS.tagged, id)).toBe(1);
    // The keyless one was settled too: nothing comes back when the consumer goes.
    expect(await messagesLeftAfterConsumerStops(queue)).toBe(0);

    // Every delivery was settled, so every run there was to be has been counted: one, of the keyed
    // event. A run of the keyless one would be counted under KEYLESS_TAG (the handler reads the
    // key without needing it).
    expect(app.runs.count(MESSAGE_PATTERNS.tagged, id)).toBe(1);
    expect(app.runs.count(MESSAGE_PATTERNS.tagged, KEYLESS_TAG)).toBe(0);
    expect(app.runs.total(MESSAGE_PATTERNS.tagged)).toBe(1);
  });

  it('runs and acknowledges every copy of an event sent without its optional key: no key, no idempotency (R23, R2)', async () => {
    const queue = await newQueue();
    const app = await start({ ackedQueue: queue });
    const reference = randomUUID();
    const id = `unkeyed:${reference}`;

    publish(queue, MESSAGE_PATTERNS.captured, { reference, amount: 50 } satisfies CaptureEvent);
    publish(queue, MESSAGE_PATTERNS.captured, { reference, amount: 50 } satisfies CaptureEvent);
    await eventually(async () => ((await effectsOf(MESSAGE_PATTERNS.captured, id)) >= 2 ? true : undefined), 'both copies to run');
    expect(await messagesLeftAfterConsumerStops(queue)).toBe(0);

    // Counted once every delivery was settled: each copy ran once, and nothing else ran.
    expect(app.runs.count(MESSAGE_PATTERNS.captured, id)).toBe(2);
    expect(app.runs.total(MESSAGE_PATTERNS.captured)).toBe(2);
  });
});

describe('@Idempotent() on RabbitMQ request-response handlers', () => {
  it('answers a request sent twice with one key with the same reply, its date intact, and runs the handler once; the key with another payload is refused with idempotency_key_reuse (R23, R9, R10, R17)', async () => {
    const queue = await newQueue();
    const app = await start({ autoAckedQueue: queue });
    const client = await requesterOn(queue);
    const request: QuoteRequest = { requestId: `quote_${randomUUID()}`, amount: 500 };

    const first = await lastValueFrom(client.send<Quote, QuoteRequest>(MESSAGE_PATTERNS.quote, request));
    await sleep(20); // a re-run would stamp another time
    const second = await lastValueFrom(client.send<Quote, QuoteRequest>(MESSAGE_PATTERNS.quote, request));

    expect(first).toEqual({ requestId: request.requestId, amount: 500, run: 1, quotedAt: expect.any(String) });
    expect(second).toEqual(first);
    // The stored reply kept its Date, which goes out as the same ISO string.
    expect(new Date(second.quotedAt).toISOString()).toBe(second.quotedAt);
    expect(outcomesOf(MESSAGE_PATTERNS.quote, request.requestId!)).toEqual(['fresh', 'replayed']);

    const reuse = await rejectionOf(lastValueFrom(client.send(MESSAGE_PATTERNS.quote, { ...request, amount: 501 })));
    expect(reuse).toEqual({ code: 'idempotency_key_reuse', message: expect.any(String), status: 422 });
    expect(app.runs.count(MESSAGE_PATTERNS.quote, request.requestId!)).toBe(1);
    expect(await effectsOf(MESSAGE_PATTERNS.quote, request.requestId!)).toBe(1);
  });

  it('answers a duplicate request sent while the first is in flight with the first one\'s reply once it is done, without running the handler again (R23, R11)', async () => {
    const queue = await newQueue();
    const app = await start({ autoAckedQueue: queue });
    const client = await requesterOn(queue);
    const request: QuoteRequest = { requestId: `quote_${randomUUID()}`, amount: 800, workMs: 1000 };

    const first = lastValueFrom(client.send<Quote, QuoteRequest>(MESSAGE_PATTERNS.quote, request));
    await eventually(() => (app.runs.count(MESSAGE_PATTERNS.quote, request.requestId!) === 1 ? true : undefined), 'the first request to start');
    const second = lastValueFrom(client.send<Quote, QuoteRequest>(MESSAGE_PATTERNS.quote, request));

    const [firstReply, secondReply] = await Promise.all([first, second]);
    expect(secondReply).toEqual(firstReply);
    expect(firstReply.run).toBe(1);
    expect(outcomesOf(MESSAGE_PATTERNS.quote, request.requestId!).sort()).toEqual(['fresh', 'waited']);
    expect(app.runs.count(MESSAGE_PATTERNS.quote, request.requestId!)).toBe(1);
    expect(await effectsOf(MESSAGE_PATTERNS.quote, request.requestId!)).toBe(1);
  });

  it('refuses a request without its required key with idempotency_key_missing, without running the handler (R23, R2, R17)', async () => {
    const queue = await newQueue();
    const app = await start({ autoAckedQueue: queue });
    const client = await requesterOn(queue);

    const missing = await rejectionOf(lastValueFrom(client.send(MESSAGE_PATTERNS.quote, { amount: 100 })));
    expect(missing).toEqual({ code: 'idempotency_key_missing', message: expect.any(String), status: 400 });
    expect(app.runs.total(MESSAGE_PATTERNS.quote)).toBe(0);
  });
});

describe('@Idempotent() keys from RabbitMQ headers, scoped by account', () => {
  it('reads the key from the x-event-id header and scopes it by the payload\'s account: one event id for two accounts is two effects, their copies none (R23, R5)', async () => {
    const queue = await newQueue();
    const app = await start({ autoAckedQueue: queue });
    const eventId = `evt_${randomUUID()}`;
    const acme: RefundEvent = { accountId: 'acme', amount: 300 };
    const globex: RefundEvent = { accountId: 'globex', amount: 300 };

    for (let i = 0; i < 3; i++) {
      publish(queue, MESSAGE_PATTERNS.refunded, acme, { [EVENT_ID_HEADER]: eventId });
      publish(queue, MESSAGE_PATTERNS.refunded, globex, { [EVENT_ID_HEADER]: eventId });
    }
    await finalOutcomes(3, MESSAGE_PATTERNS.refunded, eventId, 'acme');
    await finalOutcomes(3, MESSAGE_PATTERNS.refunded, eventId, 'globex');

    const rows = await queryRows<{ account: string }>(
      app.dataSource,
      `SELECT account FROM ${EFFECTS_TABLE} WHERE pattern = ? AND event_id = ? ORDER BY account`,
      [MESSAGE_PATTERNS.refunded, eventId],
    );
    expect(rows.map((row) => row.account)).toEqual(['acme', 'globex']);
    expect(app.runs.count(MESSAGE_PATTERNS.refunded, `acme/${eventId}`)).toBe(1);
    expect(app.runs.count(MESSAGE_PATTERNS.refunded, `globex/${eventId}`)).toBe(1);
  });
});

describe('@Idempotent() on NATS handlers', () => {
  it('runs an event handler once for one event published 20 times at once and once more later, key from a NATS header (R23, R11, R9)', async () => {
    const app = await start({ nats: true });
    const eventId = `evt_${randomUUID()}`;
    const event: SettleEvent = { amount: 4200, workMs: 300 };

    for (let i = 0; i < 20; i++) publishNats(MESSAGE_PATTERNS.settled, event, eventId);
    const concurrent = await finalOutcomes(20, MESSAGE_PATTERNS.settled, eventId);
    publishNats(MESSAGE_PATTERNS.settled, event, eventId);
    const all = await finalOutcomes(21, MESSAGE_PATTERNS.settled, eventId);

    expect(concurrent.filter((outcome) => outcome === 'fresh')).toHaveLength(1);
    expect(all.slice(20)).toEqual(['replayed']);
    expect(app.runs.count(MESSAGE_PATTERNS.settled, eventId)).toBe(1);
    expect(await effectsOf(MESSAGE_PATTERNS.settled, eventId)).toBe(1);
  });
});
