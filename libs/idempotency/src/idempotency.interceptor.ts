import {
  Inject,
  Injectable,
  Logger,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { of, tap, type Observable } from 'rxjs';
import { storedAccount } from './account/account-resolver.js';
import { IdempotencyConflictError } from './errors/idempotency-conflict.error.js';
import { IdempotencyKeyReuseError } from './errors/idempotency-key-reuse.error.js';
import { IdempotencyUnavailableError } from './errors/idempotency-unavailable.error.js';
import { httpExchangeOf, type HttpExchange } from './http/http-exchange.js';
import { IdempotentRoutes } from './idempotent-routes.js';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions, ResolvedRouteOptions } from './idempotency.options.js';
import { requestKeyOf } from './key/request-key.js';
import { LeaseHeartbeats } from './lease/lease-heartbeats.js';
import { captureResponse, type CapturedResponse } from './response/response-capture.js';
import { replayStoredResponse } from './response/response-replay.js';
import { pickStoredHeaders } from './response/stored-headers.js';
import {
  IDEMPOTENCY_STORE,
  type Claim,
  type ClaimRequest,
  type FoundRecord,
  type IdempotencyStore,
} from './store/idempotency-store.js';
import { waitForSettledRecord } from './lease/in-flight-wait.js';

interface KeyedRequest {
  readonly exchange: HttpExchange;
  readonly route: ResolvedRouteOptions;
  readonly claimRequest: ClaimRequest;
}

/**
 * Claims the key, runs the handler once, stores what was sent and replays it to retries (R8-R16).
 * Refusals are thrown as contract errors before the handler runs, and are never stored.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Idempotency');
  private readonly warnedRoutes = new Set<string>();

  constructor(
    private readonly routes: IdempotentRoutes,
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
    return this.decide(await this.prepare(exchange, route, key), next);
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

  private async decide(keyed: KeyedRequest, next: CallHandler): Promise<Observable<unknown>> {
    const { route, claimRequest } = keyed;
    const outcome = await this.storeCall(() => this.store.claim(claimRequest), keyed);
    if (outcome.status === 'claimed') {
      this.log(keyed, 'fresh');
      return this.execute(keyed, outcome.claim, next);
    }
    this.assertSameRequest(keyed, outcome);
    if (outcome.status === 'completed') return this.replay(keyed, outcome, 'replayed');

    const settled = await waitForSettledRecord(
      outcome,
      () => this.storeCall(() => this.store.inspect(claimRequest.account, claimRequest.key), keyed),
      route.inFlightWaitMs,
    );
    if (settled?.status === 'completed') {
      this.assertSameRequest(keyed, settled);
      return this.replay(keyed, settled, 'waited');
    }
    if (settled === undefined || settled.leaseRemainingMs <= 0) {
      // The first attempt released the key or died while we waited: this retry may run it now.
      const retried = await this.storeCall(() => this.store.claim(claimRequest), keyed);
      if (retried.status === 'claimed') {
        this.log(keyed, 'takeover');
        return this.execute(keyed, retried.claim, next);
      }
      this.assertSameRequest(keyed, retried);
      if (retried.status === 'completed') return this.replay(keyed, retried, 'waited');
    }
    this.log(keyed, 'conflict');
    throw new IdempotencyConflictError(route.inFlightWaitMs / 1000);
  }

  private assertSameRequest(keyed: KeyedRequest, found: FoundRecord): void {
    if (found.fingerprint === keyed.claimRequest.fingerprint) return;
    this.log(keyed, 'reuse');
    throw new IdempotencyKeyReuseError(keyed.route.mismatchStatus);
  }

  private replay(keyed: KeyedRequest, record: Extract<FoundRecord, { status: 'completed' }>, outcome: string): Observable<unknown> {
    this.log(keyed, outcome);
    replayStoredResponse(keyed.exchange.outgoing, record.response, keyed.route.storedHeaders);
    return of(undefined);
  }

  private execute(keyed: KeyedRequest, claim: Claim, next: CallHandler): Observable<unknown> {
    const { exchange, route } = keyed;
    let settled = false;
    const heartbeat = this.heartbeats.start(claim, {
      leaseMs: route.leaseMs,
      maxHoldMs: route.maxLockHoldMs,
      onLost: () => this.log(keyed, 'lost claim', 'warn'),
    });
    captureResponse(exchange.outgoing, {
      handlerSettled: () => settled,
      beforeSend: async (response) => {
        heartbeat.stop();
        await this.settle(keyed, claim, response);
      },
      unreplayable: (reason) => {
        heartbeat.stop();
        this.warnUnreplayableOnce(exchange.routeLabel, reason);
        void this.store.release(claim).catch((error: unknown) => this.logStoreError(keyed, error));
      },
    });
    const markSettled = (): void => {
      settled = true;
    };
    return next.handle().pipe(tap({ next: markSettled, error: markSettled, complete: markSettled }));
  }

  // Store or release, then let the bytes go. A store failure here does not fail the request: the
  // handler has run and its answer is the truth, so the client gets it (see README, "store outages").
  private async settle(keyed: KeyedRequest, claim: Claim, response: CapturedResponse): Promise<void> {
    const { route } = keyed;
    try {
      if (route.storeResponse(response.status)) {
        const stored = await this.store.complete(
          claim,
          { status: response.status, headers: pickStoredHeaders(response.headers, route.storedHeaders), body: response.body },
          route.ttlMs,
        );
        if (!stored) this.log(keyed, 'lost claim', 'warn');
      } else {
        await this.store.release(claim);
        this.log(keyed, 'released');
      }
    } catch (error) {
      this.logStoreError(keyed, error);
    }
  }

  private async storeCall<T>(call: () => Promise<T>, keyed: KeyedRequest): Promise<T> {
    try {
      return await call();
    } catch (error) {
      this.logStoreError(keyed, error);
      this.log(keyed, 'unavailable', 'warn');
      throw new IdempotencyUnavailableError();
    }
  }

  private warnUnreplayableOnce(routeLabel: string, reason: string): void {
    if (this.warnedRoutes.has(routeLabel)) return;
    this.warnedRoutes.add(routeLabel);
    this.logger.warn(
      `${routeLabel}: the response was ${reason}, so it cannot be replayed; it was sent as is and the key released. ` +
        `Return a value from the handler (no @Res() writes, no streams) to make this route replayable.`,
    );
  }

  private logStoreError(keyed: KeyedRequest, error: unknown): void {
    this.logger.error(`${keyed.exchange.routeLabel}: idempotency store error: ${error instanceof Error ? error.message : String(error)}`);
  }

  private log(keyed: KeyedRequest, outcome: string, level: 'debug' | 'warn' = 'debug'): void {
    // Skip building the line on the hot path when nobody would read it.
    if (!Logger.isLevelEnabled(level)) return;
    const { account, key } = keyed.claimRequest;
    this.logger[level](`${outcome} account=${JSON.stringify(account)} key=${key} route=${keyed.exchange.routeLabel}`);
  }
}
