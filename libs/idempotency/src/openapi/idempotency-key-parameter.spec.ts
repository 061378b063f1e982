import { describe, expect, it } from '@jest/globals';
import { resolveModuleOptions, type IdempotencyModuleOptions, type IdempotencyRouteOptions } from '../idempotency.options.js';
import { idempotencyKeyParameter } from './idempotency-key-parameter.js';

function parameterFor(route: IdempotencyRouteOptions, module: IdempotencyModuleOptions = {}) {
  const options = resolveModuleOptions(module);
  return idempotencyKeyParameter(options.headerName, options.resolveRoute(route));
}

describe('idempotencyKeyParameter', () => {
  it('names the header as configured and marks it required per route (R25, R1, R2)', () => {
    expect(parameterFor({ required: true })).toMatchObject({ name: 'Idempotency-Key', required: true });
    expect(parameterFor({})).toMatchObject({ name: 'Idempotency-Key', required: false });
    expect(parameterFor({}, { headerName: 'X-Request-Key', required: true })).toMatchObject({ name: 'X-Request-Key', required: true });
    expect(parameterFor({ required: false }, { required: true }).required).toBe(false);
  });

  it('says what a replay, another request and a concurrent retry get, with the route\'s own timings (R25, R9-R12)', () => {
    const description = parameterFor({ required: true, inFlightWaitMs: 1500, ttl: 60 * 60 * 1000 }).description;
    expect(description).toContain('its stored response is sent again, with `Idempotency-Replayed: true`');
    expect(description).toContain('a different request (body, query or path): 422 `idempotency_key_reuse`');
    expect(description).toContain('waits up to 1.5 s for it, then gets its response as a replay, or 409 `idempotency_conflict` with `Retry-After`');
    expect(description).toContain('for 1 h after its response');
    expect(description).toContain('Required: a request without it is refused with 400 `idempotency_key_missing`');
  });

  it('says 409 for a reused key on a mismatchStatus 409 route, and no wait when inFlightWaitMs is 0 (R25, R10, R11)', () => {
    const description = parameterFor({ mismatchStatus: 409, inFlightWaitMs: 0 }).description;
    expect(description).toContain('409 `idempotency_key_reuse`');
    expect(description).not.toContain('422');
    expect(description).toContain('409 `idempotency_conflict` with `Retry-After` at once');
    expect(description).toContain('Optional: a request without it runs normally');
  });

  it('names the statuses that are not kept only under the default policy (R25, R14)', () => {
    expect(parameterFor({}).description).toContain('(400, 401, 403, 408, 409, 423, 425, 429 and 5xx) are not kept');
    expect(parameterFor({ storeResponse: (status) => status < 600 }).description).not.toContain('are not kept');
  });

  it('documents the key\'s format in its schema and its words (R25, R3)', () => {
    expect(parameterFor({}).schema).toMatchObject({ format: 'uuid' });
    expect(parameterFor({ keyFormat: 'token' }).description).toContain('Format: a token of 1 to 255 printable ASCII characters');
  });
});
