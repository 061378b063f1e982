import assert from 'node:assert/strict';
import { timedCall } from '../call-window.js';
import { CONCURRENT_CALLERS, concurrently } from '../concurrent-callers.js';
import type { ContractCase } from '../contract-case.js';
import { assertRemainingPlausible, inFlightOf } from '../outcome-assertions.js';
import { newClaimRequest, newFingerprint } from '../sample-requests.js';

export const claimRaceCase: ContractCase = {
  name: `of ${CONCURRENT_CALLERS} concurrent claims of one free key exactly one wins, and every other caller reads the winner's record (R29, R6, R8)`,
  async run(context) {
    const { store } = context;
    const base = newClaimRequest(context);
    // Each caller brings its own fingerprint, so the losers show whose record they read.
    const requests = Array.from({ length: CONCURRENT_CALLERS }, () => ({ ...base, fingerprint: newFingerprint() }));
    const [outcomes, race] = await timedCall(() => concurrently(requests.length, (index) => store.claim(requests[index])));

    const winners = outcomes.flatMap((outcome, index) => (outcome.status === 'claimed' ? [index] : []));
    assert.equal(winners.length, 1, `${winners.length} of ${requests.length} concurrent claims of one free key won`);
    const winner = requests[winners[0]];
    const outcome = outcomes[winners[0]];
    assert.ok(outcome.status === 'claimed');
    assert.deepEqual(
      { account: outcome.claim.account, key: outcome.claim.key, fingerprint: outcome.claim.fingerprint },
      { account: winner.account, key: winner.key, fingerprint: winner.fingerprint },
      'the claim names the account, key and fingerprint of the request that won',
    );
    assert.ok(typeof outcome.claim.ownerToken === 'string' && outcome.claim.ownerToken !== '', 'the claim carries an owner token');

    outcomes.forEach((other, index) => {
      if (index === winners[0]) return;
      const record = inFlightOf(other, `caller ${index}, which lost the race`);
      assert.equal(record.fingerprint, winner.fingerprint, `caller ${index} read a fingerprint other than the winner's`);
      assertRemainingPlausible(record.leaseRemainingMs, base.leaseMs, race, race, context.clockSlackMs, `caller ${index}'s leaseRemainingMs`);
    });

    const stored = inFlightOf(await store.inspect(base.account, base.key), 'inspect after the race');
    assert.equal(stored.fingerprint, winner.fingerprint, "the stored record is not the winner's");
  },
};
