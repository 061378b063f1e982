import assert from 'node:assert/strict';
import { timedCall } from '../call-window.js';
import { CONCURRENT_CALLERS, concurrently } from '../concurrent-callers.js';
import { waitPastShortLifetime, type ContractCase } from '../contract-case.js';
import { assertRemainingPlausible, assertSameResponse, claimedOf, completedOf, inFlightOf } from '../outcome-assertions.js';
import { jsonResponse, newClaimRequest, newFingerprint } from '../sample-requests.js';

export const completedRecordExpiryCase: ContractCase = {
  name:
    "a completed record is replayed before its ttl, with an expiresInMs that counts down on the store's clock, " +
    'and is free again after it (R29, R12, R19)',
  async run(context) {
    const { store, shortLifetimeMs, longLifetimeMs, clockSlackMs } = context;

    const lasting = newClaimRequest(context);
    const lastingClaim = claimedOf(await store.claim(lasting), 'the first claim of the long-lived key');
    const [lastingCompleted, lastingSet] = await timedCall(() => store.complete(lastingClaim, jsonResponse('lasting'), longLifetimeMs));
    assert.equal(lastingCompleted, true, 'the owner of the long-lived key could not complete');
    const [lastingFound, lastingRead] = await timedCall(() => store.inspect(lasting.account, lasting.key));
    const lastingRecord = completedOf(lastingFound, 'inspect of the long-lived key');
    assertRemainingPlausible(lastingRecord.expiresInMs, longLifetimeMs, lastingSet, lastingRead, clockSlackMs, 'expiresInMs of a long ttl');

    const brief = newClaimRequest(context);
    const briefClaim = claimedOf(await store.claim(brief), 'the first claim of the short-lived key');
    const response = jsonResponse('brief');
    const [briefCompleted, briefSet] = await timedCall(() => store.complete(briefClaim, response, shortLifetimeMs));
    assert.equal(briefCompleted, true, 'the owner of the short-lived key could not complete');
    const [replayed, replayRead] = await timedCall(() => store.claim(brief));
    const replay = completedOf(replayed, 'a replay before the ttl');
    assertSameResponse(replay.response, response, 'a replay before the ttl');
    assertRemainingPlausible(replay.expiresInMs, shortLifetimeMs, briefSet, replayRead, clockSlackMs, 'expiresInMs of a short ttl');

    await waitPastShortLifetime(context);
    assert.equal(await store.inspect(brief.account, brief.key), undefined, 'inspect still found the record after its ttl');
    const fresh = { ...brief, fingerprint: newFingerprint() };
    const claim = claimedOf(await store.claim(fresh), 'a claim with another fingerprint after the ttl');
    assert.equal(claim.fingerprint, fresh.fingerprint);
    const record = inFlightOf(await store.inspect(brief.account, brief.key), 'inspect after the new claim');
    assert.equal(record.fingerprint, fresh.fingerprint, "the expired record's fingerprint survived the new claim");

    // Read again later, by a replay: the time left is as of this read, not as of an earlier one.
    const [lastingReplayed, lastingReplayRead] = await timedCall(() => store.claim(lasting));
    const lastingReplay = completedOf(lastingReplayed, 'a replay of the long-lived key');
    assertRemainingPlausible(lastingReplay.expiresInMs, longLifetimeMs, lastingSet, lastingReplayRead, clockSlackMs, 'expiresInMs of a later replay');
  },
};

export const expiredRecordTakeoverRaceCase: ContractCase = {
  name: `of ${CONCURRENT_CALLERS} concurrent claims of an expired record, whatever their fingerprints, exactly one takes it over (R29, R12, R8)`,
  async run(context) {
    const { store } = context;
    const request = newClaimRequest(context);
    const claim = claimedOf(await store.claim(request), 'the first claim');
    assert.equal(await store.complete(claim, jsonResponse('expired'), context.shortLifetimeMs), true, 'the owner could not complete');
    await waitPastShortLifetime(context);

    const requests = Array.from({ length: CONCURRENT_CALLERS }, () => ({ ...request, fingerprint: newFingerprint() }));
    const outcomes = await concurrently(requests.length, (index) => store.claim(requests[index]));
    const winners = outcomes.flatMap((outcome, index) => (outcome.status === 'claimed' ? [index] : []));
    assert.equal(winners.length, 1, `${winners.length} of ${requests.length} concurrent claims took over the expired record`);
    const winner = requests[winners[0]];
    outcomes.forEach((outcome, index) => {
      if (index === winners[0]) return;
      const record = inFlightOf(outcome, `caller ${index}, which lost the takeover`);
      assert.equal(record.fingerprint, winner.fingerprint, `caller ${index} read a fingerprint other than the winner's`);
    });
  },
};
