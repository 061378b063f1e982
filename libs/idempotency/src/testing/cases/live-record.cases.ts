import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { concurrently } from '../concurrent-callers.js';
import type { ContractCase } from '../contract-case.js';
import { assertEndDidNotMove, assertSameResponse, assertStoredResponse, claimedOf, completedOf, inFlightOf } from '../outcome-assertions.js';
import { jsonResponse, newClaimRequest, newFingerprint } from '../sample-requests.js';

export const completedRecordUnchangedByClaimCase: ContractCase = {
  name:
    'a claim of a completed key returns the stored record and changes nothing, whatever its fingerprint: ' +
    'fingerprint, response and expiry stay as they were (R29, R9, R10, R16a)',
  async run(context) {
    const { store, shortLifetimeMs, clockSlackMs } = context;
    const request = newClaimRequest(context);
    const stored = jsonResponse('first', 201);
    const claim = claimedOf(await store.claim(request), 'the first claim');
    assert.equal(await store.complete(claim, stored, request.ttlMs), true, 'the owner could not complete');
    const before = completedOf(await store.inspect(request.account, request.key), 'inspect after completing');

    // Long enough for a claim that refreshed the expiry to show it.
    await sleep(shortLifetimeMs);
    const replays = await concurrently(3, () => store.claim({ ...request, ttlMs: 2 * request.ttlMs }));
    const mismatch = await store.claim({ ...request, fingerprint: newFingerprint(), ttlMs: 2 * request.ttlMs });
    for (const [index, outcome] of [...replays, mismatch].entries()) {
      const situation = index < replays.length ? `replay ${index}` : 'a claim with another fingerprint';
      const record = completedOf(outcome, situation);
      assert.equal(record.fingerprint, request.fingerprint, `${situation}: the record's fingerprint changed`);
      assertSameResponse(record.response, stored, situation);
    }

    const after = completedOf(await store.inspect(request.account, request.key), 'inspect after the claims');
    assert.equal(after.fingerprint, request.fingerprint, 'the fingerprint changed');
    assertSameResponse(after.response, stored, 'inspect after the claims');
    assertEndDidNotMove(before.expiresInMs, after.expiresInMs, shortLifetimeMs, clockSlackMs, "the completed record's expiresInMs");
  },
};

export const inFlightRecordUnchangedByClaimCase: ContractCase = {
  name:
    'a claim of an in-flight key changes nothing, whatever its fingerprint: the lease does not move ' +
    'and the owner keeps its claim (R29, R11, R16a)',
  async run(context) {
    const { store, shortLifetimeMs, clockSlackMs } = context;
    const request = newClaimRequest(context);
    const claim = claimedOf(await store.claim(request), 'the first claim');
    const before = inFlightOf(await store.inspect(request.account, request.key), 'inspect after claiming');

    await sleep(shortLifetimeMs);
    const longer = { ...request, leaseMs: 2 * request.leaseMs };
    const waiting = await concurrently(3, () => store.claim(longer));
    const mismatch = await store.claim({ ...longer, fingerprint: newFingerprint() });
    for (const [index, outcome] of [...waiting, mismatch].entries()) {
      const situation = index < waiting.length ? `retry ${index} while the first runs` : 'a claim with another fingerprint';
      assert.equal(inFlightOf(outcome, situation).fingerprint, request.fingerprint, `${situation}: the fingerprint changed`);
    }

    const after = inFlightOf(await store.inspect(request.account, request.key), 'inspect after the claims');
    assert.equal(after.fingerprint, request.fingerprint, 'the fingerprint changed');
    assertEndDidNotMove(before.leaseRemainingMs, after.leaseRemainingMs, shortLifetimeMs, clockSlackMs, 'the leaseRemainingMs');
    const response = jsonResponse('owner');
    assert.equal(await store.complete(claim, response, request.ttlMs), true, 'the owner lost its claim to a claim of a live key');
    await assertStoredResponse(store, request, response, "the owner's response");
  },
};

export const completedRecordIsFinalCase: ContractCase = {
  name: "a completed record is final: its owner's second complete, renew and release return false and change nothing (R29, R9)",
  async run(context) {
    const { store } = context;
    const request = newClaimRequest(context);
    const claim = claimedOf(await store.claim(request), 'the first claim');
    const stored = jsonResponse('first');
    assert.equal(await store.complete(claim, stored, request.ttlMs), true, 'the owner could not complete');

    assert.equal(await store.complete(claim, jsonResponse('second'), request.ttlMs), false, 'a second complete returned true');
    assert.equal(await store.renew(claim, request.leaseMs), false, 'renewing a completed record returned true');
    assert.equal(await store.release(claim), false, 'releasing a completed record returned true');

    const after = completedOf(await store.inspect(request.account, request.key), 'inspect after the late writes');
    assertSameResponse(after.response, stored, 'inspect after the late writes');
    assertSameResponse(completedOf(await store.claim(request), 'a replay').response, stored, 'a replay');
  },
};
