import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import type { ClaimRequest } from '../store/idempotency-store.js';
import { IDEMPOTENCY_CHANNELS, type IdempotencyOutcomeMessage, type IdempotencyStoreCallMessage } from './idempotency-channels.js';
import { keyHashOf } from './outcome-publisher.js';
import { RequestObservation } from './request-observation.js';
import { routePatternLabel } from './route-pattern.js';

/** A request that counts how often its key is read: hashing it is the costly part of a message. */
function countingRequest(): { request: ClaimRequest; keyReads: () => number } {
  let reads = 0;
  const request = {
    account: 'acme',
    get key() {
      reads++;
      return 'b0c4f9b6-2a7e-4d0e-9a53-8f0e1f4f7a21';
    },
    fingerprint: 'fp',
    ttlMs: 1000,
    leaseMs: 1000,
    route: 'POST /orders/17 (OrdersController.create)',
  } satisfies ClaimRequest;
  return { request, keyReads: () => reads };
}

describe('RequestObservation (R27)', () => {
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  function collect<T>(name: string): T[] {
    const messages: T[] = [];
    const onMessage = (message: unknown): void => void messages.push(message as T);
    subscribe(name, onMessage);
    stops.push(() => unsubscribe(name, onMessage));
    return messages;
  }

  it('builds no message and never reads the key to hash it while nobody subscribes', async () => {
    const { request, keyReads } = countingRequest();
    const observation = new RequestObservation(request, { transport: 'http', route: 'POST /orders/:id' });
    await observation.storeCall('claim', async () => ({ status: 'claimed' }));
    observation.claimed('fresh');
    observation.settled(201);
    expect(keyReads()).toBe(0);
  });

  it('publishes one outcome per request, however many times its end is reported', () => {
    const outcomes = collect<IdempotencyOutcomeMessage>(IDEMPOTENCY_CHANNELS.outcome);
    const { request } = countingRequest();
    const observation = new RequestObservation(request, { transport: 'http', route: 'POST /orders/:id' });
    observation.claimed('fresh');
    observation.settled(500, 'released');
    observation.settled(500, 'unavailable');
    observation.answered('conflict', 409);
    expect(outcomes.map((message) => message.outcome)).toEqual(['released']);
    expect(outcomes[0].keyHash).toBe(keyHashOf('acme', request.key));
  });

  it('publishes a lease renewal on the store channel without counting it in the request\'s storeMs, which only its own path waits on', async () => {
    const outcomes = collect<IdempotencyOutcomeMessage>(IDEMPOTENCY_CHANNELS.outcome);
    const storeCalls = collect<IdempotencyStoreCallMessage>(IDEMPOTENCY_CHANNELS.store);
    const { request } = countingRequest();
    const observation = new RequestObservation(request, { transport: 'runOnce', route: 'runOnce job:invoices' });
    observation.claimed('fresh');
    observation.backgroundStoreCall('renew', 10_000, true);
    await expect(observation.storeCall('complete', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    observation.settled(undefined, 'unavailable');
    expect(storeCalls).toEqual([
      { operation: 'renew', durationMs: 10_000, ok: true, route: 'runOnce job:invoices', transport: 'runOnce' },
      { operation: 'complete', durationMs: expect.any(Number), ok: false, route: 'runOnce job:invoices', transport: 'runOnce' },
    ]);
    expect(outcomes[0].storeMs).toBeLessThan(10_000);
  });
});

describe('routePatternLabel (R27)', () => {
  const context = { getClass: () => class OrdersController {}, getHandler: () => function create() {} } as unknown as ExecutionContext;

  it('labels an Express request with the route pattern it matched, not the path it was sent to', () => {
    expect(routePatternLabel(context, { route: { path: '/orders/:id' }, originalUrl: '/orders/17' }, 'POST')).toBe('POST /orders/:id');
  });

  it('labels a Fastify request with its routeOptions.url', () => {
    expect(routePatternLabel(context, { routeOptions: { url: '/orders/:id' }, url: '/orders/17' }, 'DELETE')).toBe('DELETE /orders/:id');
  });

  it('falls back to the handler when the platform gives no pattern', () => {
    expect(routePatternLabel(context, { route: { path: /^\/orders/ } }, 'POST')).toBe('POST OrdersController.create');
  });
});
