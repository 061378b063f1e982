import { Inject, Injectable, Logger, type CallHandler, type ExecutionContext } from '@nestjs/common';
import { lastValueFrom, of, type Observable } from 'rxjs';
import { storedAccount } from '../account/account-resolver.js';
import { OnceRunner } from '../claims/once-runner.js';
import { jsonResultCodec } from '../claims/result-codec.js';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import { IdempotencyKeyMissingError } from '../errors/idempotency-key-missing.error.js';
import { IdempotencyUnavailableError } from '../errors/idempotency-unavailable.error.js';
import { IdempotencyError, type KeyCarrier } from '../errors/idempotency.error.js';
import { InvalidIdempotencyKeyError } from '../errors/invalid-idempotency-key.error.js';
import { IdempotentRoutes } from '../idempotent-routes.js';
import { RESOLVED_OPTIONS } from '../idempotency.constants.js';
import type { IdempotentHandlerOptions, ResolvedModuleOptions, ResolvedRouteOptions } from '../idempotency.options.js';
import { describeKeyFormat, parseIdempotencyKey } from '../key/idempotency-key.parser.js';
import { valueAtPath, type IdempotencyKeySource } from '../key/key-source.js';
import type { ClaimRequest } from '../store/idempotency-store.js';
import { refusalAsRpcException } from './rpc-errors.js';
import { messageHeaderValues, patternOf, settleDelivery } from './transport-context.js';

/** A message handler's declared options and its resolved ones. */
interface MessageHandler {
  readonly declared: IdempotentHandlerOptions & { readonly key: IdempotencyKeySource };
  readonly route: ResolvedRouteOptions;
}

const MESSAGE = 'MESSAGE';
const SCOPE_PREFIX = 'message:';

/**
 * The message adapter (R23): an `@Idempotent({ key })` `@EventPattern` or `@MessagePattern`
 * handler runs once per (pattern, key) and, for request-response, hands a redelivered or
 * republished message the stored reply; the engine is the one `runOnce` and GraphQL use. A
 * duplicate in flight is waited for. With `manualAck`, this adapter acknowledges every delivery:
 * once its outcome is stored (or replayed), or when it is refused for good; it requeues a delivery
 * whose handler threw (its key released) or that may pass later (the first still in flight past
 * the wait, the store down).
 */
@Injectable()
export class IdempotentMessages {
  private readonly logger = new Logger('Idempotency');
  private readonly handlers = new WeakMap<Function, MessageHandler | null>();

  constructor(
    private readonly routes: IdempotentRoutes,
    private readonly runner: OnceRunner,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const handler = this.handlerFor(context.getHandler());
    if (!handler) return next.handle();
    const rpc = context.switchToRpc();
    const payload = rpc.getData<unknown>();
    const transport = rpc.getContext<unknown>();
    const { declared, route } = handler;
    const pattern = patternOf(transport);
    let ran = false;
    try {
      const key = this.keyOf(declared.key, payload, transport, route);
      if (key === undefined) return next.handle();
      const account = declared.accountFromPayload?.(payload);
      const request: ClaimRequest = {
        account: storedAccount(`${SCOPE_PREFIX}${pattern}${account === undefined || account === null ? '' : `|${account}`}`),
        key,
        fingerprint: route.fingerprint({ method: MESSAGE, path: pattern, query: '', headers: {}, body: payload ?? null, rawBody: undefined }),
        ttlMs: route.ttlMs,
        leaseMs: route.leaseMs,
        route: `message ${pattern}`,
      };
      const result = await this.runner.run(request, route, { transport: 'message', route: request.route }, jsonResultCodec<unknown>(), () => {
        ran = true;
        return lastValueFrom(next.handle(), { defaultValue: undefined });
      });
      // Only now that its outcome is stored: a crash before this point redelivers the message.
      if (declared.manualAck) settleDelivery(transport, 'ack');
      return of(result.value);
    } catch (error) {
      if (ran) {
        // The handler failed and its key is released: the broker's redelivery runs it again.
        if (declared.manualAck) settleDelivery(transport, 'requeue');
        throw error;
      }
      if (!(error instanceof IdempotencyError)) throw error;
      const retryable = error instanceof IdempotencyConflictError || error instanceof IdempotencyUnavailableError;
      if (declared.manualAck) settleDelivery(transport, retryable ? 'requeue' : 'ack');
      this.logger.warn(`message ${pattern}: ${error.message} (${error.code}); ${retryable ? 'to be delivered again' : 'not run'}`);
      throw await refusalAsRpcException(error);
    }
  }

  private handlerFor(method: Function): MessageHandler | null {
    let handler = this.handlers.get(method);
    if (handler === undefined) {
      const declared = this.routes.declaredFor(method);
      if (declared && !declared.key) {
        throw new Error('nestjs-idempotency: @Idempotent() on a message handler needs `key`: { payload: "eventId" }, { header: "..." } or a function');
      }
      // A message's key is the producer's id, not a client's UUID: `token` unless the handler says otherwise.
      handler = declared?.key ? { declared: { ...declared, key: declared.key }, route: this.options.resolveRoute({ keyFormat: 'token', ...declared }) } : null;
      this.handlers.set(method, handler);
    }
    return handler;
  }

  /** The message's key, undefined when it has none and needs none; a refusal when it is missing or malformed. */
  private keyOf(source: IdempotencyKeySource, payload: unknown, transport: unknown, route: ResolvedRouteOptions): string | undefined {
    let values: string[];
    let name: string;
    let carrier: KeyCarrier;
    if (typeof source === 'function') {
      values = presentValue(source(payload));
      [name, carrier] = ['key', 'property'];
    } else if ('payload' in source) {
      values = presentValue(valueAtPath(payload, source.payload));
      [name, carrier] = [source.payload, 'property'];
    } else if ('header' in source) {
      values = messageHeaderValues(transport, source.header);
      [name, carrier] = [source.header, 'header'];
    } else {
      throw new Error(`nestjs-idempotency: a message handler reads its key from { payload }, { header } or a function, not ${JSON.stringify(source)}`);
    }
    const parsed = parseIdempotencyKey(values, route.keyFormat);
    if (parsed.ok) return parsed.key;
    if (parsed.failure === 'missing') {
      if (route.required) throw new IdempotencyKeyMissingError(name, carrier);
      return undefined;
    }
    throw new InvalidIdempotencyKeyError(name, describeKeyFormat(route.keyFormat), carrier);
  }
}

function presentValue(value: unknown): string[] {
  return typeof value === 'string' || typeof value === 'number' ? [String(value)] : [];
}
