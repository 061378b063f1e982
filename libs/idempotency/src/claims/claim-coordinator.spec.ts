import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { trace, type Context, type Span, type SpanContext, type SpanStatus, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.js';
import { IdempotencyKeyReuseError } from '../errors/idempotency-key-reuse.error.js';
import { IdempotencyUnavailableError } from '../errors/idempotency-unavailable.error.js';
import {
  IDEMPOTENCY_CHANNELS,
  type IdempotencyOutcomeMessage,
  type IdempotencyStoreCallMessage,
} from '../observability/idempotency-channels.js';
import type { ObservedSource, RequestObservation } from '../observability/request-observation.js';
import type {
  AtomicClaimOutcome,
  AtomicUnit,
  Claim,
  ClaimOutcome,
  ClaimRequest,
  FoundRecord,
  IdempotencyStore,
  StoredResponse,
} from '../store/idempotency-store.js';
import { TransactionLostRaceError } from '../store/lost-race.error.js';
import { StoreReplicationError } from '../store/store-replication.error.js';
import { ClaimCoordinator, type Acquired } from './claim-coordinator.js';

const KEY = 'checkout:secret-attempt-7f3a';
const request: ClaimRequest = { account: 'acme', key: KEY, fingerprint: 'fp-a', ttlMs: 60_000, leaseMs: 60_000, route: 'POST /orders (OrdersController.create)' };
const http: ObservedSource = { transport: 'http', route: 'POST /orders' };
const policy = { inFlightWaitMs: 150, mismatchStatus: 422 };
const claim: Claim = { account: 'acme', key: KEY, fingerprint: 'fp-a', ownerToken: 'owner-1' };
const response: StoredResponse = { status: 201, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"id":1}') };
const completed = (fingerprint = 'fp-a'): FoundRecord => ({ status: 'completed', fingerprint, response, expiresInMs: 60_000 });
const inFlight = (leaseRemainingMs = 30_000): FoundRecord => ({ status: 'in_flight', fingerprint: 'fp-a', leaseRemainingMs });

/** A store that answers each call from a script; an Error in the script is thrown. */
function scriptedStore(script: {
  claims?: Array<ClaimOutcome | Error>;
  inspections?: Array<FoundRecord | undefined>;
  complete?: boolean | Error;
  release?: boolean | Error;
}): IdempotencyStore {
  const answer = <T>(value: T | Error): Promise<T> => (value instanceof Error ? Promise.reject(value) : Promise.resolve(value));
  return {
    claim: () => answer(script.claims?.shift() ?? { status: 'claimed', claim }),
    inspect: async () => (script.inspections?.length ? script.inspections.shift() : inFlight()),
    complete: () => answer(script.complete ?? true),
    release: () => answer(script.release ?? true),
    renew: async () => true,
    purgeExpired: async () => 0,
  };
}

/** Every message published on both channels while a test runs. */
function listen(): { outcomes: IdempotencyOutcomeMessage[]; storeCalls: IdempotencyStoreCallMessage[]; stop(): void } {
  const outcomes: IdempotencyOutcomeMessage[] = [];
  const storeCalls: IdempotencyStoreCallMessage[] = [];
  const onOutcome = (message: unknown): void => void outcomes.push(message as IdempotencyOutcomeMessage);
  const onStore = (message: unknown): void => void storeCalls.push(message as IdempotencyStoreCallMessage);
  subscribe(IDEMPOTENCY_CHANNELS.outcome, onOutcome);
  subscribe(IDEMPOTENCY_CHANNELS.store, onStore);
  return {
    outcomes,
    storeCalls,
    stop() {
      unsubscribe(IDEMPOTENCY_CHANNELS.outcome, onOutcome);
      unsubscribe(IDEMPOTENCY_CHANNELS.store, onStore);
    },
  };
}

function runOf(acquired: Acquired): { claim: Claim; observation: RequestObservation } {
  if (acquired.kind !== 'run') throw new Error(`expected a run, got ${acquired.kind}`);
  return acquired;
}

/** The smallest TracerProvider that keeps what it was given: no SDK needed. */
class RecordedSpan implements Span {
  private static next = 1;
  readonly attributes: Record<string, unknown> = {};
  status?: SpanStatus;
  ended = false;
  private readonly id = (RecordedSpan.next++).toString(16).padStart(16, '0');

  constructor(
    readonly name: string,
    readonly parent: RecordedSpan | undefined,
  ) {}

  spanContext(): SpanContext {
    return { traceId: '1'.padStart(32, '0'), spanId: this.id, traceFlags: 1 };
  }
  setAttribute(key: string, value: unknown): this {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Record<string, unknown>): this {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {
    this.ended = true;
  }
  isRecording(): boolean {
    return true;
  }
  recordException(): void {}
}

class RecordingTracerProvider implements TracerProvider {
  readonly spans: RecordedSpan[] = [];

  getTracer(): Tracer {
    return {
      startSpan: (name: string, _options?: unknown, context?: Context) => {
        const parent = context ? trace.getSpan(context) : undefined;
        const span = new RecordedSpan(name, parent instanceof RecordedSpan ? parent : undefined);
        this.spans.push(span);
        return span;
      },
      startActiveSpan: ((): never => {
        throw new Error('not used by the library');
      }) as Tracer['startActiveSpan'],
    };
  }

  named(name: string): RecordedSpan[] {
    return this.spans.filter((span) => span.name === name);
  }
}

// Warnings stay enabled, as in an application, so that the tests that expect one see it.
beforeAll(() => {
  Logger.overrideLogger(['error', 'warn']);
});

describe('ClaimCoordinator outcomes on the diagnostics channels (R27)', () => {
  let listener: ReturnType<typeof listen>;

  beforeEach(() => {
    listener = listen();
  });

  afterEach(() => {
    listener.stop();
    jest.restoreAllMocks();
  });

  it('publishes fresh once the run is stored, with account, route pattern, key hash, transport, timings and status, and never the key (R27, R8)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({}));
    const run = runOf(await coordinator.acquire(request, policy, http));
    expect(listener.outcomes).toEqual([]);
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201);

    expect(listener.outcomes).toEqual([
      {
        outcome: 'fresh',
        account: 'acme',
        route: 'POST /orders',
        keyHash: expect.stringMatching(/^[0-9a-f]{16}$/),
        transport: 'http',
        totalMs: expect.any(Number),
        storeMs: expect.any(Number),
        status: 201,
      },
    ]);
    const [message] = listener.outcomes;
    expect(message.storeMs).toBeLessThanOrEqual(message.totalMs);
    expect(JSON.stringify(message)).not.toContain(KEY);
    expect(listener.storeCalls.map(({ operation, ok }) => [operation, ok])).toEqual([
      ['claim', true],
      ['complete', true],
    ]);
    expect(listener.storeCalls.every((call) => call.route === 'POST /orders' && call.transport === 'http' && call.durationMs >= 0)).toBe(true);
  });

  it('gives one key the same hash in every message, and another account or key another hash (R27, R5)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ claims: [completed(), completed(), completed()] }));
    await coordinator.acquire(request, policy, http);
    await coordinator.acquire(request, policy, http);
    await coordinator.acquire({ ...request, account: 'globex' }, policy, http);
    const [first, second, otherAccount] = listener.outcomes.map((message) => message.keyHash);
    expect(second).toBe(first);
    expect(otherAccount).not.toBe(first);
  });

  it('publishes replayed with the stored status when the key has completed (R27, R9)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ claims: [completed()] }));
    const acquired = await coordinator.acquire(request, policy, http);
    expect(acquired.kind).toBe('replay');
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'replayed', status: 201 })]);
    expect(listener.outcomes[0]).not.toHaveProperty('waitMs');
  });

  it('publishes reuse with the mismatch status for another fingerprint, without waiting (R27, R10)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ claims: [completed('fp-b')] }));
    await expect(coordinator.acquire(request, policy, http)).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'reuse', status: 422 })]);
  });

  it('publishes waited with waitMs when a retry waited for the first attempt and got its replay (R27, R11)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ claims: [inFlight()], inspections: [completed()] }));
    expect((await coordinator.acquire(request, { ...policy, inFlightWaitMs: 2000 }, http)).kind).toBe('replay');
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'waited', status: 201, waitMs: expect.any(Number) })]);
    expect(listener.storeCalls.map((call) => call.operation)).toEqual(['claim', 'inspect']);
  });

  it('publishes conflict with status 409 and a waitMs of the whole wait when the first attempt is still in flight (R27, R11)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ claims: [inFlight()] }));
    await expect(coordinator.acquire(request, policy, http)).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'conflict', status: 409 })]);
    expect(listener.outcomes[0].waitMs).toBeGreaterThanOrEqual(policy.inFlightWaitMs - 5);
  });

  it('publishes takeover once a run that took over a dead claim is stored (R27, R20)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ claims: [inFlight(), { status: 'claimed', claim }], inspections: [inFlight(0)] }));
    const run = runOf(await coordinator.acquire(request, { ...policy, inFlightWaitMs: 2000 }, http));
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'takeover', status: 201, waitMs: expect.any(Number) })]);
  });

  it('publishes unavailable with status 503 when the store fails the claim (R27, R18)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ claims: [new Error('connection refused')] }));
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await expect(coordinator.acquire(request, policy, http)).rejects.toBeInstanceOf(IdempotencyUnavailableError);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'unavailable', status: 503 })]);
    expect(listener.storeCalls).toEqual([expect.objectContaining({ operation: 'claim', ok: false })]);
  });

  it('publishes unavailable with the wait so far when the store fails while a retry polls (R27, R18, R11)', async () => {
    const coordinator = new ClaimCoordinator({ ...scriptedStore({ claims: [inFlight()] }), inspect: () => Promise.reject(new Error('timeout')) });
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await expect(coordinator.acquire(request, { ...policy, inFlightWaitMs: 2000 }, http)).rejects.toBeInstanceOf(IdempotencyUnavailableError);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'unavailable', status: 503, waitMs: expect.any(Number) })]);
    expect(listener.storeCalls.map(({ operation, ok }) => [operation, ok])).toEqual([
      ['claim', true],
      ['inspect', false],
    ]);
  });

  it('publishes released with the status sent when the status releases the key (R27, R14)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({}));
    const run = runOf(await coordinator.acquire(request, policy, http));
    await coordinator.settle(request, run.claim, undefined, request.ttlMs, run.observation, 500);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'released', status: 500 })]);
  });

  it('publishes not_replayable for a response released because it could not be stored (R27, R16b)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({}));
    const run = runOf(await coordinator.acquire(request, policy, http));
    await coordinator.release(request, run.claim, run.observation, 'not_replayable', 200);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'not_replayable', status: 200 })]);
  });

  it('publishes lost_claim, and logs it, when the completion is fenced (R27, R20)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ complete: false }));
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const run = runOf(await coordinator.acquire(request, policy, http));
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'lost_claim', status: 201 })]);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/^lost claim account="acme" key=checkout:secret-attempt-7f3a route=POST \/orders/));
  });

  it('publishes lost_claim, and logs it, when the release is fenced, instead of claiming to have released the key (R27, R20)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ release: false }));
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const run = runOf(await coordinator.acquire(request, policy, http));
    await coordinator.settle(request, run.claim, undefined, request.ttlMs, run.observation, 500);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'lost_claim', status: 500 })]);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/^lost claim /));
  });

  it('publishes one lost_claim for a run whose heartbeat and completion both found the claim taken over (R27, R20)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ complete: false }));
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const run = runOf(await coordinator.acquire(request, policy, http));
    coordinator.claimLost(request, run.observation);
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201);
    expect(listener.outcomes.map((message) => message.outcome)).toEqual(['lost_claim']);
  });

  it('publishes unavailable, with the status that was sent, when the store fails to store a run (R27, R18)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ complete: new Error('timeout') }));
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const run = runOf(await coordinator.acquire(request, policy, http));
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'unavailable', status: 201 })]);
    expect(listener.storeCalls.at(-1)).toEqual(expect.objectContaining({ operation: 'complete', ok: false }));
  });

  it('leaves status out for runOnce, whose stored status is the library\'s own (R27, R23)', async () => {
    const coordinator = new ClaimCoordinator(scriptedStore({ claims: [completed()] }));
    await coordinator.acquire(request, policy, { transport: 'runOnce', route: 'runOnce webhook:stripe' });
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'replayed', transport: 'runOnce', route: 'runOnce webhook:stripe' })]);
    expect(listener.outcomes[0]).not.toHaveProperty('status');
  });
});

describe('ClaimCoordinator spans, when @opentelemetry/api is installed (R27)', () => {
  let provider: RecordingTracerProvider;
  let coordinator: ClaimCoordinator;

  beforeEach(async () => {
    provider = new RecordingTracerProvider();
    trace.setGlobalTracerProvider(provider);
    coordinator = new ClaimCoordinator(scriptedStore({ claims: [inFlight(), { status: 'claimed', claim }, completed()], inspections: [inFlight(0)] }));
    await coordinator.onModuleInit();
  });

  afterEach(() => {
    trace.disable();
    jest.restoreAllMocks();
  });

  it('traces the claim, the wait inside it and the completion, each with the outcome and the request\'s attributes, never the key (R27)', async () => {
    const run = runOf(await coordinator.acquire(request, { ...policy, inFlightWaitMs: 2000 }, http));
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201);

    const [claimSpan] = provider.named('idempotency.claim');
    const [waitSpan] = provider.named('idempotency.wait');
    const [completeSpan] = provider.named('idempotency.complete');
    expect(provider.spans.map((span) => span.name)).toEqual(['idempotency.claim', 'idempotency.wait', 'idempotency.complete']);
    expect(provider.spans.every((span) => span.ended)).toBe(true);
    expect(waitSpan.parent).toBe(claimSpan);
    expect(claimSpan.attributes).toEqual({
      'idempotency.route': 'POST /orders',
      'idempotency.transport': 'http',
      'idempotency.account': 'acme',
      'idempotency.key_hash': expect.stringMatching(/^[0-9a-f]{16}$/),
      'idempotency.outcome': 'takeover',
    });
    expect(waitSpan.attributes['idempotency.outcome']).toBe('takeover');
    expect(completeSpan.attributes['idempotency.outcome']).toBe('takeover');
    expect(JSON.stringify(provider.spans.map((span) => span.attributes))).not.toContain(KEY);
  });

  it('ends the claim span with the outcome of a replay, with no completion span (R27, R9)', async () => {
    await coordinator.acquire(request, { ...policy, inFlightWaitMs: 2000 }, http).then((acquired) => {
      const run = runOf(acquired);
      return coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201);
    });
    provider.spans.length = 0;
    expect((await coordinator.acquire(request, policy, http)).kind).toBe('replay');
    expect(provider.spans.map((span) => [span.name, span.attributes['idempotency.outcome'], span.ended])).toEqual([
      ['idempotency.claim', 'replayed', true],
    ]);
  });

  it('marks the span of a claim the store failed as an error (R27, R18)', async () => {
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const failing = new ClaimCoordinator(scriptedStore({ claims: [new Error('connection refused')] }));
    await expect(failing.acquire(request, policy, http)).rejects.toBeInstanceOf(IdempotencyUnavailableError);
    const [claimSpan] = provider.named('idempotency.claim');
    expect(claimSpan.attributes['idempotency.outcome']).toBe('unavailable');
    expect(claimSpan.status?.code).toBe(2);
  });
});

/** A store whose atomic units answer their claims from a script, and record how each ended. */
function scriptedAtomicStore(
  claims: Array<AtomicClaimOutcome | Error>,
  options: { commit?: Error; inspections?: Array<FoundRecord | undefined> } = {},
): { store: IdempotencyStore; ended: string[] } {
  const ended: string[] = [];
  const store: IdempotencyStore = {
    ...scriptedStore({ inspections: options.inspections }),
    beginAtomic: (): AtomicUnit => ({
      manager: {} as AtomicUnit['manager'],
      claim: async () => {
        const next = claims.shift() ?? { status: 'claimed', claim };
        if (next instanceof Error) throw next;
        return next;
      },
      renew: async () => true,
      commitWith: async () => {
        if (options.commit) throw options.commit;
        ended.push('committed');
        return true;
      },
      commitReleasing: async () => void ended.push('committed, released'),
      rollback: async () => void ended.push('rolled back'),
    }),
  };
  return { store, ended };
}

describe('ClaimCoordinator.acquireAtomically: the claim inside the transaction (R22a)', () => {
  let listener: ReturnType<typeof listen>;
  const thisRequestHoldsIt: AtomicClaimOutcome = { status: 'locked', sameRequest: true };

  beforeEach(() => {
    listener = listen();
  });

  afterEach(() => {
    listener.stop();
  });

  it('runs a fresh claim in its unit and publishes fresh once its response commits with it (R27, R8)', async () => {
    const { store, ended } = scriptedAtomicStore([]);
    const coordinator = new ClaimCoordinator(store);
    const acquired = await coordinator.acquireAtomically(request, policy, http);
    if (acquired.kind !== 'run') throw new Error('expected a run');
    expect(await coordinator.commitAtomically(request, acquired.claim, acquired.unit, response, request.ttlMs, acquired.observation)).toBe('committed');
    acquired.observation.settled(201);
    expect(ended).toEqual(['committed']);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'fresh', status: 201 })]);
  });

  it('refuses another request holding the key uncommitted at once, without polling (R10)', async () => {
    const { store } = scriptedAtomicStore([{ status: 'locked', sameRequest: false }]);
    const coordinator = new ClaimCoordinator(store);
    await expect(coordinator.acquireAtomically(request, { ...policy, inFlightWaitMs: 5000 }, http)).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'reuse', status: 422 })]);
    expect(listener.outcomes[0]).not.toHaveProperty('waitMs');
  });

  it('waits while this request holds the key, then replays what it committed, as waited (R11)', async () => {
    const { store } = scriptedAtomicStore([thisRequestHoldsIt, thisRequestHoldsIt, completed()]);
    const coordinator = new ClaimCoordinator(store);
    expect((await coordinator.acquireAtomically(request, { ...policy, inFlightWaitMs: 5000 }, http)).kind).toBe('replay');
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'waited', status: 201, waitMs: expect.any(Number) })]);
    expect(listener.storeCalls.map((call) => call.operation)).toEqual(['claim', 'claim', 'claim']);
  });

  it('runs the request itself when the first attempt rolled back or died while it waited, as takeover (R11, R22a)', async () => {
    const { store } = scriptedAtomicStore([thisRequestHoldsIt]);
    const coordinator = new ClaimCoordinator(store);
    const acquired = await coordinator.acquireAtomically(request, { ...policy, inFlightWaitMs: 5000 }, http);
    expect(acquired.kind).toBe('run');
    if (acquired.kind === 'run') acquired.observation.settled(201);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'takeover', waitMs: expect.any(Number) })]);
  });

  it('answers 409 once the wait runs out with the first attempt still uncommitted (R11)', async () => {
    const { store } = scriptedAtomicStore(Array.from({ length: 50 }, () => thisRequestHoldsIt));
    const coordinator = new ClaimCoordinator(store);
    await expect(coordinator.acquireAtomically(request, policy, http)).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'conflict', status: 409 })]);
  });

  it('fails closed with 503 when a claim attempt fails (R18)', async () => {
    const { store } = scriptedAtomicStore([new Error('connection refused')]);
    const coordinator = new ClaimCoordinator(store);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    await expect(coordinator.acquireAtomically(request, policy, http)).rejects.toBeInstanceOf(IdempotencyUnavailableError);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'unavailable', status: 503 })]);
    jest.restoreAllMocks();
  });

  it('ends a run whose status releases the key by rolling its unit back: the claim goes with the writes (R14)', async () => {
    const { store, ended } = scriptedAtomicStore([]);
    const coordinator = new ClaimCoordinator(store);
    const acquired = await coordinator.acquireAtomically(request, policy, http);
    if (acquired.kind !== 'run') throw new Error('expected a run');
    await coordinator.rollBackAtomically(request, acquired.unit, acquired.observation, 'released', 500);
    expect(ended).toEqual(['rolled back']);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'released', status: 500 })]);
  });
});

describe('ClaimCoordinator on clusters: lost races and unreplicated writes (issue 22)', () => {
  let listener: ReturnType<typeof listen>;

  beforeEach(() => {
    listener = listen();
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => {
    listener.stop();
    jest.restoreAllMocks();
  });

  it('answers a completion too few replicas acknowledged as unconfirmed, without writing it again, and publishes unavailable 503 (R18)', async () => {
    let completions = 0;
    const store: IdempotencyStore = {
      ...scriptedStore({}),
      complete: async () => {
        completions++;
        throw new StoreReplicationError('complete', 0, 1);
      },
    };
    const coordinator = new ClaimCoordinator(store);
    const run = runOf(await coordinator.acquire(request, policy, http));
    const lease = { endsAt: performance.now() + 60_000, leaseMs: 60_000 };
    expect(await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201, lease)).toBe('unconfirmed');
    expect(completions).toBe(1);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'unavailable', status: 503 })]);
  });

  it('answers an atomic run that lost its key at commit with the winner\'s record once it is stored, as lost_claim (R22a, R11)', async () => {
    const { store } = scriptedAtomicStore([], { commit: new TransactionLostRaceError(new Error('Deadlock found')), inspections: [inFlight(), completed()] });
    const coordinator = new ClaimCoordinator(store);
    const acquired = await coordinator.acquireAtomically(request, policy, http);
    if (acquired.kind !== 'run') throw new Error('expected a run');
    const committed = await coordinator.commitAtomically(request, acquired.claim, acquired.unit, response, request.ttlMs, acquired.observation);
    expect(committed).toBe('lost_race');
    const winner = await coordinator.answerUncommitted(request, acquired.observation, committed === 'committed' ? 'failed' : committed, { ...policy, inFlightWaitMs: 5000 });
    expect(winner).toEqual(completed());
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'lost_claim', status: 201 })]);
  });

  it('refuses with 422 an atomic run whose handler the database aborted for another request\'s commit of its key (R10, R22a)', async () => {
    const { store, ended } = scriptedAtomicStore([], { inspections: [completed('fp-other')] });
    const coordinator = new ClaimCoordinator(store);
    const acquired = await coordinator.acquireAtomically(request, policy, http);
    if (acquired.kind !== 'run') throw new Error('expected a run');
    await expect(coordinator.answerInterrupted(request, acquired.unit, acquired.observation, 'lost_race', policy)).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
    expect(ended).toEqual(['rolled back']);
    expect(listener.outcomes).toEqual([expect.objectContaining({ outcome: 'lost_claim', status: 422 })]);
  });

  it('answers 409 when the race\'s winner stored nothing, and 503 when the run\'s connection is gone (R11, R18)', async () => {
    const lost = scriptedAtomicStore([], { inspections: [undefined] });
    const coordinator = new ClaimCoordinator(lost.store);
    const first = await coordinator.acquireAtomically(request, policy, http);
    if (first.kind !== 'run') throw new Error('expected a run');
    await expect(coordinator.answerInterrupted(request, first.unit, first.observation, 'lost_race', policy)).rejects.toBeInstanceOf(IdempotencyConflictError);

    const gone = scriptedAtomicStore([], { inspections: [undefined] });
    const other = new ClaimCoordinator(gone.store);
    const second = await other.acquireAtomically(request, policy, http);
    if (second.kind !== 'run') throw new Error('expected a run');
    await expect(other.answerInterrupted(request, second.unit, second.observation, 'unavailable', policy)).rejects.toBeInstanceOf(IdempotencyUnavailableError);
    expect(gone.ended).toEqual(['rolled back']);
    expect(listener.outcomes.map((message) => [message.outcome, message.status])).toEqual([
      ['lost_claim', 409],
      ['unavailable', 503],
    ]);
  });
});

describe('ClaimCoordinator.settle: a completion the store missed, while the claim is still ours (R20a)', () => {
  /** A store whose completions fail `failures` times (or always), recording when each write and renewal came. */
  function flakyStore(options: { failures: number; renew: boolean }) {
    const started = performance.now();
    const calls: Array<{ operation: 'complete' | 'renew'; atMs: number }> = [];
    const at = (): number => performance.now() - started;
    let failures = options.failures;
    const store: IdempotencyStore = {
      ...scriptedStore({}),
      complete: async () => {
        calls.push({ operation: 'complete', atMs: at() });
        if (failures-- > 0) throw new Error('connection lost');
        return true;
      },
      renew: async () => {
        calls.push({ operation: 'renew', atMs: at() });
        if (!options.renew) throw new Error('connection lost');
        return true;
      },
    };
    return { store, calls };
  }

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('retries with doubling gaps, renewing the claim before each retry, until the completion is stored (R20a)', async () => {
    const { store, calls } = flakyStore({ failures: 3, renew: true });
    const coordinator = new ClaimCoordinator(store);
    const run = runOf(await coordinator.acquire(request, policy, http));
    const lease = { endsAt: performance.now() + 2000, leaseMs: 2000 };
    const settled = await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201, lease);

    expect(settled).toBe('settled');
    expect(calls.map((call) => call.operation)).toEqual(['complete', 'renew', 'complete', 'renew', 'complete', 'renew', 'complete']);
    const completions = calls.filter((call) => call.operation === 'complete').map((call) => call.atMs);
    const gaps = completions.slice(1).map((atMs, index) => atMs - completions[index]);
    // At least 50, 100 and 200 ms (a timer may fire a millisecond early, a loaded machine later):
    // a fixed gap fails the second bound.
    expect(gaps[0]).toBeGreaterThanOrEqual(48);
    expect(gaps[1]).toBeGreaterThanOrEqual(98);
    expect(gaps[2]).toBeGreaterThanOrEqual(198);
  });

  it('gives up before the lease ends when the store stays down, so no retry completes a claim another run may hold (R20a, R20)', async () => {
    const { store, calls } = flakyStore({ failures: Number.POSITIVE_INFINITY, renew: false });
    const coordinator = new ClaimCoordinator(store);
    const run = runOf(await coordinator.acquire(request, policy, http));
    const leaseStart = performance.now();
    const lease = { endsAt: leaseStart + 600, leaseMs: 600 };
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201, lease);

    const completions = calls.filter((call) => call.operation === 'complete');
    expect(completions.length).toBeGreaterThanOrEqual(3);
    // The last write leaves a tenth of the lease to spare: none is sent once the lease could have ended.
    expect(performance.now() - leaseStart).toBeLessThan(600);
    expect(Math.max(...completions.map((call) => call.atMs))).toBeLessThan(600 - 60 + 20);
  });

  it('keeps retrying past the lease it started with while each renewal extends the claim (R20a)', async () => {
    // 50 + 100 + 200 ms of gaps: the last retry comes after the 300 ms lease it started with would
    // have ended, and each renewal (sent after its gap) moved the end to a lease from then.
    const { store, calls } = flakyStore({ failures: 3, renew: true });
    const coordinator = new ClaimCoordinator(store);
    const run = runOf(await coordinator.acquire(request, policy, http));
    const lease = { endsAt: performance.now() + 300, leaseMs: 300 };
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201, lease);
    const completions = calls.filter((call) => call.operation === 'complete');
    expect(completions).toHaveLength(4);
    expect(completions.at(-1)!.atMs).toBeGreaterThan(300);
  });

  it('does not retry without a lease, as a run with no heartbeat has nothing to keep the claim (R20a)', async () => {
    const { store, calls } = flakyStore({ failures: 1, renew: true });
    const coordinator = new ClaimCoordinator(store);
    const run = runOf(await coordinator.acquire(request, policy, http));
    await coordinator.settle(request, run.claim, response, request.ttlMs, run.observation, 201);
    expect(calls.map((call) => call.operation)).toEqual(['complete']);
  });
});
