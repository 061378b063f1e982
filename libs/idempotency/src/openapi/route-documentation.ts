import { RequestMethod, type Type } from '@nestjs/common';
import { HTTP_CODE_METADATA, METHOD_METADATA } from '@nestjs/common/constants.js';
import type { ApiHeaderOptions, ApiResponseOptions, HeaderObject, ReferenceObject } from '@nestjs/swagger';
import type { RefusalResponse } from './refusal-responses.js';
import { isSuccessStatus, replayedHeader } from './replayed-header.js';
import type { SwaggerPackage } from './swagger-package.js';

/** What an idempotent route adds to its OpenAPI operation. */
export interface RouteDocumentation {
  readonly keyHeader: ApiHeaderOptions;
  readonly refusals: readonly RefusalResponse[];
  /** The component classes the refusals' schemas refer to. */
  readonly models: readonly Function[];
}

/** A response as `@ApiResponse()` stores it on a handler or a controller, by status. */
interface StoredResponseEntry {
  description?: string;
  headers?: Record<string, HeaderObject | ReferenceObject>;
  [option: string]: unknown;
}
type StoredResponses = Record<string, StoredResponseEntry>;

/** The swagger metadata a handler had from its own decorators, before this library added to it. */
interface DeclaredMetadata {
  readonly parameters: unknown;
  readonly responses: unknown;
  readonly extraModels: unknown;
}

// Swagger metadata lives on the handler function, which outlives one application: a second
// application in the process (tests, one per HTTP platform) starts again from the handler's own
// decorators, so entries are never added twice and the latest module options are the ones shown.
const declaredByHandler = new WeakMap<Function, DeclaredMetadata>();

// Set by @nestjs/swagger's CLI plugin on controller classes (plugin/plugin-constants.js).
const PLUGIN_METADATA_FACTORY = '_OPENAPI_METADATA_FACTORY';

/** A handler and the way to put a swagger method decorator on it. */
interface DocumentedHandler {
  readonly swagger: SwaggerPackage;
  readonly controller: Type;
  readonly methodName: string;
  readonly handler: Function;
  decorate(decorator: MethodDecorator): void;
}

/**
 * Adds the key header, the `Idempotency-Replayed` header on success responses and the library's
 * refusals to one handler, through swagger's own decorators. What the application declared itself
 * wins: a key header it documents is left alone, and a refusal status it documents keeps its
 * schema, with the library's description appended.
 */
export function documentRoute(swagger: SwaggerPackage, controller: Type, methodName: string, documentation: RouteDocumentation): void {
  const target = controller.prototype as Record<string, unknown>;
  const handler = target[methodName] as Function;
  const route: DocumentedHandler = {
    swagger,
    controller,
    methodName,
    handler,
    decorate: (decorator) => decorator(target, methodName, { value: handler }),
  };
  restoreDeclared(handler, swagger);
  addKeyHeader(route, documentation.keyHeader);
  addResponses(route, documentation.refusals);
  route.decorate(swagger.ApiExtraModels(...documentation.models));
}

function addKeyHeader({ swagger, controller, handler, decorate }: DocumentedHandler, keyHeader: ApiHeaderOptions): void {
  const { API_PARAMETERS, API_HEADERS } = swagger.DECORATORS;
  const declared = [...arrayMetadata(API_PARAMETERS, handler), ...arrayMetadata(API_HEADERS, controller)];
  if (!declared.some((parameter) => isHeaderNamed(parameter, keyHeader.name))) decorate(swagger.ApiHeader(keyHeader));
}

function addResponses({ swagger, controller, methodName, handler, decorate }: DocumentedHandler, refusals: readonly RefusalResponse[]): void {
  const { API_RESPONSE } = swagger.DECORATORS;
  // Swagger shows a default success response only for a handler without any: adding refusals
  // would hide it, so it becomes explicit first, from the CLI plugin's metadata as swagger would.
  if (!Reflect.getOwnMetadata(API_RESPONSE, handler)) {
    decorate(swagger.ApiResponse(pluginResponse(controller, methodName) ?? { status: defaultStatus(handler), description: '' }));
  }
  const own = Reflect.getOwnMetadata(API_RESPONSE, handler) as StoredResponses;
  const inherited = (Reflect.getMetadata(API_RESPONSE, controller) ?? {}) as StoredResponses;
  const responses: StoredResponses = { ...own };
  for (const [status, entry] of Object.entries({ ...inherited, ...own })) {
    if (isSuccessStatus(status)) responses[status] = { ...entry, headers: { ...replayedHeader, ...entry.headers } };
  }
  for (const { status, ...refusal } of refusals) {
    const declared = own[status] ?? inherited[status];
    responses[status] = declared
      ? { ...declared, description: joined(declared.description, refusal.description), headers: { ...refusal.headers, ...declared.headers } }
      : refusal;
  }
  // Written anew: @ApiResponse() merges an entry into an existing one of its status, and would
  // repeat its description and drop its type.
  Reflect.deleteMetadata(API_RESPONSE, handler);
  for (const [status, entry] of Object.entries(responses)) {
    decorate(swagger.ApiResponse({ ...entry, status: statusKey(status) } as ApiResponseOptions));
  }
}

function restoreDeclared(handler: Function, { DECORATORS }: SwaggerPackage): void {
  const keys = { parameters: DECORATORS.API_PARAMETERS, responses: DECORATORS.API_RESPONSE, extraModels: DECORATORS.API_EXTRA_MODELS };
  const declared = declaredByHandler.get(handler);
  if (!declared) {
    declaredByHandler.set(handler, {
      parameters: Reflect.getOwnMetadata(keys.parameters, handler),
      responses: Reflect.getOwnMetadata(keys.responses, handler),
      extraModels: Reflect.getOwnMetadata(keys.extraModels, handler),
    });
    return;
  }
  for (const [name, key] of Object.entries(keys)) {
    const value = declared[name as keyof DeclaredMetadata];
    if (value === undefined) Reflect.deleteMetadata(key, handler);
    else Reflect.defineMetadata(key, value, handler);
  }
}

function arrayMetadata(key: string, target: object): unknown[] {
  const value: unknown = Reflect.getMetadata(key, target);
  return Array.isArray(value) ? value : [];
}

// Header names are case-insensitive; swagger compares parameters case-sensitively.
function isHeaderNamed(parameter: unknown, headerName: string): boolean {
  const { in: location, name } = (parameter ?? {}) as { in?: unknown; name?: unknown };
  return location === 'header' && typeof name === 'string' && name.toLowerCase() === headerName.toLowerCase();
}

/** The response the CLI plugin inferred from the handler's return type, if the plugin is used. */
function pluginResponse(controller: Type, methodName: string): ApiResponseOptions | undefined {
  for (let prototype = controller.prototype as object | null; prototype && prototype !== Object.prototype; prototype = Object.getPrototypeOf(prototype)) {
    const owner = prototype.constructor as unknown as Record<string, unknown>;
    const factory = owner[PLUGIN_METADATA_FACTORY];
    if (typeof factory !== 'function') continue;
    const metadata = (factory.call(owner) as Record<string, Record<string, unknown> | undefined>)[methodName];
    const { summary: _summary, deprecated: _deprecated, tags: _tags, ...response } = metadata ?? {};
    if (Object.keys(response).length > 0) {
      const handler = (controller.prototype as Record<string, Function>)[methodName];
      return { ...response, status: response.status ?? defaultStatus(handler) } as ApiResponseOptions;
    }
  }
  return undefined;
}

// The status swagger documents for a handler without @ApiResponse(): @HttpCode(), else 201 for POST, else 200.
function defaultStatus(handler: Function): number {
  const declared: unknown = Reflect.getMetadata(HTTP_CODE_METADATA, handler);
  if (typeof declared === 'number') return declared;
  return Reflect.getMetadata(METHOD_METADATA, handler) === RequestMethod.POST ? 201 : 200;
}

function statusKey(status: string): ApiResponseOptions['status'] {
  return /^\d+$/.test(status) ? Number(status) : (status as ApiResponseOptions['status']);
}

function joined(declared: string | undefined, added: string): string {
  return declared ? `${declared}\n\n${added}` : added;
}
