import {
  Inject,
  Injectable,
  Logger,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Observable, of, tap } from 'rxjs';
import { RequestAccounts } from './account/request-accounts.js';
import { runInTransaction } from './atomic/idempotency-transaction.js';
import { ClaimCoordinator } from './claims/claim-coordinator.js';
import { renderIdempotencyError } from './errors/error-formatter.js';
import type { IdempotencyError } from './errors/idempotency.error.js';
import { IdempotencyUnavailableError } from './errors/idempotency-unavailable.error.js';
import { bodyFingerprintInput } from './fingerprint/body-fingerprint-input.js';
import { IdempotentMutations } from './graphql/idempotent-mutations.js';
import { httpExchangeOf, type HttpExchange } from './http/http-exchange.js';
import { IdempotentMessages } from './messages/idempotent-messages.js';
import { IdempotentRoutes } from './idempotent-routes.js';
import { RESOLVED_OPTIONS } from './idempotency.constants.js';
import type { ResolvedModuleOptions, ResolvedRouteOptions } from './idempotency.options.js';
import { routeRecord } from './key/record-address.js';
import { requestKeyOf } from './key/request-key.js';
import { LeaseHeartbeats } from './lease/lease-heartbeats.js';
import type { ObservedSource, RequestObservation } from './observability/request-observation.js';
import { routePatternLabel } from './observability/route-pattern.js';
import { captureResponse, type CapturedResponse, type ReplacementResponse } from './response/response-capture.js';
import { REPLAYED_HEADER, replayStoredResponse } from './response/response-replay.js';
import { pickStoredHeaders } from './response/stored-headers.js';
import type { AtomicUnit, Claim, ClaimRequest, CompletedRecord, StoredResponse } from './store/idempotency-store.js';

/** What happens to a run's claim once its response (and its status) is known, or once it proved unreplayable. */
interface CapturedOutcome {
  /** `leaseEndsAt`: when the claim's lease, no longer renewed, ends (monotonic clock). */
  settle(stored: StoredResponse | undefined, status: number, leaseEndsAt: number): Promise<ReplacementResponse | void>;
  abandon(status: number, leaseEndsAt: number): Promise<void>;
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
 * The one interceptor of every transport, and the HTTP adapter: GraphQL mutations and message
 * handlers go to their own adapters. For routes it claims the key, runs the handler once, stores
 * what was sent and replays it to retries (R8-R16); in atomic mode, inside a transaction that
 * commits with the stored response (R22). Refusals are thrown as contract errors before the
 * handler runs, and are never stored.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Idempotency');
  private readonly warnedRoutes = new Set<string>();

  constructor(
    private readonly routes: IdempotentRoutes,
    private readonly accounts: RequestAccounts,
    private readonly claims: ClaimCoordinator,
    private readonly heartbeats: LeaseHeartbeats,
    private readonly mutations: IdempotentMutations,
    private readonly messages: IdempotentMessages,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const transport = context.getType<'http' | 'graphql' | 'rpc'>();
    if (transport === 'graphql') return this.mutations.intercept(context, next);
    if (transport === 'rpc') return this.messages.intercept(context, next);
    if (transport !== 'http') return next.handle();
    const exchange = httpExchangeOf(context);
    const route = this.routes.optionsFor(context, exchange.fingerprintInput.method);
    const key = requestKeyOf(exchange.incoming);
    if (!route || key === undefined) return next.handle();
    const keyed = await this.prepare(context, exchange, route, key);
    if (route.atomic) {
      const acquired = await this.claims.acquireAtomically(keyed.claimRequest, route, keyed.source);
      if (acquired.kind === 'replay') return this.replay(keyed, acquired.record);
      return this.executeAtomically({ ...keyed, claim: acquired.claim, observation: acquired.observation }, acquired.unit, next);
    }
    const acquired = await this.claims.acquire(keyed.claimRequest, route, keyed.source);
    if (acquired.kind === 'replay') return this.replay(keyed, acquired.record);
    return this.execute({ ...keyed, claim: acquired.claim, observation: acquired.observation }, next);
  }

  private replay({ exchange, route }: KeyedRequest, record: CompletedRecord): Observable<unknown> {
    replayStoredResponse(exchange.reply, record.response, route.storedHeaders);
    return of(undefined);
  }

  private async prepare(
    context: ExecutionContext,
    exchange: HttpExchange,
    route: ResolvedRouteOptions,
    key: string,
  ): Promise<KeyedRequest> {
    const source: ObservedSource = { transport: 'http', route: routePatternLabel(context, exchange.request, exchange.fingerprintInput.method) };
    const record = routeRecord(await this.accounts.of(exchange.request, source.route), key);
    // Fixed here, before the handler can touch the body (R7); a body no parser read is read here.
    const fingerprint = route.fingerprint(await bodyFingerprintInput(exchange));
    return {
      exchange,
      route,
      claimRequest: { ...record, fingerprint, ttlMs: route.ttlMs, leaseMs: route.leaseMs, route: exchange.routeLabel },
      source,
    };
  }

  private execute(run: ClaimedRun, next: CallHandler): Observable<unknown> {
    const { claimRequest, claim, observation } = run;
    const lease = (endsAt: number) => ({ endsAt, leaseMs: run.route.leaseMs });
    return this.runCaptured(run, next, {
      settle: async (stored, status, leaseEndsAt) => {
        const settled = await this.claims.settle(claimRequest, claim, stored, run.route.ttlMs, observation, status, lease(leaseEndsAt));
        // Too few replicas have the response: a failover could run it again, so its client retries.
        if (settled === 'unconfirmed') return this.errorResponse(new IdempotencyUnavailableError());
      },
      abandon: (status, leaseEndsAt) => this.claims.release(claimRequest, claim, observation, 'not_replayable', status, lease(leaseEndsAt)),
    });
  }

  // The claim was made inside the transaction (R22a): the handler's writes, the claim and the
  // stored response commit once, together, or not at all.
  private executeAtomically(run: ClaimedRun, unit: AtomicUnit, next: CallHandler): Observable<unknown> {
    const { claimRequest, claim, observation } = run;
    const outcome: CapturedOutcome = {
      settle: async (stored, status) => {
        // The database ended the transaction under the handler (it lost its key to another
        // node's commit, or its connection): whatever the handler answered, nothing of it counts.
        const interruption = unit.interruption?.();
        if (interruption) return this.answerInstead(() => this.claims.answerInterrupted(claimRequest, unit, observation, interruption, run.route));
        if (!stored) return this.claims.rollBackAtomically(claimRequest, unit, observation, 'released', status);
        const committed = await this.claims.commitAtomically(claimRequest, claim, unit, stored, run.route.ttlMs, observation);
        if (committed === 'committed') return observation.settled(status);
        // Nothing of this run was committed: its client gets the answer of the run that took its
        // claim over, else the refusal, in place of the response the handler produced.
        return this.answerInstead(() => this.claims.answerUncommitted(claimRequest, observation, committed, run.route));
      },
      // The response is already on its way and cannot be stored: keep the writes it reports, and
      // free the key, exactly as without atomic mode (R16b).
      abandon: (status) => this.claims.commitReleasingAtomically(claimRequest, claim, unit, observation, status),
    };
    // Nest binds the handler to the async context in force when next.handle() is called, so it is
    // called inside the transaction's context: everything the handler awaits then sees it.
    return new Observable((subscriber) =>
      runInTransaction(unit.manager, () => this.runCaptured(run, next, outcome, unit).subscribe(subscriber)),
    );
  }

  private runCaptured(run: ClaimedRun, next: CallHandler, outcome: CapturedOutcome, unit?: AtomicUnit): Observable<unknown> {
    const { exchange, route, claimRequest, observation } = run;
    let settled = false;
    const heartbeat = this.heartbeats.start(run.claim, this.claims.leasePlan(claimRequest, observation, route, unit));
    captureResponse(exchange.outgoing, {
      handlerSettled: () => settled,
      representation: exchange.reply.recordRepresentation(),
      beforeSend: async (response) => {
        const leaseEndsAt = heartbeat.stop();
        return outcome.settle(this.storable(route, response), response.status, leaseEndsAt);
      },
      unreplayable: (reason) => {
        const leaseEndsAt = heartbeat.stop();
        this.warnUnreplayableOnce(exchange.routeLabel, reason);
        void outcome.abandon(exchange.outgoing.statusCode, leaseEndsAt);
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

  /** The winner's record as the answer, or the refusal the coordinator threw. */
  private async answerInstead(winner: () => Promise<CompletedRecord>): Promise<ReplacementResponse> {
    try {
      return replayedResponse(await winner());
    } catch (refusal) {
      return this.errorResponse(refusal as IdempotencyError);
    }
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

/** A committed record as an answer to a run that lost its claim to it. */
function replayedResponse({ response }: CompletedRecord): ReplacementResponse {
  return { status: response.status, headers: { ...flatHeaders(response.headers), [REPLAYED_HEADER]: 'true' }, body: response.body };
}

function flatHeaders(headers: Readonly<Record<string, string | string[]>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : value]));
}
