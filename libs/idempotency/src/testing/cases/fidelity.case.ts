import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { StoredResponse } from '../../store/idempotency-store.js';
import type { ContractCase } from '../contract-case.js';
import { assertSameResponse, assertStoredResponse, claimedOf, completedOf } from '../outcome-assertions.js';
import { newClaimRequest } from '../sample-requests.js';

const MEBIBYTE = 1024 * 1024;

function everyByteValue(): Buffer {
  const ascending = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
  // Both orders: a store that decodes text trips on invalid sequences in either direction.
  return Buffer.concat([ascending, Buffer.from(ascending).reverse()]);
}

function sampleResponses(): ReadonlyArray<readonly [string, StoredResponse]> {
  return [
    ['a 1 MiB random body', { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(MEBIBYTE) }],
    [
      'all 256 byte values with multi-value headers',
      {
        status: 402,
        headers: {
          'content-type': 'application/octet-stream',
          link: ['</a>; rel="first"', '</b>; rel="next", </c>; rel="last"'],
          'x-single-item': ['only'],
          'content-language': '',
          'content-disposition': "attachment; filename*=UTF-8''%E2%82%AC%20rates.bin",
        },
        body: everyByteValue(),
      },
    ],
    ['an empty body without headers', { status: 204, headers: {}, body: Buffer.alloc(0) }],
    ['JSON with non-ASCII text', { status: 201, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"name":"Zoë 🧾 \\u0000 ü"}') }],
  ];
}

export const responseFidelityCase: ContractCase = {
  name: 'a 1 MiB body, all 256 byte values, an empty body and multi-value headers are replayed exactly, by claim and by inspect (R29, R9)',
  async run(context) {
    const { store } = context;
    for (const [label, response] of sampleResponses()) {
      const request = newClaimRequest(context);
      const claim = claimedOf(await store.claim(request), `the claim for ${label}`);
      assert.equal(await store.complete(claim, response, request.ttlMs), true, `the owner could not complete ${label}`);
      assertSameResponse(completedOf(await store.claim(request), `a replay of ${label}`).response, response, `a replay of ${label}`);
      await assertStoredResponse(store, request, response, `inspect of ${label}`);
    }
  },
};
