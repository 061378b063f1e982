import { createHash, randomUUID } from 'node:crypto';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Body, Controller, Headers, Injectable, Module, Param, Post, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Args, Field, GraphQLModule, Int, Mutation, ObjectType, Query, Resolver } from '@nestjs/graphql';
import { TypeOrmModule } from '@nestjs/typeorm';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { IdempotencyModule, IdempotencyService, Idempotent } from 'nestjs-idempotency';
import request from 'supertest';
import { probeDataSourceOptions } from './support/probe-app.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './support/test-database.js';

/**
 * Records of different kinds share one table, yet never one stored key (R7a): whatever key or
 * account a client sends, it cannot name the record of a GraphQL field, a hashed long key or
 * account, or a `runOnce` scope.
 */
@Injectable()
class Runs {
  count = 0;
}

@ObjectType()
class Thing {
  @Field(() => Int) run!: number;
  @Field() kind!: string;
}

@Resolver(() => Thing)
class ThingsResolver {
  constructor(private readonly runs: Runs) {}

  @Query(() => Int)
  runCount(): number {
    return this.runs.count;
  }

  @Mutation(() => Thing)
  @Idempotent({ key: { argument: 'reference' }, keyFormat: 'token', required: true })
  createThing(@Args('reference') _reference: string): Thing {
    return { run: ++this.runs.count, kind: 'graphql' };
  }
}

@Controller('ns')
class ThingsController {
  constructor(
    private readonly runs: Runs,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post('things')
  @Idempotent({ keyFormat: 'token' })
  create(@Body() body: Record<string, unknown>): Record<string, unknown> {
    return { run: ++this.runs.count, kind: 'http', body };
  }

  /** A job run once per (scope, key) through runOnce, as a webhook receiver would. */
  @Post('jobs/:scope')
  job(@Param('scope') scope: string, @Headers('x-job-id') jobId: string): Promise<Record<string, unknown>> {
    return this.idempotency.runOnce({ scope, key: jobId }, () => ({ run: ++this.runs.count, kind: 'runOnce' }));
  }
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe.each(['sqlite', 'mariadb', 'postgres'] as const)('record namespaces on %s (R7a)', (kind: DatabaseKind) => {
  let app: INestApplication;
  let database: TestDatabase;
  let runs: Runs;

  beforeAll(async () => {
    database = await createTestDatabase(kind, 'record_namespaces');
    @Module({
      imports: [
        TypeOrmModule.forRoot(probeDataSourceOptions(database)),
        // The account is whatever the client's X-Account says: the most a hostile client can choose.
        IdempotencyModule.forRoot({ account: (incoming) => (incoming as { headers: Record<string, string | undefined> }).headers['x-account'] }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      controllers: [ThingsController],
      providers: [ThingsResolver, Runs],
    })
    class NamespacesApp {}
    app = await NestFactory.create(NamespacesApp, { logger: ['error'] });
    await app.init();
    runs = app.get(Runs);
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const mutate = (account: string, reference: string) =>
    request(app.getHttpServer())
      .post('/graphql')
      .set('X-Account', account)
      .send({ query: 'mutation($r: String!) { createThing(reference: $r) { run kind } }', variables: { r: reference } });

  const post = (account: string, key: string, body: Record<string, unknown> = { n: 1 }) =>
    request(app.getHttpServer()).post('/ns/things').set('X-Account', account).set('Idempotency-Key', key).send(body);

  /** The route ran for this request: a fresh 201 from the handler itself, nothing replayed or refused. */
  async function expectRan(sent: Promise<request.Response> | request.Test): Promise<request.Response> {
    const before = runs.count;
    const response = await sent;
    expect(response.status).toBe(201);
    expect(response.headers['idempotency-replayed']).toBeUndefined();
    expect(response.body).toMatchObject({ run: before + 1, kind: 'http' });
    return response;
  }

  it("an HTTP key spelled `<key>#<field>` does not name a GraphQL field's record", async () => {
    const reference = `ref-${randomUUID()}`;
    const mutation = await mutate('acme', reference);
    expect(mutation.body.data.createThing.kind).toBe('graphql');
    await expectRan(post('acme', `${reference}#createThing`));
    // And the field's own record is intact: a retry of the mutation is still its replay.
    const again = await mutate('acme', reference);
    expect(again.body.data.createThing).toEqual(mutation.body.data.createThing);
  });

  it('a key spelled `sha256:<hex>` does not name the record of a long key stored as its hash', async () => {
    // 252 characters: within a token key's 255, but past the column's width once `#createThing` is added.
    const reference = `long-${randomUUID()}-${'r'.repeat(210)}`;
    await mutate('acme', reference);
    await expectRan(post('acme', `sha256:${sha256(`${reference}#createThing`)}`));
    const literal = `sha256:${sha256(`${randomUUID()}`)}`;
    const first = await expectRan(post('acme', literal));
    const retry = await post('acme', literal);
    expect(retry.headers['idempotency-replayed']).toBe('true');
    expect(retry.text).toBe(first.text);
  });

  it("an account spelled `sha256:<hex>` never gets the answer of the long account stored as its hash (no cross-tenant replay)", async () => {
    const longAccount = `tenant-${'x'.repeat(200)}`;
    const key = randomUUID();
    const owner = await expectRan(post(longAccount, key));
    const impostor = await post(`sha256:${sha256(longAccount)}`, key);
    expect(impostor.status).toBe(201);
    expect(impostor.headers['idempotency-replayed']).toBeUndefined();
    expect(impostor.text).not.toBe(owner.text);
    const ownerAgain = await post(longAccount, key);
    expect(ownerAgain.headers['idempotency-replayed']).toBe('true');
    expect(ownerAgain.text).toBe(owner.text);
  });

  it('an account spelled `runOnce:<scope>` shares no record with runOnce in that scope', async () => {
    const key = `job-${randomUUID()}`;
    const job = await request(app.getHttpServer()).post('/ns/jobs/invoices').set('X-Job-Id', key);
    expect(job.status).toBe(201);
    expect(job.body.kind).toBe('runOnce');
    await expectRan(post('runOnce:invoices', key));
    const jobAgain = await request(app.getHttpServer()).post('/ns/jobs/invoices').set('X-Job-Id', key);
    expect(jobAgain.body).toEqual(job.body);
  });

  it('accounts spelled like other namespaces keep records of their own, each replaying its own answer', async () => {
    const key = randomUUID();
    const accounts = ['graphql:13:createThing:acme', 'message:9:a.pattern', 'http:acme', 'acme'];
    const answers = [];
    for (const account of accounts) answers.push(await expectRan(post(account, key)));
    for (const [index, account] of accounts.entries()) {
      const retry = await post(account, key);
      expect(retry.headers['idempotency-replayed']).toBe('true');
      expect(retry.text).toBe(answers[index].text);
    }
  });
});
