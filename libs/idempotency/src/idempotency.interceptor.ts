import {
  Inject,
  Injectable,
  Logger,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Observable, of, tap } from 'rxjs';
import { resolveStoredAccount } from './account/account-resolver.js';
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
import type { ObservedSource, RequestObservation } from './observability/request-observation.js';
import { routePatternLabel } from './observability/route-pattern.js';
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

/** What happens to a run's claim once its response (and its status) is known, or once it proved unreplayable. */
interface CapturedOutcome {
  settle(stored: StoredResponse | undefined, status: number): Promise<ReplacementResponse | void>;
  abandon(status: number): Promise<void>;
}

interface KeyedRequest {
  readonly exchange: HttpExchange;
  readonly route: ResolvedRouteOptions;
  readonly claimRequest: ClaimRequest;
  readonly source: ObservedSource;
}

/** A claimed run: the request, its claim, and what its outcome is published through (R27). */
interface ClaimedRun extends KeyedRequest {
  readonly claim: Claim;
  readonly observation: RequestObservation;
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
    const keyed = await this.prepare(context, exchange, route, key);
    const acquired = await this.claims.acquire(keyed.claimRequest, route, keyed.source);
    if (acquired.kind === 'replay') {
      replayStoredResponse(exchange.reply, acquired.record.response, route.storedHeaders);
      return of(undefined);
    }
    const run: ClaimedRun = { ...keyed, claim: acquired.claim, observation: acquired.observation };
    return route.atomic ? this.executeAtomically(run, next) : this.execute(run, next);
  }

  private async prepare(
    context: ExecutionContext,
    exchange: HttpExchange,
    route: ResolvedRouteOptions,
    key: string,
  ): Promise<KeyedRequest> {
    const account = await resolveStoredAccount(this.options.account, exchange.request);
    // Fixed here, before the handler can touch the body (R7).
    const fingerprint = route.fingerprint(exchange.fingerprintInput);
    return {
      exchange,
      route,
      claimRequest: { account, key, fingerprint, ttlMs: route.ttlMs, leaseMs: route.leaseMs, route: exchange.routeLabel },
      source: { transport: 'http', route: routePatternLabel(context, exchange.request, exchange.fingerprintInput.method) },
    };
  }

  private execute(run: ClaimedRun, next: CallHandler): Observable<unknown> {
    const { claimRequest, claim, observation } = run;
    return this.runCaptured(run, next, {
      settle: async (stored, status) => this.claims.settle(claimRequest, claim, stored, run.route.ttlMs, observation, status),
      abandon: (status) => this.claims.release(claimRequest, claim, observation, 'not_replayable', status),
    });
  }

  // The claim has committed on its own, so concurrent retries see it and wait (R11) instead of
  // queueing on row locks; the handler's writes and the stored response then commit together.
  private async executeAtomically(run: ClaimedRun, next: CallHandler): Promise<Observable<unknown>> {
    const { claimRequest, claim, observation } = run;
    let unit: AtomicUnit;
    try {
      if (!this.store.beginAtomic) throw new Error('this store cannot run atomic mode');
      unit = await this.store.beginAtomic();
    } catch (error) {
      this.claims.logStoreError(claimRequest, error);
      const unavailable = new IdempotencyUnavailableError();
      await this.claims.release(claimRequest, claim, observation, 'unavailable', unavailable.getStatus());
      throw unavailable;
    }
    const outcome: CapturedOutcome = {
      settle: async (stored, status) => {
        if (!stored) {
          await unit.rollback().catch((error: unknown) => this.claims.logStoreError(claimRequest, error));
          await this.claims.release(claimRequest, claim, observation, 'released', status);
          return undefined;
        }
        observation.settling();
        try {
          if (await observation.storeCall('complete', () => unit.commitWith(claim, stored, run.route.ttlMs))) {
            observation.settled(status);
            return undefined;
          }
          // Fenced (R20): a retry took the key over and this run's writes were rolled back, so this
          // client gets what the owner that did commit stored, or 409 while it still runs.
          this.claims.claimLost(claimRequest, observation);
          const answer = await this.answerOfWinner(run);
          observation.settled(answer.status);
          return answer;
        } catch (error) {
          // Nothing of the handler's work was committed: say so rather than send what did not happen.
          this.claims.logStoreError(claimRequest, error);
          const unavailable = this.unavailableResponse();
          await this.claims.release(claimRequest, claim, observation, 'unavailable', unavailable.status);
          return unavailable;
        }
      },
      // The response is already on its way and cannot be stored: keep the writes it reports, and
      // free the key, exactly as without atomic mode (R16b).
      abandon: async (status) => {
        await unit.commit().catch((error: unknown) => this.claims.logStoreError(claimRequest, error));
        await this.claims.release(claimRequest, claim, observation, 'not_replayable', status);
      },
    };
    // Nest binds the handler to the async context in force when next.handle() is called, so it is
    // called inside the transaction's context: everything the handler awaits then sees it.
    return new Observable((subscriber) =>
      runInTransaction(unit.manager, () => this.runCaptured(run, next, outcome).subscribe(subscriber)),
    );
  }

  private runCaptured(run: ClaimedRun, next: CallHandler, outcome: CapturedOutcome): Observable<unknown> {
    const { exchange, route, claimRequest, observation } = run;
    let settled = false;
    const heartbeat = this.heartbeats.start(run.claim, {
      leaseMs: route.leaseMs,
      maxHoldMs: route.maxLockHoldMs,
      onLost: () => this.claims.claimLost(claimRequest, observation),
      onRenewed: (durationMs, ok) => observation.backgroundStoreCall('renew', durationMs, ok),
    });
    captureResponse(exchange.outgoing, {
      handlerSettled: () => settled,
      representation: exchange.reply.recordRepresentation(),
      beforeSend: async (response) => {
        heartbeat.stop();
        return outcome.settle(this.storable(route, response), response.status);
      },
      unreplayable: (reason) => {
        heartbeat.stop();
        this.warnUnreplayableOnce(exchange.routeLabel, reason);
        void outcome.abandon(exchange.outgoing.statusCode);
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

  private async answerOfWinner(run: ClaimedRun): Promise<ReplacementResponse> {
    const winner = await this.claims.completedBy(run.claimRequest, run.observation);
    if (winner) {
      const { response } = winner;
      return { status: response.status, headers: { ...flatHeaders(response.headers), [REPLAYED_HEADER]: 'true' }, body: response.body };
    }
    return this.errorResponse(new IdempotencyConflictError(run.route.inFlightWaitMs / 1000));
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
