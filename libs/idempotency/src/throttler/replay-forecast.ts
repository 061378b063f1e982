import type { ExecutionContext } from '@nestjs/common';
import { accountOf } from '../account/request-accounts.js';
import { bodyFingerprintInput } from '../fingerprint/body-fingerprint-input.js';
import { headerValues, httpExchangeOf, type HttpExchange } from '../http/http-exchange.js';
import type { IdempotentMutations } from '../graphql/idempotent-mutations.js';
import type { IdempotentRoutes } from '../idempotent-routes.js';
import type { ResolvedModuleOptions, ResolvedRouteOptions } from '../idempotency.options.js';
import { parseIdempotencyKey } from '../key/idempotency-key.parser.js';
import { routeRecord } from '../key/record-address.js';
import { requestKeyOf } from '../key/request-key.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';

/**
 * Tells, while guards run and before the interceptor claims anything, whether a request (or a
 * field of an idempotent GraphQL mutation) will be answered by an earlier run of itself: the store holds a record for its (account, key) with its
 * fingerprint, either completed (a replay, R9) or in flight under a live lease (a retry that waits
 * for that run, R11). One `inspect` per keyed request on an idempotent route, none otherwise.
 *
 * Every doubt answers "no", so that the request is charged as it would be without this library: no
 * route or key, another fingerprint (the 422 of R10), a lease that ended (the retry takes the key
 * over and runs), a resolver that refuses the request, a store that cannot answer.
 */
export class ReplayForecast {
  constructor(
    private readonly routes: IdempotentRoutes,
    private readonly options: ResolvedModuleOptions,
    private readonly store: IdempotencyStore,
    private readonly mutations?: IdempotentMutations,
  ) {}

  async isReplay(context: ExecutionContext): Promise<boolean> {
    const transport = context.getType<'http' | 'graphql'>();
    if (transport !== 'http' && transport !== 'graphql') return false;
    try {
      return transport === 'http' ? await this.lookUp(context) : await this.lookUpMutation(context);
    } catch {
      // Fail towards counting: the interceptor asks the store again and answers as usual (503 if it
      // is down, R18), and a refusing resolver's answer comes from the interceptor too.
      return false;
    }
  }

  private async lookUp(context: ExecutionContext): Promise<boolean> {
    const exchange = httpExchangeOf(context);
    const route = this.routes.optionsFor(context, exchange.fingerprintInput.method);
    if (!route) return false;
    const key = this.keyOf(exchange, route);
    if (key === undefined) return false;
    const record = routeRecord(await accountOf(this.options.account, exchange.request), key);
    // Read once per request and shared with the interceptor: a body no parser read counts here too.
    const input = await bodyFingerprintInput(exchange);
    // Hashed only when there is something to compare with: a fresh key costs no fingerprint here.
    return this.answeredBefore(record.account, record.key, () => route.fingerprint(input));
  }

  /** The same for a field of an idempotent GraphQL mutation: its record is its key and its response name. */
  private async lookUpMutation(context: ExecutionContext): Promise<boolean> {
    const claim = await this.mutations?.claimRequestFor(context);
    if (!claim) return false;
    return this.answeredBefore(claim.account, claim.key, () => claim.fingerprint);
  }

  /** Whether the key holds a record of this same request, completed or in flight under a live lease. */
  private async answeredBefore(account: string, key: string, fingerprint: () => string): Promise<boolean> {
    const record = await this.store.inspect(account, key);
    if (!record || record.fingerprint !== fingerprint()) return false;
    return record.status === 'completed' || record.leaseRemainingMs > 0;
  }

  /** The key as IdempotencyKeyGuard normalised it, or parsed the same way when that guard runs later. */
  private keyOf(exchange: HttpExchange, route: ResolvedRouteOptions): string | undefined {
    const remembered = requestKeyOf(exchange.incoming);
    if (remembered !== undefined) return remembered;
    const parsed = parseIdempotencyKey(headerValues(exchange.incoming, this.options.headerName), route.keyFormat);
    return parsed.ok ? parsed.key : undefined;
  }
}
