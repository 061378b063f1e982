import { Inject, Injectable, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { IdempotentMetadata } from './idempotent.decorator.js';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { IdempotentHandlerOptions, ResolvedModuleOptions, ResolvedRouteOptions } from './idempotency.options.js';

// Safe methods never create anything, so a key on them means nothing (R1).
const IGNORED_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const WRITE_METHODS = new Set(['POST', 'PATCH', 'DELETE']);

/** Answers, once per handler, whether a request is idempotent and with which options. */
@Injectable()
export class IdempotentRoutes {
  private readonly byHandler = new WeakMap<object, ResolvedRouteOptions | null>();

  constructor(
    private readonly reflector: Reflector,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  /** The route's options, or undefined when this request gets no idempotency. */
  optionsFor(context: ExecutionContext, method: string): ResolvedRouteOptions | undefined {
    return this.optionsForHandler(context.getHandler(), method);
  }

  /** The same answer for a handler outside any request, e.g. to document its route. */
  optionsForHandler(handler: Function, method: string): ResolvedRouteOptions | undefined {
    if (IGNORED_METHODS.has(method)) return undefined;
    let resolved = this.byHandler.get(handler);
    if (resolved === undefined) {
      const declared = this.reflector.get(IdempotentMetadata, handler);
      resolved = declared ? this.options.resolveRoute(declared) : null;
      this.byHandler.set(handler, resolved);
    }
    if (resolved) return resolved;
    return this.options.applyToAllWrites && WRITE_METHODS.has(method) ? this.defaults() : undefined;
  }

  /** What `@Idempotent()` declared on a handler, for the options a transport reads itself (`key`). */
  declaredFor(handler: Function): IdempotentHandlerOptions | undefined {
    return this.reflector.get(IdempotentMetadata, handler);
  }

  private defaultOptions?: ResolvedRouteOptions;

  private defaults(): ResolvedRouteOptions {
    this.defaultOptions ??= this.options.resolveRoute({});
    return this.defaultOptions;
  }
}
