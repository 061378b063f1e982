import { Inject, Injectable, type CallHandler, type ExecutionContext } from '@nestjs/common';
import { lastValueFrom, of, type Observable } from 'rxjs';
import { RequestAccounts } from '../account/request-accounts.js';
import { OnceRunner } from '../claims/once-runner.js';
import { isReplayedFailure, jsonResultCodec } from '../claims/result-codec.js';
import { IdempotencyError } from '../errors/idempotency.error.js';
import { headerValues } from '../http/http-exchange.js';
import { IdempotentRoutes } from '../idempotent-routes.js';
import { RESOLVED_OPTIONS } from '../idempotency.constants.js';
import type { ResolvedModuleOptions, ResolvedRouteOptions } from '../idempotency.options.js';
import { acceptKey } from '../key/accepted-key.js';
import type { IdempotencyKeySource } from '../key/key-source.js';
import { mutationFieldRecord } from '../key/record-address.js';
import type { ClaimRequest } from '../store/idempotency-store.js';
import { graphqlFailureCodec, refusalAsGraphqlError } from './graphql-errors.js';
import { loadGraphql } from './graphql-package.js';
import { markIdempotentField } from './replayed-operation.js';
import type { IncomingMessage } from 'node:http';

/** The parts of graphql-js's resolve info this adapter reads. */
interface ResolveInfo {
  readonly fieldName: string;
  readonly parentType: { readonly name: string };
  readonly operation: { readonly operation: string };
  readonly path: { readonly key: string | number };
}

/** The GraphQL context as Nest's drivers build it: the HTTP request, and the response when the app passes it. */
interface OperationContext {
  readonly req?: { readonly raw?: IncomingMessage; readonly res?: object } & object;
  readonly res?: object;
}

/** A field of an idempotent mutation, as its resolver is about to run. */
interface IdempotentField {
  readonly args: Record<string, unknown> | undefined;
  readonly info: ResolveInfo;
  readonly route: ResolvedRouteOptions;
  readonly request: OperationContext['req'];
  readonly response: object | undefined;
  readonly source: IdempotencyKeySource;
}

// Not a write method of routes: only mutations marked @Idempotent() are idempotent, whatever applyToAllWrites says.
const MUTATION = 'MUTATION';

/**
 * The GraphQL adapter (R23): an `@Idempotent()` mutation field is claimed, run once, stored and
 * replayed by the same engine as `runOnce`. The key comes from the HTTP request's header (or an
 * argument); each idempotent field of an operation is its own record, keyed by its response name;
 * the fingerprint is the field, its arguments and the key. Refusals are GraphQL errors whose
 * `extensions.code` is the contract's code.
 */
@Injectable()
export class IdempotentMutations {
  private readonly claimsByField = new WeakMap<ResolveInfo, Promise<ClaimRequest | undefined>>();

  constructor(
    private readonly routes: IdempotentRoutes,
    private readonly accounts: RequestAccounts,
    private readonly runner: OnceRunner,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const field = this.idempotentFieldOf(context);
    if (!field) return next.handle();
    const graphql = await loadGraphql();
    const { request, response, route } = field;
    try {
      const claimRequest = await this.claimRequestOf(field);
      if (!claimRequest) {
        // Unguarded, so not replayed: the operation's response must not say it was.
        if (request) markIdempotentField(request, response, false);
        return next.handle();
      }
      const codec = jsonResultCodec<unknown>(graphqlFailureCodec(graphql, route.storeResponse));
      const result = await this.runner.run(claimRequest, route, { transport: 'graphql', route: claimRequest.route }, codec, () =>
        lastValueFrom(next.handle(), { defaultValue: null }),
      );
      if (request) markIdempotentField(request, response, result.replayed);
      return of(result.value);
    } catch (error) {
      if (request) markIdempotentField(request, response, isReplayedFailure(error));
      throw error instanceof IdempotencyError ? refusalAsGraphqlError(graphql, error) : error;
    }
  }

  /**
   * What a keyed field of an idempotent mutation claims, as its run would, for the throttler's
   * forecast of a replay (R24); undefined for any other field, or one without a key. Throws the
   * refusal for a malformed or missing required key, as the run would.
   */
  async claimRequestFor(context: ExecutionContext): Promise<ClaimRequest | undefined> {
    const field = this.idempotentFieldOf(context);
    return field && this.claimRequestOf(field);
  }

  /** The field being resolved, when it is a field of a mutation marked `@Idempotent()`. */
  private idempotentFieldOf(context: ExecutionContext): IdempotentField | undefined {
    const [, args, operation, info] = context.getArgs<[unknown, Record<string, unknown>, OperationContext, ResolveInfo]>();
    if (info?.operation?.operation !== 'mutation') return undefined;
    const handler = context.getHandler();
    const route = this.routes.optionsForHandler(handler, MUTATION);
    if (!route) return undefined;
    const request = operation?.req;
    return {
      args,
      info,
      route,
      request,
      response: operation?.res ?? request?.res,
      source: this.routes.declaredFor(handler)?.key ?? { header: this.options.headerName },
    };
  }

  /**
   * The field's claim: undefined when it has no key and needs none; a refusal when its key is
   * missing or malformed. Worked out once per field resolution (its resolve info is its own
   * object), though the throttler's forecast asks before the run does.
   */
  private claimRequestOf(field: IdempotentField): Promise<ClaimRequest | undefined> {
    let claim = this.claimsByField.get(field.info);
    if (!claim) {
      claim = this.newClaimRequest(field);
      this.claimsByField.set(field.info, claim);
    }
    return claim;
  }

  private async newClaimRequest({ args, info, route, request, source }: IdempotentField): Promise<ClaimRequest | undefined> {
    const key = this.keyOf(source, args, request, route);
    if (key === undefined) return undefined;
    const field = `${info.parentType.name}.${info.fieldName}`;
    return {
      ...mutationFieldRecord(await this.accounts.of(request, `graphql ${field}`), String(info.path.key), key),
      fingerprint: route.fingerprint({ method: MUTATION, path: field, query: '', headers: {}, body: { arguments: argumentsBesidesKey(args, source), key }, rawBody: undefined }),
      ttlMs: route.ttlMs,
      leaseMs: route.leaseMs,
      route: `graphql ${field}`,
    };
  }

  /** The field's key, undefined when it has none and needs none; a refusal when it is missing or malformed. */
  private keyOf(
    source: IdempotencyKeySource,
    args: Record<string, unknown> | undefined,
    request: OperationContext['req'],
    route: ResolvedRouteOptions,
  ): string | undefined {
    if (typeof source !== 'function' && 'argument' in source) {
      const value = args?.[source.argument];
      return acceptKey(value === undefined || value === null ? [] : [String(value)], { name: source.argument, carrier: 'argument' }, route);
    }
    if (typeof source !== 'function' && 'header' in source) {
      const incoming = request?.raw ?? (request as IncomingMessage | undefined);
      return acceptKey(incoming?.rawHeaders ? headerValues(incoming, source.header) : [], { name: source.header, carrier: 'header' }, route);
    }
    throw new Error(`nestjs-idempotency: a GraphQL mutation reads its key from { header } or { argument }, not ${String(JSON.stringify(source))}`);
  }
}

/**
 * The arguments that identify the request. A key argument is left out: it is in the fingerprint
 * normalised, so that another spelling of the same UUID is the same request (R3).
 */
function argumentsBesidesKey(args: Record<string, unknown> | undefined, source: IdempotencyKeySource): Record<string, unknown> {
  if (typeof source === 'function' || !('argument' in source) || !args) return args ?? {};
  const { [source.argument]: _key, ...rest } = args;
  return rest;
}
