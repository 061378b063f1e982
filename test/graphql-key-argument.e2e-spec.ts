import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Injectable, Module, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Args, Field, GraphQLISODateTime, GraphQLModule, Int, Mutation, ObjectType, Query, Resolver } from '@nestjs/graphql';
import { TypeOrmModule } from '@nestjs/typeorm';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateIdempotencyRecords1764064800000, IdempotencyModule, IdempotencyRecord, Idempotent } from 'nestjs-idempotency';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { betterSqlite3ForThisNode } from '../src/database/sqlite-driver.js';

/**
 * A GraphQL mutation whose key is one of its arguments (R23), in an app of the test's own with no
 * filter of its own: what the library does alone, on SQLite through the TypeORM store.
 */
@ObjectType()
class Transfer {
  @Field(() => Int) run!: number;
  @Field(() => Int) amount!: number;
  @Field(() => GraphQLISODateTime) at!: Date;
}

@Injectable()
class TransferRuns {
  count = 0;
}

@Resolver(() => Transfer)
class TransfersResolver {
  constructor(private readonly runs: TransferRuns) {}

  @Query(() => Int)
  transferRuns(): number {
    return this.runs.count;
  }

  @Mutation(() => Transfer)
  @Idempotent({ key: { argument: 'reference' }, keyFormat: 'token', required: true })
  transfer(@Args('reference', { nullable: true }) _reference: string, @Args('amount', { type: () => Int }) amount: number): Transfer {
    this.runs.count++;
    return { run: this.runs.count, amount, at: new Date(Date.UTC(2026, 10, 29, this.runs.count)) };
  }

  // A UUID key, optional: a refund without one simply runs.
  @Mutation(() => Transfer)
  @Idempotent({ key: { argument: 'requestId' } })
  refund(@Args('requestId', { nullable: true }) _requestId: string, @Args('amount', { type: () => Int }) amount: number): Transfer {
    this.runs.count++;
    return { run: this.runs.count, amount, at: new Date(Date.UTC(2026, 10, 29, this.runs.count)) };
  }
}

/** Keeps what Nest logs as errors: a refusal must not be one. */
class RecordingLogger implements LoggerService {
  readonly errors: string[] = [];
  log(): void {}
  warn(): void {}
  debug(): void {}
  verbose(): void {}
  error(message: unknown): void {
    this.errors.push(String(message instanceof Error ? message.message : message));
  }
}

let app: INestApplication;
let url: string;
let database: TestDatabase;
const logger = new RecordingLogger();

beforeAll(async () => {
  database = await createTestDatabase('sqlite', 'graphql_argument');
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'better-sqlite3',
        driver: betterSqlite3ForThisNode(),
        database: database.sqlitePath,
        entities: [IdempotencyRecord],
        migrations: [CreateIdempotencyRecords1764064800000],
        migrationsRun: true,
      }),
      IdempotencyModule.forRoot({}),
      GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
    ],
    providers: [TransfersResolver, TransferRuns],
  })
  class TransfersApp {}
  app = await NestFactory.create(TransfersApp, { logger });
  // What an auth guard leaves on the request, from X-Principal (JSON), for the tenancy tests.
  app.use((incoming: { headers: Record<string, unknown>; user?: unknown }, _response: unknown, next: () => void) => {
    const principal = incoming.headers['x-principal'];
    if (typeof principal === 'string') incoming.user = JSON.parse(principal) as unknown;
    next();
  });
  await app.listen(0, '127.0.0.1');
  url = `${await app.getUrl()}/graphql`;
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

interface GraphqlAnswer {
  readonly data?: { transfer?: { run: number; amount: number; at: string } | null; transferRuns?: number } | null;
  readonly errors?: readonly { message: string; extensions?: Record<string, unknown> }[];
  readonly replayed: string | null;
}

async function transfer(reference: string | null, amount: number, principal?: Record<string, unknown>): Promise<GraphqlAnswer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(principal ? { 'X-Principal': JSON.stringify(principal) } : {}) },
    body: JSON.stringify({
      query: 'mutation($reference: String, $amount: Int!) { transfer(reference: $reference, amount: $amount) { run amount at } }',
      variables: { reference, amount },
    }),
  });
  return { ...((await response.json()) as Omit<GraphqlAnswer, 'replayed'>), replayed: response.headers.get('idempotency-replayed') };
}

describe('a GraphQL mutation keyed by its argument (R23)', () => {
  it('runs once per reference; the retry gets the stored result, its date intact, with Idempotency-Replayed (R9, R13)', async () => {
    const first = await transfer('tr-001', 500);
    const retry = await transfer('tr-001', 500);
    expect(first.errors).toBeUndefined();
    expect(first.replayed).toBeNull();
    expect(retry).toEqual({ data: first.data, replayed: 'true' });
    expect(first.data?.transfer?.at).toBe(new Date(Date.UTC(2026, 10, 29, first.data!.transfer!.run)).toISOString());
    const another = await transfer('tr-002', 500);
    expect(another.data?.transfer?.run).toBe(first.data!.transfer!.run + 1);
  });

  it('refuses the reference with another amount with idempotency_key_reuse, and logs no error for it (R10, R17)', async () => {
    await transfer('tr-003', 100);
    const errorsBefore = logger.errors.length;
    const reused = await transfer('tr-003', 999);
    expect(reused.data).toBeNull();
    expect(reused.errors?.[0]?.extensions).toMatchObject({ code: 'idempotency_key_reuse', status: 422 });
    expect(reused.errors?.[0]?.message).toContain('idempotency key');
    expect(logger.errors.slice(errorsBefore)).toEqual([]);
  });

  it('refuses a missing or malformed reference, naming the argument, without running (R2, R3)', async () => {
    const runsBefore = await runs();
    const missing = await transfer(null, 100);
    expect(missing.errors?.[0]?.extensions).toMatchObject({ code: 'idempotency_key_missing', status: 400 });
    expect(missing.errors?.[0]?.message).toBe('This endpoint requires a key in its reference argument.');
    const malformed = await transfer('tr\u0001bad', 100);
    expect(malformed.errors?.[0]?.extensions).toMatchObject({ code: 'invalid_idempotency_key', status: 400 });
    expect(malformed.errors?.[0]?.message).toContain('reference argument');
    expect(await runs()).toBe(runsBefore);
  });
});

async function operation(query: string): Promise<GraphqlAnswer & { data?: Record<string, { run: number } | null> | null }> {
  const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ query }) });
  return { ...((await response.json()) as Omit<GraphqlAnswer, 'replayed'>), replayed: response.headers.get('idempotency-replayed') } as never;
}

describe('a GraphQL mutation keyed by an optional UUID argument (R23)', () => {
  it('takes every spelling of one UUID as the same key: the retry is a replay, not a reuse (R3, R9)', async () => {
    const id = '7f1c9a52-3b4e-4d2a-9c61-2e8f0b5d4a17';
    const first = await operation(`mutation { refund(requestId: "${id}", amount: 300) { run } }`);
    const upper = await operation(`mutation { refund(requestId: "${id.toUpperCase()}", amount: 300) { run } }`);
    const braced = await operation(`mutation { refund(requestId: "{${id}}", amount: 300) { run } }`);
    expect(first.errors).toBeUndefined();
    expect(upper).toEqual({ data: first.data, replayed: 'true' });
    expect(braced).toEqual({ data: first.data, replayed: 'true' });
  });

  it('does not say Idempotency-Replayed when a field without its key ran beside a replayed one (R13)', async () => {
    const id = '0b6d3e84-1f7a-4c59-8e2d-5a9c7f3b1e60';
    // The record is the key and the field's response name: the retry keeps its alias.
    await operation(`mutation { a: refund(requestId: "${id}", amount: 100) { run } }`);
    const runsBefore = await runs();
    const mixed = await operation(`mutation { a: refund(requestId: "${id}", amount: 100) { run } b: refund(amount: 100) { run } }`);
    expect(mixed.errors).toBeUndefined();
    expect(await runs()).toBe(runsBefore + 1);
    expect(mixed.replayed).toBeNull();
    const replayedAlone = await operation(`mutation { a: refund(requestId: "${id}", amount: 100) { run } }`);
    expect(replayedAlone.replayed).toBe('true');
  });
});

async function runs(): Promise<number> {
  const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ query: '{ transferRuns }' }) });
  return ((await response.json()) as { data: { transferRuns: number } }).data.transferRuns;
}

describe('a GraphQL mutation sent by an authenticated principal (R5, R5a)', () => {
  it("scopes the reference by the principal's userId: user 2 never gets user 1's result (R5)", async () => {
    const first = await transfer('tr-tenant', 700, { userId: 1, username: 'ada' });
    const other = await transfer('tr-tenant', 700, { userId: 2, username: 'grace' });
    expect(first.errors).toBeUndefined();
    expect(other.errors).toBeUndefined();
    expect(other.replayed).toBeNull();
    expect(other.data?.transfer?.run).toBe(first.data!.transfer!.run + 1);
    expect(await transfer('tr-tenant', 700, { userId: 1, username: 'ada' })).toEqual({ data: first.data, replayed: 'true' });
  });

  it('refuses a principal with no account id instead of putting it in the shared scope, without running (R5a)', async () => {
    const runsBefore = await runs();
    const refused = await transfer('tr-no-account', 700, { username: 'ada' });
    expect(refused.data).toBeNull();
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'idempotency_account_unresolved' });
    expect(await runs()).toBe(runsBefore);
    // The anonymous scope still works for requests without a principal, apart from the refused one.
    const anonymous = await transfer('tr-no-account', 700);
    expect(anonymous.errors).toBeUndefined();
    expect(anonymous.replayed).toBeNull();
  });
});
