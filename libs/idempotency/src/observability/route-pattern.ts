import type { ExecutionContext } from '@nestjs/common';

/**
 * The route as metrics should label it: `POST /v1/exports/:id`, the pattern the platform matched
 * (Express `req.route.path`, Fastify `request.routeOptions.url`), never the path as sent, whose
 * ids would give every request a label of its own. Falls back to the handler's name.
 */
export function routePatternLabel(context: ExecutionContext, request: unknown, method: string): string {
  const matched = request as { route?: { path?: unknown }; routeOptions?: { url?: unknown } } | undefined;
  const pattern = matched?.routeOptions?.url ?? matched?.route?.path;
  return typeof pattern === 'string' ? `${method} ${pattern}` : `${method} ${context.getClass().name}.${context.getHandler().name}`;
}
