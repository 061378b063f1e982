import { describe, expect, it } from '@jest/globals';
import { problemJsonErrorFormatter, type IdempotencyErrorFormatter } from '../errors/error-formatter.js';
import { resolveModuleOptions, type IdempotencyModuleOptions, type IdempotencyRouteOptions } from '../idempotency.options.js';
import { refusalResponses } from './refusal-responses.js';

function responsesFor(route: IdempotencyRouteOptions, module: IdempotencyModuleOptions = {}) {
  const options = resolveModuleOptions(module);
  return refusalResponses(options.headerName, options.resolveRoute(route), options.errorFormatter);
}

function codesByStatus(responses: ReturnType<typeof responsesFor>): Record<number, string[]> {
  return Object.fromEntries(
    responses.map(({ status, content }) => [status, Object.values(content).flatMap((media) => Object.keys(media.examples ?? {}))]),
  );
}

describe('refusalResponses', () => {
  it('lists each status the library can answer on a required route, with its codes (R25, R2-R4, R10, R11, R18)', () => {
    expect(codesByStatus(responsesFor({ required: true }))).toEqual({
      400: ['idempotency_key_missing', 'invalid_idempotency_key'],
      409: ['idempotency_conflict'],
      422: ['idempotency_key_reuse'],
      503: ['idempotency_unavailable'],
    });
  });

  it('has no idempotency_key_missing where the key is optional (R25, R2)', () => {
    expect(codesByStatus(responsesFor({}))[400]).toEqual(['invalid_idempotency_key']);
  });

  it('answers a reused key with 409 on a mismatchStatus 409 route, sharing the 409 with the conflict (R25, R10)', () => {
    const responses = responsesFor({ mismatchStatus: 409 });
    expect(codesByStatus(responses)).toEqual({
      400: ['invalid_idempotency_key'],
      409: ['idempotency_conflict', 'idempotency_key_reuse'],
      503: ['idempotency_unavailable'],
    });
    const conflict = responses.find(({ status }) => status === 409)!;
    expect(conflict.headers?.['Retry-After']).toMatchObject({ required: false, description: expect.stringMatching(/^With `idempotency_conflict`: /) });
  });

  it('documents Retry-After on the 409 conflict and the 503, and no header elsewhere (R25, R11, R18)', () => {
    const responses = responsesFor({ required: true });
    const headers = Object.fromEntries(responses.map(({ status, headers }) => [status, Object.keys(headers ?? {})]));
    expect(headers).toEqual({ 400: [], 409: ['Retry-After'], 422: [], 503: ['Retry-After'] });
    expect(responses.find(({ status }) => status === 409)!.headers!['Retry-After']).toMatchObject({ required: true, schema: { type: 'integer', minimum: 1 } });
  });

  it('shows the default body by its component, with examples the formatter itself wrote (R25, R17)', () => {
    const [missing] = responsesFor({ required: true }, { headerName: 'X-Request-Key' });
    expect(Object.keys(missing.content)).toEqual(['application/json']);
    expect(missing.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/IdempotencyErrorBody' });
    expect(missing.content['application/json'].examples?.idempotency_key_missing).toMatchObject({ value: {
      error: { code: 'idempotency_key_missing', message: 'This endpoint requires an X-Request-Key header.' },
    } });
  });

  it('shows application/problem+json with its component when problemJsonErrorFormatter is chosen (R25, R17)', () => {
    for (const response of responsesFor({ required: true }, { errorFormatter: problemJsonErrorFormatter })) {
      expect(Object.keys(response.content)).toEqual(['application/problem+json']);
      expect(response.content['application/problem+json'].schema).toEqual({ $ref: '#/components/schemas/IdempotencyProblemDetails' });
    }
  });

  it('shows an application\'s own formatter by its media type and what it writes (R25, R17)', () => {
    const formatter: IdempotencyErrorFormatter = ({ code, status }) => ({ contentType: 'application/vnd.acme.error+json; charset=utf-8', body: { kind: code, status } });
    const [, conflict] = responsesFor({}, { errorFormatter: formatter });
    expect(conflict.content).toEqual({
      'application/vnd.acme.error+json': {
        schema: { type: 'object' },
        examples: { idempotency_conflict: { summary: 'idempotency_conflict', value: { kind: 'idempotency_conflict', status: 409 } } },
      },
    });
  });
});
