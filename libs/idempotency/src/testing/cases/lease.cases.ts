import assert from 'node:assert/strict';
import { timedCall } from '../call-window.js';
import { CONCURRENT_CALLERS, concurrently } from '../concurrent-callers.js';
import { waitPastShortLifetime, type ContractCase } from '../contract-case.js';
import { assertRemainingPlausible, assertSameResponse, assertStoredResponse, claimedOf, completedOf, inFlightOf } from '../outcome-assertions.js';
import { jsonResponse, newClaimRequest, newFingerprint } from '../sample-requests.js';

export const leaseProtectsClaimCase: ContractCase = {
  name:
    `an in-flight claim is not taken over by any of ${CONCURRENT_CALLERS} concurrent retries while its lease lasts, ` +
    'even past the ttl it was claimed with: the ttl counts from completion (R29, R20, R12)',
  async run(context) {
    const { store } = context;
    const request = newClaimRequest(context, { ttlMs: context.shortLifetimeMs });
    const claim = claimedOf(await store.claim(request), 'the first claim');
    await waitPastShortLifetime(context);

    // One retry brings another fingerprint: a request that is not even the same one must not take over either.
    const retries = await concurrently(CONCURRENT_CALLERS, (index) =>
      store.claim(index === 0 ? { ...request, fingerprint: newFingerprint() } : request),
    );
    retries.forEach((outcome, index) => {
      const record = inFlightOf(outcome, `retry ${index} while the lease lasts`);
      assert.equal(record.fingerprint, request.fingerprint, `retry ${index} read another fingerprint`);
    });
    const response = jsonResponse('owner');
    assert.equal(await store.complete(claim, response, request.ttlMs), true, 'the owner lost a claim whose lease had not ended');
    await assertStoredResponse(store, request, response, "the owner's response");
  },
};

export const takeoverAfterLeaseCase: ContractCase = {
  name: `after the lease of an in-flight claim ends, exactly one of ${CONCURRENT_CALLERS} concurrent retries takes it over (R29, R20)`,
  async run(context) {
    const { store } = context;
    const request = newClaimRequest(context, { leaseMs: context.shortLifetimeMs });
    const dead = claimedOf(await store.claim(request), 'the first claim');
    await waitPastShortLifetime(context);

    const retry = { ...request, leaseMs: context.longLifetimeMs };
    const [outcomes, race] = await timedCall(() => concurrently(CONCURRENT_CALLERS, () => store.claim(retry)));
    const takeovers = outcomes.filter((outcome) => outcome.status === 'claimed');
    assert.equal(takeovers.length, 1, `${takeovers.length} of ${outcomes.length} concurrent retries took over the dead claim`);
    const claim = claimedOf(takeovers[0], 'the takeover');
    assert.notEqual(claim.ownerToken, dead.ownerToken, 'the takeover kept the dead owner\'s token, so fencing could not tell them apart');
    for (const outcome of outcomes.filter((other) => other.status !== 'claimed')) {
      const record = inFlightOf(outcome, 'a retry that lost the takeover');
      assert.equal(record.fingerprint, request.fingerprint, 'a retry that lost the takeover read another fingerprint');
      assertRemainingPlausible(record.leaseRemainingMs, retry.leaseMs, race, race, context.clockSlackMs, "the new owner's leaseRemainingMs");
    }
  },
};

export const renewKeepsClaimCase: ContractCase = {
  name: 'renew moves the lease end to leaseMs from now, so the owner keeps its claim past its first lease (R29, R20)',
  async run(context) {
    const { store, longLifetimeMs, clockSlackMs } = context;
    const request = newClaimRequest(context, { leaseMs: context.shortLifetimeMs });
    const claim = claimedOf(await store.claim(request), 'the first claim');
    const [didRenew, renewal] = await timedCall(() => store.renew(claim, longLifetimeMs));
    assert.equal(didRenew, true, 'the owner could not renew');
    const [found, read] = await timedCall(() => store.inspect(request.account, request.key));
    const renewed = inFlightOf(found, 'inspect after renewing');
    assertRemainingPlausible(renewed.leaseRemainingMs, longLifetimeMs, renewal, read, clockSlackMs, 'the renewed leaseRemainingMs');

    await waitPastShortLifetime(context);
    const retries = await concurrently(CONCURRENT_CALLERS, () => store.claim(request));
    retries.forEach((outcome, index) => inFlightOf(outcome, `retry ${index} after the first lease, before the renewed one ends`));
    assert.equal(await store.complete(claim, jsonResponse('owner'), request.ttlMs), true, 'the owner lost a renewed claim');
  },
};

export const completeIgnoresLeaseCase: ContractCase = {
  name: 'complete does not check the lease: an owner whose lease ran out, with nobody taking over, still completes (R29, R20)',
  async run(context) {
    const { store } = context;
    const request = newClaimRequest(context, { leaseMs: context.shortLifetimeMs });
    const claim = claimedOf(await store.claim(request), 'the first claim');
    await waitPastShortLifetime(context);

    const response = jsonResponse('late owner');
    assert.equal(await store.complete(claim, response, request.ttlMs), true, 'the only owner could not complete after its lease ran out');
    assertSameResponse(completedOf(await store.claim(request), 'a replay').response, response, 'a replay');
  },
};

export const renewAndReleaseIgnoreLeaseCase: ContractCase = {
  name: 'renew and release do not check the lease either: an owner whose lease ran out, with nobody taking over, renews and then releases (R29, R20)',
  async run(context) {
    const { store } = context;
    const request = newClaimRequest(context, { leaseMs: context.shortLifetimeMs });
    const claim = claimedOf(await store.claim(request), 'the first claim');
    await waitPastShortLifetime(context);

    assert.equal(await store.renew(claim, context.longLifetimeMs), true, 'the only owner could not renew after its lease ran out');
    inFlightOf(await store.claim(request), 'a retry after the late renewal');
    assert.equal(await store.release(claim), true, 'the only owner could not release after its lease ran out');
    claimedOf(await store.claim({ ...request, fingerprint: newFingerprint() }), 'a claim after the release');
  },
};
