import { RequestMethod, type Provider, type Type } from '@nestjs/common';
import { METHOD_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { IdempotentRoutes } from '../idempotent-routes.js';
import { RESOLVED_OPTIONS } from '../idempotency.constants.js';
import type { ResolvedModuleOptions } from '../idempotency.options.js';
import { errorBodyModelsFor } from './error-body-schemas.js';
import { idempotencyKeyParameter } from './idempotency-key-parameter.js';
import { refusalResponses } from './refusal-responses.js';
import { documentRoute, type RouteDocumentation } from './route-documentation.js';
import { loadSwagger, type SwaggerPackage } from './swagger-package.js';

/** The routes documented, as `Controller.method`; empty without `@nestjs/swagger`. */
export type DocumentedRoutes = readonly string[];

/** Resolves, at start-up, to the idempotent routes whose OpenAPI documentation this library completed. */
export const OPENAPI_DOCUMENTATION = Symbol('IDEMPOTENCY_OPENAPI_DOCUMENTATION');

/**
 * Documents every idempotent route for `@nestjs/swagger` (R25), when it is installed. A provider
 * factory, because providers are resolved inside `NestFactory.create()`: applications call
 * `SwaggerModule.createDocument()` right after it, before `init()` runs any lifecycle hook.
 */
export const openApiDocumentationProvider: Provider = {
  provide: OPENAPI_DOCUMENTATION,
  inject: [DiscoveryService, MetadataScanner, IdempotentRoutes, RESOLVED_OPTIONS],
  useFactory: async (
    discovery: DiscoveryService,
    scanner: MetadataScanner,
    routes: IdempotentRoutes,
    options: ResolvedModuleOptions,
  ): Promise<DocumentedRoutes> => {
    const swagger = await loadSwagger();
    if (!swagger) return [];
    const documented: string[] = [];
    for (const { metatype } of discovery.getControllers()) {
      const controller = metatype as Type | null | undefined;
      if (typeof controller !== 'function') continue;
      for (const methodName of scanner.getAllMethodNames(controller.prototype)) {
        const documentation = documentationFor(swagger, controller, methodName, routes, options);
        if (!documentation) continue;
        documentRoute(swagger, controller, methodName, documentation);
        documented.push(`${controller.name}.${methodName}`);
      }
    }
    return documented;
  },
};

function documentationFor(
  swagger: SwaggerPackage,
  controller: Type,
  methodName: string,
  routes: IdempotentRoutes,
  options: ResolvedModuleOptions,
): RouteDocumentation | undefined {
  const handler = (controller.prototype as Record<string, unknown>)[methodName];
  if (typeof handler !== 'function') return undefined;
  const method: unknown = Reflect.getMetadata(METHOD_METADATA, handler);
  if (typeof method !== 'number') return undefined;
  // The same decision the guard and the interceptor take per request, so the document cannot disagree.
  const route = routes.optionsForHandler(handler, RequestMethod[method]);
  if (!route) return undefined;
  return {
    keyHeader: idempotencyKeyParameter(options.headerName, route),
    refusals: refusalResponses(options.headerName, route, options.errorFormatter),
    models: errorBodyModelsFor(swagger, options.errorFormatter),
  };
}
