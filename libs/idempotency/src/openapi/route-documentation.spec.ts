import { describe, expect, it } from '@jest/globals';
import { Controller, HttpCode, Post } from '@nestjs/common';
import * as swagger from '@nestjs/swagger';
import { ApiConflictResponse, ApiCreatedResponse, ApiHeader, ApiOkResponse, DECORATORS } from '@nestjs/swagger';
import { resolveModuleOptions, type IdempotencyRouteOptions } from '../idempotency.options.js';
import { REPLAYED_HEADER } from '../response/response-replay.js';
import { errorBodyModelsFor } from './error-body-schemas.js';
import { idempotencyKeyParameter } from './idempotency-key-parameter.js';
import { refusalResponses } from './refusal-responses.js';
import { documentRoute, type RouteDocumentation } from './route-documentation.js';

type Responses = Record<string, { description?: string; headers?: Record<string, unknown>; type?: unknown }>;

function documentationFor(route: IdempotencyRouteOptions = {}): RouteDocumentation {
  const options = resolveModuleOptions({});
  const resolved = options.resolveRoute(route);
  return {
    keyHeader: idempotencyKeyParameter(options.headerName, resolved),
    refusals: refusalResponses(options.headerName, resolved, options.errorFormatter),
    models: errorBodyModelsFor(swagger, options.errorFormatter),
  };
}

function metadataOf(handler: Function) {
  return {
    parameters: Reflect.getOwnMetadata(DECORATORS.API_PARAMETERS, handler) as Array<{ name: string; in: string; required?: boolean }> | undefined,
    responses: Reflect.getOwnMetadata(DECORATORS.API_RESPONSE, handler) as Responses | undefined,
    extraModels: Reflect.getOwnMetadata(DECORATORS.API_EXTRA_MODELS, handler) as Function[] | undefined,
  };
}

class View {}

describe('documentRoute', () => {
  it('adds the key header, the replay header on the default success and the refusals to a bare handler (R25)', () => {
    @Controller('a')
    class A {
      @Post()
      create(): void {}
    }
    documentRoute(swagger, A, 'create', documentationFor({ required: true }));
    const { parameters, responses, extraModels } = metadataOf(A.prototype.create);
    expect(parameters).toEqual([expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: true })]);
    expect(Object.keys(responses!)).toEqual(['201', '400', '409', '422', '503']);
    expect(responses!['201'].headers).toHaveProperty(REPLAYED_HEADER);
    expect(extraModels).toEqual(errorBodyModelsFor(swagger, resolveModuleOptions({}).errorFormatter));
    expect(extraModels?.map((model) => model.name)).toEqual(['IdempotencyErrorBody']);
  });

  it('documents the success status of @HttpCode() when the handler declares none (R25)', () => {
    @Controller('b')
    class B {
      @Post()
      @HttpCode(202)
      create(): void {}
    }
    documentRoute(swagger, B, 'create', documentationFor());
    expect(Object.keys(metadataOf(B.prototype.create).responses!)).toEqual(['202', '400', '409', '422', '503']);
  });

  it('gives the same metadata when applied again, as for a second application in the process (R25)', () => {
    @Controller('c')
    class C {
      @Post()
      @ApiCreatedResponse({ type: View, description: 'Created.' })
      @ApiConflictResponse({ description: 'Shipped already.' })
      create(): void {}
    }
    documentRoute(swagger, C, 'create', documentationFor());
    const once = metadataOf(C.prototype.create);
    documentRoute(swagger, C, 'create', documentationFor());
    expect(metadataOf(C.prototype.create)).toEqual(once);
    expect(once.responses!['201']).toMatchObject({ type: View, description: 'Created.' });
    expect(once.responses!['409'].description).toMatch(/^Shipped already\.\n\n`idempotency_conflict`/);
  });

  it('shows the options of the latest application when they change (R25)', () => {
    @Controller('d')
    class D {
      @Post()
      create(): void {}
    }
    documentRoute(swagger, D, 'create', documentationFor({ required: true }));
    documentRoute(swagger, D, 'create', documentationFor({ mismatchStatus: 409 }));
    const { parameters, responses } = metadataOf(D.prototype.create);
    expect(parameters).toEqual([expect.objectContaining({ required: false })]);
    expect(Object.keys(responses!)).toEqual(['201', '400', '409', '503']);
  });

  it('leaves a key header the controller documents itself, in any case of its name (R25)', () => {
    @Controller('e')
    @ApiHeader({ name: 'IDEMPOTENCY-KEY', description: 'Ours.' })
    class E {
      @Post()
      create(): void {}
    }
    documentRoute(swagger, E, 'create', documentationFor());
    expect(metadataOf(E.prototype.create).parameters).toBeUndefined();
  });

  it('puts the replay header on a success the controller documents for all its routes (R25)', () => {
    @Controller('f')
    @ApiOkResponse({ description: 'Done.' })
    class F {
      @Post()
      create(): void {}
    }
    documentRoute(swagger, F, 'create', documentationFor());
    const { responses } = metadataOf(F.prototype.create);
    // Swagger shows the class's 200 beside the handler's default 201: both are successes a replay repeats.
    expect(responses!['200']).toMatchObject({ description: 'Done.', headers: { [REPLAYED_HEADER]: expect.anything() } });
    expect(responses!['201']).toMatchObject({ headers: { [REPLAYED_HEADER]: expect.anything() } });
  });

  it('keeps the response the swagger CLI plugin inferred, as swagger itself would apply it (R25)', () => {
    @Controller('g')
    class G {
      static _OPENAPI_METADATA_FACTORY() {
        return { create: { type: View } };
      }

      @Post()
      create(): void {}
    }
    documentRoute(swagger, G, 'create', documentationFor());
    expect(metadataOf(G.prototype.create).responses!['201']).toMatchObject({ type: View, headers: { [REPLAYED_HEADER]: expect.anything() } });
  });
});
