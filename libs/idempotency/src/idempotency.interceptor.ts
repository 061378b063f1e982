import {
  Inject,
  Injectable,
  Logger,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Observable, of, tap } from 'rxjs';
import { storedAccount } from './account/account-resolver.js';
import { runInTransaction } from './atomic/idempotency-transaction.js';
import { ClaimCoordinator } from './claims/claim-coordinator.js';
import { renderIdempotencyError } from './errors/error-formatter.js';
import { IdempotencyConflictError } from './errors/idempotency-conflict.error.js';
import { IdempotencyUnavailableError } from './errors/idempotency-unavailable.error.js';
import type { IdempotencyError } from './errors/idempotency.error.js';
import { httpExchangeOf, type HttpExchange } from './http/http-exchange.js';
import { IdempotentRoutes } from './idempotent-routes.js';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions, ResolvedRouteOptions } from './idempotency.options.js';
import { requestKeyOf } from './key/request-key.js';
import { LeaseHeartbeats } from './lease/lease-heartbeats.js';
import { captureResponse, type CapturedResponse, type ReplacementResponse } from './response/response-capture.js';
import { REPLAYED_HEADER, replayStoredResponse } from './response/response-replay.js';
import { pickStoredHeaders } from './response/stored-headers.js';
import {
  IDEMPOTENCY_STORE,
  type AtomicUnit,
  type Claim,
  type ClaimRequest,
  type IdempotencyStore,
  type StoredResponse,
} from './store/idempotency-store.js';

/** What happens to a run's claim once its response is known, or once it proved unreplayable. */
interface CapturedOutcome {
  settle(stored: StoredResponse | undefined): Promise<ReplacementResponse | void>;
  abandon(): Promise<void>;
}

interface KeyedRequest {
  readonly exchange: HttpExchange;
  readonly route: ResolvedRouteOptions;
  readonly claimRequest: ClaimRequest;
}

/**
 * Claims the key, runs the handler once, stores what was sent and replays it to retries (R8-R16);
 * in atomic mode, inside a transaction that commits with the stored response (R22). Refusals are
 * thrown as contract errors before the handler runs, and are never stored.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Idempotency');
  private readonly warnedRoutes = new Set<string>();

  constructor(
    private readonly routes: IdempotentRoutes,
    private readonly claims: ClaimCoordinator,
    private readonly heartbeats: LeaseHeartbeats,
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const exchange = httpExchangeOf(context);
    const route = this.routes.optionsFor(context, exchange.fingerprintInput.method);
    const key = requestKeyOf(exchange.incoming);
    if (!route || key === undefined) return next.handle();
    const keyed = await this.prepare(exchange, route, key);
    const acquired = await this.claims.acquire(keyed.claimRequest, route);
    if (acquired.kind === 'replay') {
      replayStoredResponse(exchange.reply, acquired.record.response, route.storedHeaders);
      return of(undefined);
    }
    return route.atomic ? this.executeAtomically(keyed, acquired.claim, next) : this.execute(keyed, acquired.claim, next);
  }

  private async prepare(exchange: HttpExchange, route: ResolvedRouteOptions, key: string): Promise<KeyedRequest> {
    const account = storedAccount(await this.options.account(exchange.request));
    // Fixed here, before the handler can touch the body (R7).
    const fingerprint = route.fingerprint(exchange.fingerprintInput);
    return {
      exchange,
      route,
      claimRequest: { account, key, fingerprint, ttlMs: route.ttlMs, leaseMs: route.leaseMs, route: exchange.routeLabel },
    };
  }

  private execute(keyed: KeyedRequest, claim: Claim, next: CallHandler): Observable<unknown> {
    return this.runCaptured(keyed, claim, next, {
      settle: async (stored) => this.claims.settle(keyed.claimRequest, claim, stored, keyed.route.ttlMs),
      abandon: () => this.claims.release(keyed.claimRequest, claim),
    });
  }

  // The claim has committed on its own, so concurrent retries see it and wait (R11) instead of
  // queueing on row locks; the handler's writes and the stored response then commit together.
  private async executeAtomically(keyed: KeyedRequest, claim: Claim, next: CallHandler): Promise<Observable<unknown>> {
    let unit: AtomicUnit;
    try {
      if (!this.store.beginAtomic) throw new Error('this store cannot run atomic mode');
      unit = await this.store.beginAtomic();
    } catch (error) {
      this.claims.logStoreError(keyed.claimRequest, error);
      await this.claims.release(keyed.claimRequest, claim);
      throw new IdempotencyUnavailableError();
    }
    const outcome: CapturedOutcome = {
      settle: async (stored) => {
        if (!stored) {
          await unit.rollback().catch((error: unknown) => this.claims.logStoreError(keyed.claimRequest, error));
          await this.claims.release(keyed.claimRequest, claim);
          return undefined;
        }
        try {
          if (await unit.commitWith(claim, stored, keyed.route.ttlMs)) return undefined;
          // Fenced (R20): a retry took the key over and this run's writes were rolled back, so this
          // client gets what the owner that did commit stored, or 409 while it still runs.
          this.claims.log(keyed.claimRequest, 'lost claim', 'warn');
          return await this.answerOfWinner(keyed);
        } catch (error) {
          // Nothing of the handler's work was committed: say so rather than send what did not happen.
          this.claims.logStoreError(keyed.claimRequest, error);
          await this.claims.release(keyed.claimRequest, claim);
          return this.unavailableResponse();
        }
      },
      // The response is already on its way and cannot be stored: keep the writes it reports, and
      // free the key, exactly as without atomic mode (R16b).
      abandon: async () => {
        await unit.commit().catch((error: unknown) => this.claims.logStoreError(keyed.claimRequest, error));
        await this.claims.release(keyed.claimRequest, claim);
      },
    };
    // Nest binds the handler to the async context in force when next.handle() is called, so it is
    // called inside the transaction's context: everything the handler awaits then sees it.
    return new Observable((subscriber) =>
      runInTransaction(unit.manager, () => this.runCaptured(keyed, claim, next, outcome).subscribe(subscriber)),
    );
  }

  private runCaptured(
    keyed: KeyedRequest,
    claim: Claim,
    next: CallHandler,
    outcome: CapturedOutcome,
  ): Observable<unknown> {
    const { exchange, route } = keyed;
    let settled = false;
    const heartbeat = this.heartbeats.start(claim, {
      leaseMs: route.leaseMs,
      maxHoldMs: route.maxLockHoldMs,
      onLost: () => this.claims.log(keyed.claimRequest, 'lost claim', 'warn'),
    });
    captureResponse(exchange.outgoing, {
      handlerSettled: () => settled,
      representation: exchange.reply.recordRepresentation(),
      beforeSend: async (response) => {
        heartbeat.stop();
        return outcome.settle(this.storable(route, response));
      },
      unreplayable: (reason) => {
        heartbeat.stop();
        this.warnUnreplayableOnce(exchange.routeLabel, reason);
        void outcome.abandon();
      },
    });
    const markSettled = (): void => {
      settled = true;
    };
    return next.handle().pipe(tap({ next: markSettled, error: markSettled, complete: markSettled }));
  }

  /** The response to store, or undefined when its status means the key is released (R14). */
  private storable(route: ResolvedRouteOptions, response: CapturedResponse): StoredResponse | undefined {
    if (!route.storeResponse(response.status)) return undefined;
    return { status: response.status, headers: pickStoredHeaders(response.headers, route.storedHeaders), body: response.body };
  }

  private async answerOfWinner(keyed: KeyedRequest): Promise<ReplacementResponse> {
    const winner = await this.claims.completedBy(keyed.claimRequest);
    if (winner) {
      const { response } = winner;
      return { status: response.status, headers: { ...flatHeaders(response.headers), [REPLAYED_HEADER]: 'true' }, body: response.body };
    }
    return this.errorResponse(new IdempotencyConflictError(keyed.route.inFlightWaitMs / 1000));
  }

  private unavailableResponse(): ReplacementResponse {
    return this.errorResponse(new IdempotencyUnavailableError());
  }

  private errorResponse(error: IdempotencyError): ReplacementResponse {
    const rendered = renderIdempotencyError(error, this.options.errorFormatter);
    return { ...rendered, body: Buffer.from(rendered.body) };
  }

  private warnUnreplayableOnce(routeLabel: string, reason: string): void {
    if (this.warnedRoutes.has(routeLabel)) return;
    this.warnedRoutes.add(routeLabel);
    this.logger.warn(
      `${routeLabel}: the response was ${reason}, so it cannot be replayed; it was sent as is and the key released. ` +
        `Return a value from the handler (no @Res() writes, no streams) to make this route replayable.`,
    );
  }
}

function flatHeaders(headers: Readonly<Record<string, string | string[]>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : value]));
}
