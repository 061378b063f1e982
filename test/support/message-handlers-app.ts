import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, Injectable, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload, Transport, type MicroserviceOptions, type NatsContext, type RmqContext } from '@nestjs/microservices';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { IdempotencyModule, Idempotent } from 'nestjs-idempotency';
import type { DataSource } from 'typeorm';
import { probeDataSourceOptions } from './probe-app.js';
import type { TestDatabase } from './test-database.js';

// NATS subjects are shared by every process on the server: this run's own.
const RUN = randomUUID().slice(0, 8);

/** The patterns the handlers below consume. */
export const MESSAGE_PATTERNS = {
  /** RabbitMQ event, key in the payload, acknowledged by the library (`manualAck`). */
  captured: 'payment.captured',
  /** RabbitMQ event, key in the payload, acknowledged by the library; its first run throws. */
  flaky: 'payment.flaky',
  /** RabbitMQ request-response, key in the payload, required. */
  quote: 'payment.quote',
  /** RabbitMQ event, key in the `x-event-id` header, scoped by the payload's account. */
  refunded: 'payment.refunded',
  /** RabbitMQ event, key from a function of the payload, acknowledged by the library. */
  tagged: 'payment.tagged',
  /** NATS event, key in the `x-event-id` header. */
  settled: `test-messages-${RUN}.payment.settled`,
} as const;

export const EVENT_ID_HEADER = 'x-event-id';

/** What a handler did: one row per run that got as far as its write. */
export const EFFECTS_TABLE = 'message_effects';

export interface CaptureEvent {
  /** The key; optional, as the handler does not require it. */
  readonly eventId?: string;
  /** Names an event sent without an id, for the test to find its effects. */
  readonly reference?: string;
  readonly amount: number;
  /** How long the handler works before its write, so duplicates find it in flight. */
  readonly workMs?: number;
}

/** The id under which the tagged handler counts a run of a payload without `meta`, which must not run. */
export const KEYLESS_TAG = '(no meta)';

/** An event whose key a function finds at `meta.id`; a payload without `meta` makes the function throw. */
export interface TaggedEvent {
  readonly meta?: { readonly id: string };
}

export interface QuoteRequest {
  readonly requestId?: string;
  readonly amount: number;
  readonly workMs?: number;
}

export interface Quote {
  readonly requestId: string;
  readonly amount: number;
  readonly run: number;
  readonly quotedAt: Date;
}

export interface RefundEvent {
  readonly accountId: string;
  readonly amount: number;
}

export interface SettleEvent {
  readonly amount: number;
  readonly workMs?: number;
}

/** Counts handler runs per (pattern, event id), so a test can assert "ran exactly once". */
@Injectable()
export class MessageRuns {
  private readonly runs = new Map<string, number>();
  private readonly redelivered = new Map<string, boolean[]>();

  record(pattern: string, id: string, redelivered = false): number {
    const name = `${pattern}|${id}`;
    const count = (this.runs.get(name) ?? 0) + 1;
    this.runs.set(name, count);
    this.redelivered.set(name, [...(this.redelivered.get(name) ?? []), redelivered]);
    return count;
  }

  count(pattern: string, id: string): number {
    return this.runs.get(`${pattern}|${id}`) ?? 0;
  }

  /** Per run, whether the broker said it was a redelivery. */
  redeliveries(pattern: string, id: string): boolean[] {
    return this.redelivered.get(`${pattern}|${id}`) ?? [];
  }

  total(pattern: string): number {
    let total = 0;
    for (const [name, count] of this.runs) if (name.startsWith(`${pattern}|`)) total += count;
    return total;
  }
}

/** The handlers' side effect, a row in the database, as a real consumer's would be. */
@Injectable()
class Effects {
  private dataSource!: DataSource;

  use(dataSource: DataSource): void {
    this.dataSource = dataSource;
  }

  async record(pattern: string, eventId: string, account: string | null = null): Promise<void> {
    await this.dataSource.query(`INSERT INTO ${EFFECTS_TABLE} (pattern, event_id, account) VALUES (?, ?, ?)`, [pattern, eventId, account]);
  }
}

// `@EventPattern<string>(pattern, transport)`: with a transport-typed context parameter, the
// single-argument form does not type-check (TS1241), and the transport keeps each handler off the
// other server.
@Controller()
class MessageHandlers {
  constructor(
    private readonly runs: MessageRuns,
    private readonly effects: Effects,
  ) {}

  @EventPattern<string>(MESSAGE_PATTERNS.captured, Transport.RMQ)
  @Idempotent({ key: { payload: 'eventId' }, manualAck: true })
  async captured(@Payload() event: CaptureEvent): Promise<void> {
    const id = event.eventId ?? `unkeyed:${event.reference}`;
    this.runs.record(MESSAGE_PATTERNS.captured, id);
    await sleep(event.workMs ?? 0);
    await this.effects.record(MESSAGE_PATTERNS.captured, id);
  }

  @EventPattern<string>(MESSAGE_PATTERNS.tagged, Transport.RMQ)
  @Idempotent({ key: (payload) => (payload as Required<TaggedEvent>).meta.id, manualAck: true })
  async tagged(@Payload() event: TaggedEvent): Promise<void> {
    // A payload without a key must never get here; if it does, its run is counted like any other.
    const id = event.meta?.id ?? KEYLESS_TAG;
    this.runs.record(MESSAGE_PATTERNS.tagged, id);
    await this.effects.record(MESSAGE_PATTERNS.tagged, id);
  }

  @EventPattern<string>(MESSAGE_PATTERNS.flaky, Transport.RMQ)
  @Idempotent({ key: { payload: 'eventId' }, manualAck: true })
  async flaky(@Payload() event: CaptureEvent, @Ctx() context: RmqContext): Promise<void> {
    const id = event.eventId ?? '(none)';
    const run = this.runs.record(MESSAGE_PATTERNS.flaky, id, context.getMessage().fields.redelivered);
    if (run === 1) throw new Error(`the first delivery of ${id} fails (thrown by the test on purpose)`);
    await this.effects.record(MESSAGE_PATTERNS.flaky, id);
  }

  @MessagePattern<string>(MESSAGE_PATTERNS.quote, Transport.RMQ)
  @Idempotent({ key: { payload: 'requestId' }, required: true })
  async quote(@Payload() request: QuoteRequest): Promise<Quote> {
    const requestId = request.requestId ?? '(none)';
    const run = this.runs.record(MESSAGE_PATTERNS.quote, requestId);
    await sleep(request.workMs ?? 0);
    await this.effects.record(MESSAGE_PATTERNS.quote, requestId);
    return { requestId, amount: request.amount, run, quotedAt: new Date() };
  }

  @EventPattern<string>(MESSAGE_PATTERNS.refunded, Transport.RMQ)
  @Idempotent({ key: { header: EVENT_ID_HEADER }, accountFromPayload: (payload) => (payload as RefundEvent).accountId })
  async refunded(@Payload() event: RefundEvent, @Ctx() context: RmqContext): Promise<void> {
    const eventId = String(context.getMessage().properties.headers?.[EVENT_ID_HEADER]);
    this.runs.record(MESSAGE_PATTERNS.refunded, `${event.accountId}/${eventId}`);
    await this.effects.record(MESSAGE_PATTERNS.refunded, eventId, event.accountId);
  }

  @EventPattern<string>(MESSAGE_PATTERNS.settled, Transport.NATS)
  @Idempotent({ key: { header: EVENT_ID_HEADER } })
  async settled(@Payload() event: SettleEvent, @Ctx() context: NatsContext): Promise<void> {
    const eventId = context.getHeaders()?.get(EVENT_ID_HEADER) ?? '(none)';
    this.runs.record(MESSAGE_PATTERNS.settled, eventId);
    await sleep(event.workMs ?? 0);
    await this.effects.record(MESSAGE_PATTERNS.settled, eventId);
  }
}

export interface MessageAppSettings {
  readonly database: TestDatabase;
  readonly rabbitmqUrl: string;
  readonly natsUrl: string;
  /** A queue consumed with `noAck: false`: the library acknowledges for `manualAck` handlers. */
  readonly ackedQueue?: string;
  /** A queue consumed with the default `noAck: true`. */
  readonly autoAckedQueue?: string;
  /** Whether to consume NATS too. */
  readonly nats?: boolean;
}

export interface RunningMessageApp {
  readonly app: INestApplication;
  readonly dataSource: DataSource;
  readonly runs: MessageRuns;
  close(): Promise<void>;
}

/**
 * A hybrid app as a user builds one: `IdempotencyModule.forRoot()` on TypeORM, and the
 * microservices connected with `inheritAppConfig: true` (without it, the library's global
 * interceptor does not run on their handlers).
 */
export async function startMessageApp(settings: MessageAppSettings): Promise<RunningMessageApp> {
  @Module({
    imports: [TypeOrmModule.forRoot(probeDataSourceOptions(settings.database)), IdempotencyModule.forRoot({})],
    controllers: [MessageHandlers],
    providers: [MessageRuns, Effects],
  })
  class MessagesModule {}

  const app = await NestFactory.create(MessagesModule, { logger: ['error'] });
  const dataSource = app.get<DataSource>(getDataSourceToken());
  await dataSource.query(
    `CREATE TABLE IF NOT EXISTS ${EFFECTS_TABLE} (id INT AUTO_INCREMENT PRIMARY KEY, pattern VARCHAR(200) NOT NULL, event_id VARCHAR(200) NOT NULL, account VARCHAR(100) NULL)`,
  );
  app.get(Effects).use(dataSource);
  const rmq = (queue: string, noAck: boolean): MicroserviceOptions => ({ transport: Transport.RMQ, options: { urls: [settings.rabbitmqUrl], queue, noAck } });
  if (settings.ackedQueue) app.connectMicroservice(rmq(settings.ackedQueue, false), { inheritAppConfig: true });
  if (settings.autoAckedQueue) app.connectMicroservice(rmq(settings.autoAckedQueue, true), { inheritAppConfig: true });
  if (settings.nats) app.connectMicroservice<MicroserviceOptions>({ transport: Transport.NATS, options: { servers: [settings.natsUrl] } }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.init();
  if (settings.nats) {
    // The server subscribes without waiting for NATS to confirm: a round trip makes the subscriptions live.
    const nats = app.getMicroservices().at(-1)!.unwrap<{ flush(): Promise<void> }>();
    await nats.flush();
  }
  return {
    app,
    dataSource,
    runs: app.get(MessageRuns),
    close: () => app.close(),
  };
}
