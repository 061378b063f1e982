import { Inject, Injectable, Logger, type CallHandler, type ExecutionContext } from '@nestjs/common';
import { lastValueFrom, of, type Observable } from 'rxjs';
import { accountIdText } from '../account/account-id.js';
import { OnceRunner } from '../claims/once-runner.js';
import { jsonResultCodec } from '../claims/result-codec.js';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import { IdempotencyUnavailableError } from '../errors/idempotency-unavailable.error.js';
import { IdempotencyError } from '../errors/idempotency.error.js';
import { IdempotentRoutes } from '../idempotent-routes.js';
import { RESOLVED_OPTIONS } from '../idempotency.constants.js';
import type { IdempotentHandlerOptions, ResolvedModuleOptions, ResolvedRouteOptions } from '../idempotency.options.js';
import { acceptKey } from '../key/accepted-key.js';
import { valueAtPath, type IdempotencyKeySource } from '../key/key-source.js';
import { messageRecord } from '../key/record-address.js';
import type { ClaimRequest } from '../store/idempotency-store.js';
import { refusalAsRpcException } from './rpc-errors.js';
import { messageHeaderValues, patternOf, settleDelivery } from './transport-context.js';

/** A message handler's declared options and its resolved ones. */
interface MessageHandler {
  readonly declared: IdempotentHandlerOptions & { readonly key: IdempotencyKeySource };
  readonly route: ResolvedRouteOptions;
  /** An `@EventPattern` handler: nobody awaits its answer, so a refusal is logged rather than thrown. */
  readonly isEvent: boolean;
}

const MESSAGE = 'MESSAGE';
const JSON_PAYLOAD = { 'content-type': 'application/json' };
// Where @nestjs/microservices records whether a handler serves events or requests (PatternHandler.EVENT = 2).
const HANDLER_TYPE_METADATA = 'microservices:handler_type';
const EVENT_HANDLER = 2;

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
    const rpc = context.switchToRpc();
    const transport = rpc.getContext<unknown>();
    const handler = this.handlerOrReject(context.getHandler(), transport);
    if (!handler) return next.handle();
    const payload = rpc.getData<unknown>();
    const { declared } = handler;
    const pattern = patternOf(transport);
    let ran = false;
    const run = (): Promise<unknown> => {
      ran = true;
      return lastValueFrom(next.handle(), { defaultValue: undefined });
    };
    try {
      const key = this.keyOf(declared.key, payload, transport, handler.route);
      // Without a key there is no idempotency; a stream of replies then passes as it is, unless the
      // delivery is this adapter's to acknowledge.
      if (key === undefined && !declared.manualAck) return next.handle();
      const value = key === undefined ? await run() : (await this.runOnce(key, pattern, payload, handler, run)).value;
      // Only now that its outcome is stored: a crash before this point redelivers the message.
      if (declared.manualAck) settleDelivery(transport, 'ack');
      return of(value);
    } catch (error) {
      return this.failed(error, ran, pattern, handler, transport);
    }
  }

  /**
   * Settles a delivery that did not end in a stored outcome, and answers it. A handler that threw
   * released its key: the delivery is requeued, so the broker's redelivery runs it again. A
   * refusal that a later delivery may pass (the first still in flight, the store down, or a run
   * whose commit failed) is requeued too; one that no delivery can pass (another payload with the
   * key, a malformed key, a key function that throws) is rejected, to the queue's dead-letter
   * exchange if it has one.
   */
  private async failed(error: unknown, ran: boolean, pattern: string, handler: MessageHandler, transport: unknown): Promise<Observable<unknown>> {
    const refusal = error instanceof IdempotencyError ? error : undefined;
    const retryable = ran || refusal instanceof IdempotencyConflictError || refusal instanceof IdempotencyUnavailableError;
    if (handler.declared.manualAck) settleDelivery(transport, retryable ? 'requeue' : 'reject');
    if (!refusal) throw error;
    this.logger.warn(`message ${pattern}: ${refusal.message} (${refusal.code}); ${retryable ? 'to be delivered again' : 'not run'}`);
    // An event has nobody to answer: the warning is its refusal. A request gets the contract's code.
    if (handler.isEvent) return of(undefined);
    throw await refusalAsRpcException(refusal);
  }

  private runOnce(key: string, pattern: string, payload: unknown, { declared, route }: MessageHandler, run: () => Promise<unknown>) {
    const request: ClaimRequest = {
      ...messageRecord(pattern, accountIdText(declared.accountFromPayload?.(payload)), key),
      // As JSON whatever the payload: a number or a string is part of the fingerprint too.
      fingerprint: route.fingerprint({ method: MESSAGE, path: pattern, query: '', headers: JSON_PAYLOAD, body: payload ?? null, rawBody: undefined }),
      ttlMs: route.ttlMs,
      leaseMs: route.leaseMs,
      route: `message ${pattern}`,
    };
    return this.runner.run(request, route, { transport: 'message', route: request.route }, jsonResultCodec<unknown>(), run);
  }

  /** The handler's options; a misdeclared one throws, after rejecting the delivery it cannot handle. */
  private handlerOrReject(method: Function, transport: unknown): MessageHandler | null {
    try {
      return this.handlerFor(method);
    } catch (error) {
      if (this.routes.declaredFor(method)?.manualAck) settleDelivery(transport, 'reject');
      throw error;
    }
  }

  private handlerFor(method: Function): MessageHandler | null {
    let handler = this.handlers.get(method);
    if (handler === undefined) {
      const declared = this.routes.declaredFor(method);
      if (declared && !declared.key) {
        throw new Error('nestjs-idempotency: @Idempotent() on a message handler needs `key`: { payload: "eventId" }, { header: "..." } or a function');
      }
      handler = declared?.key
        ? {
            declared: { ...declared, key: declared.key },
            // A message's key is the producer's id, not a client's UUID: `token` unless the handler says otherwise.
            route: this.options.resolveRoute({ keyFormat: 'token', ...declared }),
            isEvent: Reflect.getMetadata(HANDLER_TYPE_METADATA, method) === EVENT_HANDLER,
          }
        : null;
      this.handlers.set(method, handler);
    }
    return handler;
  }

  /** The message's key, undefined when it has none and needs none; a refusal when it is missing or malformed. */
  private keyOf(source: IdempotencyKeySource, payload: unknown, transport: unknown, route: ResolvedRouteOptions): string | undefined {
    if (typeof source === 'function') return acceptKey(presentValue(source(payload)), { name: 'key', carrier: 'property' }, route);
    if ('payload' in source) return acceptKey(presentValue(valueAtPath(payload, source.payload)), { name: source.payload, carrier: 'property' }, route);
    if ('header' in source) return acceptKey(messageHeaderValues(transport, source.header), { name: source.header, carrier: 'header' }, route);
    throw new Error(`nestjs-idempotency: a message handler reads its key from { payload }, { header } or a function, not ${JSON.stringify(source)}`);
  }
}

function presentValue(value: unknown): string[] {
  return typeof value === 'string' || typeof value === 'number' ? [String(value)] : [];
}

