import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { httpExchangeOf } from '../http/http-exchange.js';
import { Idempotent } from '../idempotent.decorator.js';
import { IdempotentRoutes } from '../idempotent-routes.js';
import { resolveModuleOptions, type IdempotencyModuleOptions } from '../idempotency.options.js';
import { rememberRequestKey } from '../key/request-key.js';
import type { FoundRecord, IdempotencyStore, StoredResponse } from '../store/idempotency-store.js';
import { ReplayForecast } from './replay-forecast.js';

class PaymentsController {
  @Idempotent()
  create(): void {}

  plain(): void {}
}

const KEY = '8e03978e-40d5-43e8-bc93-6894a57f9324';
const RESPONSE: StoredResponse = { status: 201, headers: {}, body: Buffer.from('{}') };

/** An Express-style request (Node's own, with `body` and `user`) to `handler`, as the guards see it. */
function contextFor(headers: Record<string, string | string[]>, handler: () => void = PaymentsController.prototype.create) {
  const incoming = new IncomingMessage(new Socket());
  incoming.method = 'POST';
  incoming.url = '/v1/payments';
  incoming.rawHeaders = Object.entries(headers).flatMap(([name, values]) => [values].flat().flatMap((value) => [name, value]));
  incoming.headers = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  Object.assign(incoming, { body: { amount: 100, currency: 'EUR' }, user: { accountId: 'acme' } });
  return new ExecutionContextHost([incoming, new ServerResponse(incoming)], PaymentsController, handler);
}

function setUp(found: FoundRecord | undefined | Error, moduleOptions: IdempotencyModuleOptions = {}) {
  const options = resolveModuleOptions(moduleOptions);
  const routes = new IdempotentRoutes(new Reflector(), options);
  const asked: Array<[string, string]> = [];
  const store = {
    inspect: async (account: string, key: string) => {
      asked.push([account, key]);
      if (found instanceof Error) throw found;
      return found;
    },
  } as unknown as IdempotencyStore;
  const forecast = new ReplayForecast(routes, options, store);
  /** The fingerprint the interceptor would compute for this request. */
  const fingerprintOf = (context: ExecutionContextHost): string =>
    routes.optionsFor(context, 'POST')!.fingerprint(httpExchangeOf(context).fingerprintInput);
  return { forecast, asked, fingerprintOf };
}

function completed(fingerprint: string): FoundRecord {
  return { status: 'completed', fingerprint, response: RESPONSE, expiresInMs: 60_000 };
}

describe('ReplayForecast: whether a request will be answered by an earlier run of itself, asked before the throttler counts it (R24)', () => {
  it('foresees a replay when the key holds a completed record with this request\'s fingerprint, asking for the normalised key in the account\'s scope (R9, R3, R5)', async () => {
    const context = contextFor({ 'Idempotency-Key': `{${KEY.toUpperCase()}}` });
    const probe = setUp(undefined);
    const { forecast, asked } = setUp(completed(probe.fingerprintOf(context)));
    expect(await forecast.isReplay(context)).toBe(true);
    expect(asked).toEqual([['acme', KEY]]);
  });

  it('foresees a wait for the first run when the record is in flight under a live lease (R11)', async () => {
    const context = contextFor({ 'Idempotency-Key': KEY });
    const probe = setUp(undefined);
    const { forecast } = setUp({ status: 'in_flight', fingerprint: probe.fingerprintOf(context), leaseRemainingMs: 5000 });
    expect(await forecast.isReplay(context)).toBe(true);
  });

  it('does not when the in-flight lease has ended: the retry takes the key over and runs (R20)', async () => {
    const context = contextFor({ 'Idempotency-Key': KEY });
    const probe = setUp(undefined);
    const { forecast } = setUp({ status: 'in_flight', fingerprint: probe.fingerprintOf(context), leaseRemainingMs: 0 });
    expect(await forecast.isReplay(context)).toBe(false);
  });

  it('does not for a key held by another request, which will be refused 422 (R10)', async () => {
    const { forecast } = setUp(completed('a-different-fingerprint'));
    expect(await forecast.isReplay(contextFor({ 'Idempotency-Key': KEY }))).toBe(false);
  });

  it('does not for a fresh key (R8)', async () => {
    const { forecast, asked } = setUp(undefined);
    expect(await forecast.isReplay(contextFor({ 'Idempotency-Key': KEY }))).toBe(false);
    expect(asked).toHaveLength(1);
  });

  it('does not, and does not ask the store, without a valid key: none, an invalid one, two of them (R2, R3, R4)', async () => {
    const { forecast, asked } = setUp(completed('any'));
    const refused: Array<Record<string, string | string[]>> = [{}, { 'Idempotency-Key': 'not-a-uuid' }, { 'Idempotency-Key': [KEY, KEY] }];
    for (const headers of refused) {
      expect(await forecast.isReplay(contextFor(headers))).toBe(false);
    }
    expect(asked).toEqual([]);
  });

  it('does not, and does not ask the store, on a route without idempotency (R1)', async () => {
    const { forecast, asked } = setUp(completed('any'));
    expect(await forecast.isReplay(contextFor({ 'Idempotency-Key': KEY }, PaymentsController.prototype.plain))).toBe(false);
    expect(asked).toEqual([]);
  });

  it('uses the key IdempotencyKeyGuard already read when it ran first', async () => {
    const context = contextFor({});
    rememberRequestKey(httpExchangeOf(context).incoming, KEY);
    const { forecast, asked } = setUp(undefined);
    await forecast.isReplay(context);
    expect(asked).toEqual([['acme', KEY]]);
  });

  it('fails towards counting when the store cannot answer or the account resolver refuses the request (R18)', async () => {
    const storeDown = setUp(new Error('connection refused'));
    expect(await storeDown.forecast.isReplay(contextFor({ 'Idempotency-Key': KEY }))).toBe(false);
    const refused = setUp(completed('any'), {
      account: () => {
        throw new Error('no account');
      },
    });
    expect(await refused.forecast.isReplay(contextFor({ 'Idempotency-Key': KEY }))).toBe(false);
    expect(refused.asked).toEqual([]);
  });

  it('does not for transports other than HTTP', async () => {
    const context = contextFor({ 'Idempotency-Key': KEY });
    context.setType('rpc');
    const { forecast, asked } = setUp(completed('any'));
    expect(await forecast.isReplay(context)).toBe(false);
    expect(asked).toEqual([]);
  });
});
