import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Delete, Get, HttpCode, Module, Patch, Post, Put, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ApiConflictResponse, ApiCreatedResponse, ApiHeader, ApiProperty, DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { IdempotencyModule, Idempotent, problemJsonErrorFormatter, type IdempotencyModuleOptions } from 'nestjs-idempotency';
import request from 'supertest';
import { startAppProcess, type AppProcess } from './support/app-process.js';
import { InMemoryIdempotencyStore } from './support/in-memory-store.js';
import { startPaymentsApp, type RunningPaymentsApp } from './support/payments-app.js';

/** The parts of an OpenAPI operation these tests read. */
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: Record<string, unknown>;
}
interface Header {
  description?: string;
  required?: boolean;
  schema?: Record<string, unknown>;
}
interface Media {
  schema?: Record<string, unknown>;
  examples?: Record<string, { value: unknown }>;
}
interface Response {
  description: string;
  headers?: Record<string, Header>;
  content?: Record<string, Media>;
}
interface Operation {
  parameters?: Parameter[];
  responses: Record<string, Response>;
}

const ERROR_CODES = [
  'idempotency_key_missing',
  'invalid_idempotency_key',
  'idempotency_key_reuse',
  'idempotency_conflict',
  'idempotency_unavailable',
  'idempotency_account_unresolved',
  'idempotency_body_too_large',
  'idempotency_body_unreadable',
];
const REFUSAL_STATUSES = ['400', '409', '422', '503'];

function operation(document: OpenAPIObject, method: string, path: string): Operation {
  const found = (document.paths[path] as Record<string, Operation> | undefined)?.[method];
  if (!found) throw new Error(`${method.toUpperCase()} ${path} is not in the document: ${Object.keys(document.paths).join(', ')}`);
  return found;
}

function headerParameters(operation: Operation, name: string): Parameter[] {
  return (operation.parameters ?? []).filter((parameter) => parameter.in === 'header' && parameter.name.toLowerCase() === name.toLowerCase());
}

function keyParameter(operation: Operation, name = 'Idempotency-Key'): Parameter {
  const found = headerParameters(operation, name);
  expect(found).toHaveLength(1);
  return found[0];
}

/** Follows a `$ref` into `components.schemas`. */
function resolved(document: OpenAPIObject, schema: Record<string, unknown> | undefined): Record<string, unknown> {
  const ref = schema?.$ref;
  if (typeof ref !== 'string') return schema ?? {};
  const name = ref.replace('#/components/schemas/', '');
  return document.components?.schemas?.[name] as Record<string, unknown>;
}

/** The enum of the default error body's `error.code`, through its components. */
function errorCodeEnum(document: OpenAPIObject, bodySchema: Record<string, unknown> | undefined): unknown {
  const body = resolved(document, bodySchema) as { properties: { error: Record<string, unknown> }; required?: string[] };
  expect(body.required).toEqual(['error']);
  const detail = resolved(document, unwrapped(body.properties.error)) as { properties: { code: Record<string, unknown>; message: unknown }; required?: string[] };
  expect(detail.required).toEqual(expect.arrayContaining(['code', 'message']));
  return resolved(document, unwrapped(detail.properties.code)).enum;
}

// Swagger writes a referenced property as `allOf: [{ $ref }]` or as the `$ref` itself.
function unwrapped(schema: Record<string, unknown>): Record<string, unknown> {
  const allOf = schema.allOf as Array<Record<string, unknown>> | undefined;
  return allOf?.[0] ?? schema;
}

function exampleCodes(media: Media | undefined): string[] {
  return Object.keys(media?.examples ?? {}).sort();
}

function expectNoIdempotency(operation: Operation, headerName = 'Idempotency-Key'): void {
  expect(headerParameters(operation, headerName)).toEqual([]);
  for (const status of ['409', '422', '503']) expect(operation.responses[status]).toBeUndefined();
  for (const response of Object.values(operation.responses)) expect(response.headers?.['Idempotency-Replayed']).toBeUndefined();
}

describe.each(['express', 'fastify'] as const)('the payments API documents its idempotent routes at GET /docs-json on %s', (platform) => {
  let payments: RunningPaymentsApp;
  let document: OpenAPIObject;

  beforeAll(async () => {
    payments = await startPaymentsApp('sqlite', platform, 'openapi');
    const answer = await request(payments.server).get('/docs-json').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    document = JSON.parse(answer.text) as OpenAPIObject;
  });

  afterAll(async () => {
    await payments?.close();
  });

  it('documents the Idempotency-Key header of a required route as required, format uuid, with what a replay does (R25, R2, R3)', () => {
    const key = keyParameter(operation(document, 'post', '/v1/payments'));
    expect(key.required).toBe(true);
    expect(key.schema).toMatchObject({ type: 'string', format: 'uuid' });
    expect(key.description).toContain('`Idempotency-Replayed: true`');
    expect(key.description).toContain('422 `idempotency_key_reuse`');
    expect(key.description).toContain('waits up to 3 s');
    expect(key.description).toContain('409 `idempotency_conflict` with `Retry-After`');
    expect(key.description).toContain('400 `idempotency_key_missing`');
  });

  it('documents the key of a route with an optional key as not required (R25, R2)', () => {
    for (const [method, path] of [['post', '/v1/exports'], ['delete', '/v1/exports/{id}']] as const) {
      const key = keyParameter(operation(document, method, path));
      expect(key.required).toBe(false);
      expect(key.schema).toMatchObject({ type: 'string', format: 'uuid' });
      expect(key.description).toContain('Optional');
    }
  });

  it('documents 400, 409 with Retry-After, 422 and 503 with the error body and its codes as an enum (R25, R17, R10, R11, R18)', () => {
    const responses = operation(document, 'post', '/v1/payments').responses;
    for (const status of REFUSAL_STATUSES) {
      const media = responses[status]?.content?.['application/json'];
      expect(media).toBeDefined();
      expect(errorCodeEnum(document, media?.schema)).toEqual(ERROR_CODES);
    }
    expect(exampleCodes(responses['400'].content?.['application/json'])).toEqual(['idempotency_key_missing', 'invalid_idempotency_key']);
    expect(responses['400'].content?.['application/json'].examples?.idempotency_key_missing.value).toEqual({
      error: { code: 'idempotency_key_missing', message: 'This endpoint requires an Idempotency-Key header.' },
    });
    expect(exampleCodes(responses['409'].content?.['application/json'])).toEqual(['idempotency_conflict']);
    expect(responses['409'].headers?.['Retry-After']).toMatchObject({ required: true, schema: { type: 'integer' } });
    expect(exampleCodes(responses['422'].content?.['application/json'])).toEqual(['idempotency_key_reuse']);
    expect(exampleCodes(responses['503'].content?.['application/json'])).toEqual(['idempotency_unavailable']);
    expect(responses['503'].headers?.['Retry-After']).toBeDefined();
    // An optional key is never missing: its route has no idempotency_key_missing.
    const optional = operation(document, 'post', '/v1/exports').responses;
    expect(exampleCodes(optional['400'].content?.['application/json'])).toEqual(['invalid_idempotency_key']);
  });

  it('documents the Idempotency-Replayed header on the success response, whatever its status (R25, R9, R13)', () => {
    const created = operation(document, 'post', '/v1/payments').responses['201'];
    expect(created.headers?.['Idempotency-Replayed']).toMatchObject({ schema: { type: 'string', enum: ['true'] } });
    // @HttpCode(202): the success swagger documents, not a 201 of the library's guessing.
    const exports = operation(document, 'post', '/v1/exports').responses;
    expect(exports['202'].headers?.['Idempotency-Replayed']).toBeDefined();
    expect(exports['201']).toBeUndefined();
    expect(operation(document, 'delete', '/v1/exports/{id}').responses['200'].headers?.['Idempotency-Replayed']).toBeDefined();
  });

  it('refers only to components the document defines (R25, R17)', () => {
    const refs = [...JSON.stringify(document).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(([, name]) => name);
    expect(refs).toEqual(expect.arrayContaining(['IdempotencyErrorBody', 'IdempotencyErrorDetail', 'IdempotencyErrorCode']));
    for (const name of new Set(refs)) expect(document.components?.schemas).toHaveProperty([name]);
  });

  it('leaves routes without @Idempotent() as they were: no key header, no refusals, no replay header (R25, R1)', () => {
    expectNoIdempotency(operation(document, 'get', '/v1/payments'));
    expectNoIdempotency(operation(document, 'get', '/v1/payments/{id}'));
    expectNoIdempotency(operation(document, 'post', '/v1/webhooks/provider'));
    expect(operation(document, 'get', '/v1/payments').responses).toEqual({ '200': { description: '' } });
  });

});

/**
 * Swagger UI through the built app: on Fastify its files need @fastify/static, which Jest's ESM
 * sandbox cannot load on Node 20 (the in-process app above serves the document only, there).
 */
describe.each(['express', 'fastify'] as const)('the built payments API serves Swagger UI at GET /docs on %s', (platform) => {
  let folder: string;
  let api: AppProcess;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), `idem-openapi-${platform}-`));
    api = await startAppProcess({ HTTP_PLATFORM: platform, DATABASE_URL: '', SQLITE_PATH: join(folder, 'payments.sqlite') });
  });

  afterAll(async () => {
    await api?.stop();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  it('serves the UI page, its files and the document it shows (R25)', async () => {
    const page = await fetch(`${api.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('swagger-ui');
    const bundle = await fetch(`${api.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    await bundle.arrayBuffer();
    const init = await fetch(`${api.url}/docs/swagger-ui-init.js`);
    expect(await init.text()).toContain('"Idempotency-Replayed"');
  });
});

class OrderView {
  @ApiProperty() id!: string;
}

@Controller('orders')
class OrdersController {
  @Post()
  @Idempotent({ required: true })
  create(): void {}

  @Post(':id/refunds')
  @Idempotent({ keyFormat: 'token' })
  refund(): void {}

  @Post(':id/captures')
  @Idempotent({ mismatchStatus: 409, inFlightWaitMs: 0 })
  capture(): void {}

  @Post(':id/notes')
  @Idempotent({ keyFormat: (key) => key.startsWith('note-') })
  note(): void {}

  // The application documents parts itself: its declarations win.
  @Post(':id/shipments')
  @Idempotent()
  @ApiHeader({ name: 'idempotency-key', description: 'Our own words.' })
  @ApiCreatedResponse({ type: OrderView })
  @ApiConflictResponse({ description: 'The order has shipped already.' })
  ship(): void {}

  // R1: a key on a safe method means nothing, so it is not documented either.
  @Get(':id')
  @Idempotent()
  findOne(): void {}

  @Get()
  list(): void {}
}

@Controller('ledger')
class LedgerController {
  @Post()
  post(): void {}

  @Patch(':id')
  amend(): void {}

  @Delete(':id')
  @HttpCode(204)
  remove(): void {}

  @Put(':id')
  replace(): void {}

  @Get()
  list(): void {}
}

/** An application of the test's own, created as users create theirs: `NestFactory.create()`, nothing else yet. */
async function createApp(controller: Function, options: IdempotencyModuleOptions = {}): Promise<INestApplication> {
  @Module({})
  class AppModule {
    static forRoot(): DynamicModule {
      return {
        module: AppModule,
        imports: [IdempotencyModule.forRoot({ store: new InMemoryIdempotencyStore(), ...options })],
        controllers: [controller as new () => unknown],
      };
    }
  }
  return NestFactory.create(AppModule.forRoot(), { logger: ['error'] });
}

function createDocument(app: INestApplication): OpenAPIObject {
  return SwaggerModule.createDocument(app, new DocumentBuilder().setTitle('test').build());
}

describe('SwaggerModule.createDocument() called before init(), as applications usually do', () => {
  let app: INestApplication;
  let beforeInit: OpenAPIObject;

  beforeAll(async () => {
    app = await createApp(OrdersController);
    beforeInit = createDocument(app);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('already has the key header and the refusals of every idempotent route (R25)', () => {
    const create = operation(beforeInit, 'post', '/orders');
    expect(keyParameter(create)).toMatchObject({ required: true, schema: { type: 'string', format: 'uuid' } });
    expect(Object.keys(create.responses).sort()).toEqual(['201', ...REFUSAL_STATUSES]);
    expect(create.responses['201'].headers?.['Idempotency-Replayed']).toBeDefined();
    expectNoIdempotency(operation(beforeInit, 'get', '/orders'));
  });

  it('documents a token key with its pattern and length (R25, R3)', () => {
    const key = keyParameter(operation(beforeInit, 'post', '/orders/{id}/refunds'));
    expect(key.required).toBe(false);
    expect(key.schema).toEqual({ type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7E]+$', example: expect.any(String) });
    expect(new RegExp(key.schema?.pattern as string).test('checkout:7f3c9a21')).toBe(true);
    expect(new RegExp(key.schema?.pattern as string).test('tab\tinside')).toBe(false);
  });

  it('documents a key with a custom validator as a plain string (R25, R3)', () => {
    expect(keyParameter(operation(beforeInit, 'post', '/orders/{id}/notes')).schema).toEqual({ type: 'string' });
  });

  it('answers key reuse on a mismatchStatus 409 route with 409, not 422, and says so (R25, R10)', () => {
    const capture = operation(beforeInit, 'post', '/orders/{id}/captures');
    expect(capture.responses['422']).toBeUndefined();
    const conflict = capture.responses['409'];
    expect(exampleCodes(conflict.content?.['application/json'])).toEqual(['idempotency_conflict', 'idempotency_key_reuse']);
    // Retry-After comes with idempotency_conflict only.
    expect(conflict.headers?.['Retry-After']).toMatchObject({ required: false });
    expect(conflict.headers?.['Retry-After'].description).toContain('`idempotency_conflict`');
    const key = keyParameter(capture);
    expect(key.description).toContain('409 `idempotency_key_reuse`');
    expect(key.description).toContain('409 `idempotency_conflict` with `Retry-After` at once');
  });

  it('keeps what the application documented itself: its key header, its success type, its 409 with the library\'s words added (R25)', () => {
    const ship = operation(beforeInit, 'post', '/orders/{id}/shipments');
    expect(headerParameters(ship, 'Idempotency-Key')).toEqual([expect.objectContaining({ name: 'idempotency-key', description: 'Our own words.' })]);
    expect(ship.responses['201'].content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/OrderView' });
    expect(ship.responses['201'].headers?.['Idempotency-Replayed']).toBeDefined();
    expect(ship.responses['409'].description).toMatch(/^The order has shipped already\.\n\n`idempotency_conflict`: /);
    expect(ship.responses['409'].headers?.['Retry-After']).toBeDefined();
  });

  it('does not document a GET marked @Idempotent(), whose key is ignored (R25, R1)', () => {
    expectNoIdempotency(operation(beforeInit, 'get', '/orders/{id}'));
  });

  it('gives the same document after init(), with no entry added twice (R25)', async () => {
    await app.init();
    const afterInit = createDocument(app);
    expect(afterInit).toEqual(beforeInit);
    expect(headerParameters(operation(afterInit, 'post', '/orders'), 'Idempotency-Key')).toHaveLength(1);
  });

  it('gives the same document to a second application with the same controllers in the process (R25)', async () => {
    const second = await createApp(OrdersController);
    try {
      expect(createDocument(second)).toEqual(beforeInit);
    } finally {
      await second.close();
    }
  });
});

describe('module options in the document', () => {
  let app: INestApplication;
  let document: OpenAPIObject;

  beforeAll(async () => {
    app = await createApp(LedgerController, {
      headerName: 'X-Request-Key',
      errorFormatter: problemJsonErrorFormatter,
      applyToAllWrites: true,
      required: true,
    });
    document = createDocument(app);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('documents the key header under its configured name (R25, R1)', () => {
    const post = operation(document, 'post', '/ledger');
    expect(keyParameter(post, 'X-Request-Key')).toMatchObject({ name: 'X-Request-Key', required: true });
    expect(headerParameters(post, 'Idempotency-Key')).toEqual([]);
    const missing = post.responses['400'].content?.['application/problem+json'].examples?.idempotency_key_missing.value;
    expect(missing).toMatchObject({ detail: 'This endpoint requires an X-Request-Key header.' });
  });

  it('documents refusals as application/problem+json when that formatter is chosen (R25, R17)', () => {
    const responses = operation(document, 'post', '/ledger').responses;
    for (const status of REFUSAL_STATUSES) {
      expect(Object.keys(responses[status].content ?? {})).toEqual(['application/problem+json']);
      const problem = resolved(document, responses[status].content?.['application/problem+json'].schema) as {
        properties: Record<string, Record<string, unknown>>;
      };
      expect(Object.keys(problem.properties).sort()).toEqual(['code', 'detail', 'status', 'title', 'type']);
      expect(resolved(document, unwrapped(problem.properties.code)).enum).toEqual(ERROR_CODES);
    }
    expect(responses['409'].content?.['application/problem+json'].examples?.idempotency_conflict.value).toEqual({
      type: 'urn:nestjs-idempotency:idempotency_conflict',
      title: 'idempotency conflict',
      status: 409,
      detail: expect.any(String),
      code: 'idempotency_conflict',
    });
    expect(document.components?.schemas?.IdempotencyErrorBody).toBeUndefined();
  });

  it('with applyToAllWrites documents every POST, PATCH and DELETE, and no PUT or GET (R25, R1)', () => {
    for (const [method, path] of [['post', '/ledger'], ['patch', '/ledger/{id}'], ['delete', '/ledger/{id}']] as const) {
      expect(keyParameter(operation(document, method, path), 'X-Request-Key').required).toBe(true);
    }
    expect(operation(document, 'delete', '/ledger/{id}').responses['204'].headers?.['Idempotency-Replayed']).toBeDefined();
    expectNoIdempotency(operation(document, 'put', '/ledger/{id}'), 'X-Request-Key');
    expectNoIdempotency(operation(document, 'get', '/ledger'), 'X-Request-Key');
  });
});

/**
 * `@nestjs/swagger` is an optional peer: the built package, imported by plain Node, must not load it,
 * and an application must start without it. A module hook records every URL Node resolves, and can
 * make `@nestjs/swagger` unresolvable as if it were not installed.
 */
describe('the built package without @nestjs/swagger', () => {
  const built = join(process.cwd(), 'libs/idempotency/dist/openapi/openapi-documentation.provider.js');
  let folder: string;

  beforeAll(() => {
    if (!existsSync(built)) throw new Error(`${built} is missing: run "npm run build" first (npm test does).`);
    folder = mkdtempSync(join(tmpdir(), 'idem-openapi-'));
    writeFileSync(
      join(folder, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, nextResolve) {
  if (process.env.HIDE_SWAGGER === '1' && specifier === '@nestjs/swagger') {
    appendFileSync(process.env.RESOLVED_LOG, 'hidden:' + specifier + '\\n');
    const error = new Error("Cannot find package '@nestjs/swagger' imported from " + context.parentURL);
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  const resolved = await nextResolve(specifier, context);
  appendFileSync(process.env.RESOLVED_LOG, resolved.url + '\\n');
  return resolved;
}
`,
    );
    writeFileSync(join(folder, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
  });

  afterAll(() => {
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  /** Runs `script` as an ES module in the project, returning its output and every URL it resolved. */
  async function runNode(script: string, env: Record<string, string> = {}): Promise<{ code: number | null; output: string; resolved: string[] }> {
    const log = join(folder, `resolved-${Math.random().toString(36).slice(2)}.log`);
    writeFileSync(log, '');
    const child = spawn(process.execPath, ['--import', join(folder, 'register.mjs'), '--input-type=module', '-e', script], {
      cwd: process.cwd(),
      env: { ...process.env, NODE_OPTIONS: '', RESOLVED_LOG: log, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, output, resolved: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
  }

  const swaggerUrls = (resolved: string[]) => resolved.filter((url) => url.includes('/node_modules/@nestjs/swagger/'));

  it('does not load @nestjs/swagger when the package is imported (R25)', async () => {
    const run = await runNode(`const library = await import('nestjs-idempotency'); console.log(typeof library.IdempotencyModule);`);
    expect(run.output.trim()).toBe('function');
    expect(run.code).toBe(0);
    // The hook saw the library itself, so it would have seen swagger too.
    expect(run.resolved.some((url) => url.endsWith('/libs/idempotency/dist/index.js'))).toBe(true);
    expect(swaggerUrls(run.resolved)).toEqual([]);
  });

  const startApp = `
    import 'reflect-metadata';
    import { Controller, Module, Post } from '@nestjs/common';
    import { NestFactory } from '@nestjs/core';
    import { IdempotencyModule, Idempotent } from 'nestjs-idempotency';
    class Orders { create() { return { ok: true }; } }
    const method = (name) => Object.getOwnPropertyDescriptor(Orders.prototype, name);
    Idempotent({ required: true })(Orders.prototype, 'create', method('create'));
    Post()(Orders.prototype, 'create', method('create'));
    Controller('orders')(Orders);
    const store = { claim: async () => undefined, inspect: async () => undefined, complete: async () => true, release: async () => true, renew: async () => true, purgeExpired: async () => 0 };
    class App {}
    Module({ imports: [IdempotencyModule.forRoot({ store })], controllers: [Orders] })(App);
    const app = await NestFactory.create(App, { logger: ['error'] });
    await app.listen(0, '127.0.0.1');
    const missing = await fetch(\`\${await app.getUrl()}/orders\`, { method: 'POST' });
    console.log('started', missing.status);
    await app.close();
  `;

  it('starts an application whose routes keep working when @nestjs/swagger is not installed (R25, R2)', async () => {
    const run = await runNode(startApp, { HIDE_SWAGGER: '1' });
    expect(run.output.trim()).toBe('started 400');
    expect(run.code).toBe(0);
    expect(run.resolved).toContain('hidden:@nestjs/swagger');
    expect(swaggerUrls(run.resolved.filter((url) => !url.startsWith('hidden:')))).toEqual([]);
  });

  it('loads @nestjs/swagger only when the application is created, where it is installed (R25)', async () => {
    const run = await runNode(startApp);
    expect(run.output.trim()).toBe('started 400');
    expect(swaggerUrls(run.resolved).length).toBeGreaterThan(0);
  });
});
