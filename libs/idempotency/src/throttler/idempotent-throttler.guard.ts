import { Injectable, type ExecutionContext, type Type } from '@nestjs/common';
import { ModuleRef, Reflector } from '@nestjs/core';
import { InjectThrottlerOptions, InjectThrottlerStorage, ThrottlerGuard } from '@nestjs/throttler';
import type { ThrottlerModuleOptions, ThrottlerRequest, ThrottlerStorage } from '@nestjs/throttler';
import { IdempotentMutations } from '../graphql/idempotent-mutations.js';
import { IdempotentRoutes } from '../idempotent-routes.js';
import { RESOLVED_OPTIONS } from '../idempotency.constants.js';
import type { ResolvedModuleOptions } from '../idempotency.options.js';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from '../store/idempotency-store.js';
import { ReplayForecast } from './replay-forecast.js';

/**
 * `ThrottlerGuard` that does not charge replays (R24), of routes and of GraphQL mutation fields
 * (whose requests it also reads from the GraphQL context): a request whose key already holds a
 * completed response for this same request, or a first run of it still in flight, passes without a
 * hit; the first request, a reused key with another body and a fresh key are counted as usual.
 */
@Injectable()
export class IdempotentThrottlerGuard extends ThrottlerGuard {
  private forecast!: ReplayForecast;
  private readonly answers = new WeakMap<object, Promise<boolean>>();

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storageService: ThrottlerStorage,
    reflector: Reflector,
    private readonly moduleRef: ModuleRef,
  ) {
    super(options, storageService, reflector);
  }

  override async onModuleInit(): Promise<void> {
    await super.onModuleInit();
    // Looked up rather than injected: the module keeps its route table and options to itself, and
    // this guard is declared in the application's module, wherever that imports IdempotencyModule.
    this.forecast = new ReplayForecast(
      this.fromIdempotencyModule<IdempotentRoutes>(IdempotentRoutes),
      this.fromIdempotencyModule<ResolvedModuleOptions>(RESOLVED_OPTIONS),
      this.fromIdempotencyModule<IdempotencyStore>(IDEMPOTENCY_STORE),
      this.fromIdempotencyModule<IdempotentMutations>(IdempotentMutations),
    );
  }

  // A GraphQL field's request and response are the HTTP ones that carry its operation, as the
  // library's GraphQL adapter reads them (`res` in the context, else Express's `req.res`).
  protected override getRequestResponse(context: ExecutionContext): { req: Record<string, unknown>; res: Record<string, unknown> } {
    if (context.getType<'graphql'>() !== 'graphql') return super.getRequestResponse(context);
    const operation = context.getArgByIndex<{ req?: Record<string, unknown>; res?: Record<string, unknown> } | undefined>(2);
    const req = operation?.req ?? {};
    return { req, res: operation?.res ?? (req.res as Record<string, unknown> | undefined) ?? {} };
  }

  // Here rather than in shouldSkip(): this runs only for a throttler that would count the request
  // (after @SkipThrottle, skipIf), so a route without a limit never pays the store lookup.
  protected override async handleRequest(requestProps: ThrottlerRequest): Promise<boolean> {
    if (await this.isReplay(requestProps.context)) return true;
    return super.handleRequest(requestProps);
  }

  /** Asked once per request (per field of a GraphQL mutation), however many named throttlers apply to it. */
  private isReplay(context: ExecutionContext): Promise<boolean> {
    const transport = context.getType<'http' | 'graphql'>();
    if (transport !== 'http' && transport !== 'graphql') return Promise.resolve(false);
    // The field's resolve info is its own object; a request is one per HTTP request.
    const asked = transport === 'graphql' ? context.getArgByIndex<object>(3) : context.switchToHttp().getRequest<object>();
    let answer = this.answers.get(asked);
    if (!answer) {
      answer = this.forecast.isReplay(context);
      this.answers.set(asked, answer);
    }
    return answer;
  }

  private fromIdempotencyModule<T>(token: Type<unknown> | symbol): T {
    try {
      return this.moduleRef.get<unknown, T>(token, { strict: false });
    } catch {
      throw new Error(
        'nestjs-idempotency: IdempotentThrottlerGuard needs IdempotencyModule.forRoot() (or forRootAsync()) in the ' +
          'application, to tell replays from new requests. Import it, or use ThrottlerGuard from @nestjs/throttler.',
      );
    }
  }
}
