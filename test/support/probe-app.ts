import { createHash } from 'node:crypto';
import { IncomingMessage, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  Injectable,
  Module,
  Param,
  Patch,
  Post,
  Put,
  Req,
  Res,
  StreamableFile,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type LoggerService,
  type LogLevel,
  type Type,
} from '@nestjs/common';
import { APP_GUARD, HttpAdapterHost, NestFactory } from '@nestjs/core';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import {
  CreateIdempotencyRecords1764064800000,
  IdempotencyModule,
  IdempotencyRecord,
  Idempotent,
  type IdempotencyModuleOptions,
} from 'nestjs-idempotency';
import type { DataSource, DataSourceOptions, Logger as TypeOrmLogger } from 'typeorm';
import type { HttpPlatform } from '../../src/bootstrap.js';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './test-database.js';
import { betterSqlite3ForThisNode } from '../../src/database/sqlite-driver.js';

/** Counts handler runs per route, so a test can assert "ran exactly once". */
@Injectable()
export class HandlerRuns {
  private readonly runs = new Map<string, number>();

  record(route: string): number {
    const count = (this.runs.get(route) ?? 0) + 1;
    this.runs.set(route, count);
    return count;
  }

  count(route: string): number {
    return this.runs.get(route) ?? 0;
  }
}

/** Test-only principal: `X-Account` names the account, as an auth guard would. */
@Injectable()
class AccountHeaderGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, unknown>; user?: unknown }>();
    const account = request.headers['x-account'];
    if (typeof account === 'string' && account !== '') request.user = { accountId: account };
    return true;
  }
}

type Json = Record<string, unknown>;

/** The media type of bodies that no parser reads, on Express and Fastify alike (see startProbeApp). */
export const UNPARSED_MEDIA_TYPE = 'application/x-probe-stream';

/** The Node request under the platform's: Express's request is one, Fastify keeps it in `raw`. */
function nodeRequestOf(request: unknown): IncomingMessage {
  return request instanceof IncomingMessage ? request : (request as { raw: IncomingMessage }).raw;
}

/** Counts the requests that reached the guards of a route, before any interceptor. */
@Injectable()
class ArrivalGuard implements CanActivate {
  constructor(private readonly runs: HandlerRuns) {}

  canActivate(context: ExecutionContext): boolean {
    this.runs.record(`arrived-${context.getHandler().name}`);
    return true;
  }
}

/** Reads the request stream to its end and keeps nothing, as a careless middleware or guard would. */
@Injectable()
class DrainingGuard implements CanActivate {
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const incoming = nodeRequestOf(context.switchToHttp().getRequest());
    incoming.resume();
    if (!incoming.readableEnded) await new Promise((resolve) => incoming.once('end', resolve));
    return true;
  }
}

/**
 * Small routes, one per behaviour a suite needs, all through the library's public API.
 * Each returns how many times it has run, so replays are visible in the body.
 */
@Controller('probe')
export class ProbeController {
  constructor(
    private readonly runs: HandlerRuns,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  @Post('echo')
  @Idempotent()
  echo(@Body() body: Json): Json {
    return { run: this.runs.record('echo'), body };
  }

  @Post('required')
  @Idempotent({ required: true })
  required(@Body() body: Json): Json {
    return { run: this.runs.record('required'), body };
  }

  @Post('token')
  @Idempotent({ keyFormat: 'token' })
  token(@Body() body: Json): Json {
    return { run: this.runs.record('token'), body };
  }

  @Post('custom-key')
  @Idempotent({ keyFormat: (key) => /^order-\d+$/.test(key) })
  customKey(@Body() body: Json): Json {
    return { run: this.runs.record('custom-key'), body };
  }

  @Post('conflict-409')
  @Idempotent({ mismatchStatus: 409 })
  mismatch409(@Body() body: Json): Json {
    return { run: this.runs.record('conflict-409'), body };
  }

  @Post('tenant-header')
  @Idempotent({ fingerprintHeaders: ['X-Tenant-Region'] })
  tenantHeader(@Body() body: Json): Json {
    return { run: this.runs.record('tenant-header'), body };
  }

  @Post('items/:id')
  @Idempotent()
  item(@Param('id') id: string, @Body() body: Json): Json {
    return { run: this.runs.record('items'), id, body };
  }

  @Put('put')
  @Idempotent()
  put(@Body() body: Json): Json {
    return { run: this.runs.record('put'), body };
  }

  @Patch('patch')
  @Idempotent()
  patch(@Body() body: Json): Json {
    return { run: this.runs.record('patch'), body };
  }

  @Delete('delete/:id')
  @Idempotent()
  remove(@Param('id') id: string): Json {
    return { run: this.runs.record('delete'), id };
  }

  @Get('read')
  @Idempotent({ required: true })
  read(): Json {
    return { run: this.runs.record('read') };
  }

  /** Not decorated: idempotent only when the module's `applyToAllWrites` is on. */
  @Post('plain')
  plain(@Body() body: Json): Json {
    return { run: this.runs.record('plain'), body };
  }

  @Get('plain')
  plainRead(): Json {
    return { run: this.runs.record('plain-read') };
  }

  /** Answers with the status named in the path, as an HttpException would. */
  @Post('status/:code')
  @Idempotent()
  status(@Param('code') code: string): Json {
    const status = Number(code);
    const run = this.runs.record(`status-${status}`);
    if (status >= 400) throw new HttpException({ error: { code: `status_${status}`, run } }, status);
    return { run };
  }

  @Post('created')
  @Idempotent()
  @HttpCode(201)
  created(@Body() body: Json): Json {
    return { run: this.runs.record('created'), body };
  }

  @Post('throw')
  @Idempotent()
  throwPlainError(): never {
    this.runs.record('throw');
    throw new Error('boom');
  }

  @Post('slow')
  @Idempotent({ inFlightWaitMs: 200 })
  async slow(@Body() body: { ms?: number }): Promise<Json> {
    const run = this.runs.record('slow');
    await sleep(body.ms ?? 500);
    return { run };
  }

  @Post('slow-waiting')
  @Idempotent({ inFlightWaitMs: 5000 })
  async slowWaiting(@Body() body: { ms?: number }): Promise<Json> {
    const run = this.runs.record('slow-waiting');
    await sleep(body.ms ?? 500);
    return { run };
  }

  @Post('headers')
  @Idempotent({ storedHeaders: ['X-Custom'] })
  headers(@Res({ passthrough: true }) response: unknown): Json {
    const adapter = this.adapterHost.httpAdapter;
    adapter.setHeader(response, 'X-Custom', 'kept');
    adapter.setHeader(response, 'X-Not-Stored', 'dropped');
    adapter.setHeader(response, 'Set-Cookie', 'session=secret');
    adapter.setHeader(response, 'Location', '/probe/things/1');
    return { run: this.runs.record('headers') };
  }

  @Post('text')
  @Idempotent()
  text(@Res({ passthrough: true }) response: unknown): string {
    this.adapterHost.httpAdapter.setHeader(response, 'Content-Type', 'text/plain; charset=utf-8');
    return `plain text run ${this.runs.record('text')}\n`;
  }

  @Post('mutate')
  @Idempotent()
  mutate(@Body() body: Json): Json {
    const run = this.runs.record('mutate');
    body.injected = `by handler run ${run}`;
    return { run };
  }

  @Post('stream')
  @Idempotent()
  stream(): StreamableFile {
    const run = this.runs.record('stream');
    return new StreamableFile(Readable.from([Buffer.from('chunk one,'), Buffer.from(` run ${run}`)]));
  }

  @Post('raw')
  @Idempotent()
  raw(@Res() response: unknown): void {
    const run = this.runs.record('raw');
    this.adapterHost.httpAdapter.reply(response, { run, raw: true }, 200);
  }

  /** Reads the request stream itself, as a file upload handler does: reports what it received. */
  @Post('stream-reader')
  @Idempotent()
  @UseGuards(ArrivalGuard)
  async streamReader(@Req() request: unknown): Promise<Json> {
    const run = this.runs.record('stream-reader');
    const chunks: Buffer[] = [];
    for await (const chunk of nodeRequestOf(request)) chunks.push(chunk as Buffer);
    const received = Buffer.concat(chunks);
    return { run, length: received.length, sha256: createHash('sha256').update(received).digest('hex') };
  }

  @Post('drained')
  @Idempotent()
  @UseGuards(DrainingGuard)
  drained(): Json {
    return { run: this.runs.record('drained') };
  }

  @Get('runs/:route')
  runsOf(@Param('route') route: string): Json {
    return { count: this.runs.count(route) };
  }

  @Post('whoami')
  @Idempotent()
  whoami(@Req() request: { user?: { accountId?: string } }, @Body() body: Json): Json {
    return { run: this.runs.record(`whoami-${request.user?.accountId ?? 'anonymous'}`), account: request.user?.accountId ?? null, body };
  }
}

/** A Nest app made of the probe routes and the library, on a database of its own. */
export interface RunningProbeApp {
  readonly app: INestApplication;
  readonly server: Server;
  readonly dataSource: DataSource;
  readonly runs: HandlerRuns;
  readonly database: TestDatabase;
  close(): Promise<void>;
}

export interface ProbeAppSettings {
  readonly database: DatabaseKind;
  readonly platform: HttpPlatform;
  /** Names the suite's own database; must be unique across suites. */
  readonly suite: string;
  readonly options?: IdempotencyModuleOptions;
  readonly logger?: LogLevel[] | LoggerService;
  /** Nest's `rawBody` application option. Default false, as Nest's. */
  readonly rawBody?: boolean;
  /** Extra DataSource settings, such as a TypeORM `logger` that counts queries. */
  readonly dataSource?: { readonly logger?: TypeOrmLogger; readonly poolSize?: number; readonly url?: string };
  /** More routes beside the probe's own. */
  readonly controllers?: readonly Type[];
  /** What an application sets up around its handlers (middleware, plugins, global enhancers), before init. */
  readonly configure?: (app: INestApplication) => Promise<void> | void;
}

export function probeDataSourceOptions(database: TestDatabase): DataSourceOptions {
  const shared = {
    entities: [IdempotencyRecord],
    migrations: [CreateIdempotencyRecords1764064800000],
    migrationsRun: true,
  };
  if (database.kind === 'mariadb') return { ...shared, type: 'mysql', url: database.databaseUrl };
  if (database.kind === 'postgres') return { ...shared, type: 'postgres', url: database.databaseUrl, connectTimeoutMS: 5000 };
  return { ...shared, type: 'better-sqlite3', driver: betterSqlite3ForThisNode(), database: database.sqlitePath };
}

export async function startProbeApp(settings: ProbeAppSettings): Promise<RunningProbeApp> {
  const database = await createTestDatabase(settings.database, `${settings.suite}_${settings.platform}`);

  @Module({
    imports: [
      TypeOrmModule.forRoot({ ...probeDataSourceOptions(database), ...settings.dataSource } as DataSourceOptions),
      IdempotencyModule.forRoot(settings.options ?? {}),
    ],
    controllers: [ProbeController, ...(settings.controllers ?? [])],
    providers: [HandlerRuns, { provide: APP_GUARD, useClass: AccountHeaderGuard }],
  })
  class ProbeModule {}

  const appOptions = { logger: settings.logger ?? ['error'], rawBody: settings.rawBody ?? false };
  const app =
    settings.platform === 'fastify'
      ? await NestFactory.create(ProbeModule, new (await import('@nestjs/platform-fastify')).FastifyAdapter(), appOptions)
      : await NestFactory.create(ProbeModule, appOptions);
  // Express reads no body of this type; on Fastify, a parser that leaves the stream to the
  // handler, as @fastify/multipart does.
  if (settings.platform === 'fastify') {
    const fastify = app.getHttpAdapter().getInstance() as {
      addContentTypeParser(type: string, parser: (request: unknown, payload: unknown, done: (error: null) => void) => void): void;
    };
    fastify.addContentTypeParser(UNPARSED_MEDIA_TYPE, (_request, _payload, done) => done(null));
  }
  await settings.configure?.(app);
  await app.init();
  if (settings.platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
  return {
    app,
    server: app.getHttpServer(),
    dataSource: app.get<DataSource>(getDataSourceToken()),
    runs: app.get(HandlerRuns),
    database,
    async close() {
      await app.close();
      await database.drop();
    },
  };
}
