import assert from 'node:assert/strict';
import { waitPastShortLifetime, type ContractCase } from '../contract-case.js';
import { assertStoredResponse, claimedOf, inFlightOf } from '../outcome-assertions.js';
import { jsonResponse, newClaimRequest, newFingerprint } from '../sample-requests.js';

export const takenOverOwnerFencedCase: ContractCase = {
  name:
    'an owner whose claim was taken over is fenced: its complete, renew and release return false and change nothing, ' +
    "while the new owner's succeed (R29, R20)",
  async run(context) {
    const { store, longLifetimeMs, clockSlackMs } = context;
    const request = newClaimRequest(context, { leaseMs: context.shortLifetimeMs });
    const stale = claimedOf(await store.claim(request), 'the first claim');
    await waitPastShortLifetime(context);
    const current = claimedOf(await store.claim({ ...request, leaseMs: longLifetimeMs }), 'the takeover');

    assert.equal(await store.complete(stale, jsonResponse('stale'), request.ttlMs), false, "the stale owner's complete returned true");
    inFlightOf(await store.inspect(request.account, request.key), "inspect after the stale owner's complete");
    assert.equal(await store.renew(stale, 3 * longLifetimeMs), false, "the stale owner's renew returned true");
    const lease = inFlightOf(await store.inspect(request.account, request.key), "inspect after the stale owner's renew");
    assert.ok(lease.leaseRemainingMs <= longLifetimeMs + clockSlackMs, "the stale owner's renew moved the current owner's lease");
    assert.equal(await store.release(stale), false, "the stale owner's release returned true");
    inFlightOf(await store.inspect(request.account, request.key), "inspect after the stale owner's release");
    inFlightOf(await store.claim({ ...request, fingerprint: newFingerprint() }), "a claim after the stale owner's release");

    assert.equal(await store.renew(current, longLifetimeMs), true, "the current owner's renew returned false");
    const response = jsonResponse('current');
    assert.equal(await store.complete(current, response, request.ttlMs), true, "the current owner's complete returned false");
    const lateComplete = await store.complete(stale, jsonResponse('stale again'), request.ttlMs);
    assert.equal(lateComplete, false, "the stale owner's complete after completion returned true");
    assert.equal(await store.release(stale), false, "the stale owner's release after completion returned true");
    await assertStoredResponse(store, request, response, "the current owner's response");
  },
};

export const releaseFreesKeyCase: ContractCase = {
  name: "release by the owner frees the key at once for any request, and fences that owner's later writes (R29, R14, R20)",
  async run(context) {
    const { store } = context;
    const request = newClaimRequest(context);
    const released = claimedOf(await store.claim(request), 'the first claim');
    assert.equal(await store.release(released), true, 'the owner could not release');
    assert.equal(await store.inspect(request.account, request.key), undefined, 'inspect found a record after its release');

    const next = { ...request, fingerprint: newFingerprint() };
    const current = claimedOf(await store.claim(next), 'a claim with another fingerprint after the release');
    assert.equal(await store.complete(released, jsonResponse('released'), request.ttlMs), false, "the released owner's complete returned true");
    assert.equal(await store.renew(released, request.leaseMs), false, "the released owner's renew returned true");
    assert.equal(await store.release(released), false, "the released owner's second release returned true");
    assert.equal(inFlightOf(await store.inspect(request.account, request.key), 'inspect after the late writes').fingerprint, next.fingerprint);
    assert.equal(await store.complete(current, jsonResponse('current'), request.ttlMs), true, "the new owner's complete returned false");
  },
};
