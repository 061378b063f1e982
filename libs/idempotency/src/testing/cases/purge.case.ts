import assert from 'node:assert/strict';
import { waitPastShortLifetime, type ContractCase } from '../contract-case.js';
import { assertStoredResponse, claimedOf, inFlightOf } from '../outcome-assertions.js';
import { jsonResponse, newClaimRequest } from '../sample-requests.js';

const EXPIRED_RECORDS = 7;
const BATCH_LIMIT = 3;
// A store shared with other data may hold many more expired records than this case made.
const MAX_PURGE_CALLS = 10_000;

export const purgeBatchCase: ContractCase = {
  name:
    `purgeExpired(${BATCH_LIMIT}) deletes at most ${BATCH_LIMIT} expired records per call, all of them over several calls, ` +
    'and never a live one (R29, R21)',
  async run(context) {
    const { store, shortLifetimeMs, longLifetimeMs } = context;
    const expiring = [];
    for (let index = 0; index < EXPIRED_RECORDS; index++) {
      const request = newClaimRequest(context);
      expiring.push(request);
      const claim = claimedOf(await store.claim(request), `the claim of expiring record ${index}`);
      assert.equal(await store.complete(claim, jsonResponse(`expiring ${index}`), shortLifetimeMs), true);
    }
    const completed = newClaimRequest(context);
    const completedResponse = jsonResponse('live');
    const completedClaim = claimedOf(await store.claim(completed), 'the claim of the live completed record');
    assert.equal(await store.complete(completedClaim, completedResponse, longLifetimeMs), true);
    // Past the ttl it was claimed with, but its lease lasts: its owner is still running.
    const running = newClaimRequest(context, { ttlMs: shortLifetimeMs });
    const runningClaim = claimedOf(await store.claim(running), 'the running claim');
    await waitPastShortLifetime(context);

    let purged = 0;
    for (let calls = 1; ; calls++) {
      const deleted = await store.purgeExpired(BATCH_LIMIT);
      assert.ok(Number.isInteger(deleted) && deleted >= 0, `purgeExpired returned ${deleted}, not a count`);
      assert.ok(deleted <= BATCH_LIMIT, `purgeExpired(${BATCH_LIMIT}) deleted ${deleted} records in one call`);
      purged += deleted;
      if (deleted === 0) break;
      assert.ok(calls < MAX_PURGE_CALLS, `purgeExpired still deleted records after ${calls} calls`);
    }
    if (!context.expiresRecordsItself) {
      assert.ok(purged >= EXPIRED_RECORDS, `purgeExpired deleted ${purged} records in all, fewer than the ${EXPIRED_RECORDS} this case let expire`);
    }
    for (const [index, request] of expiring.entries()) {
      assert.equal(await store.inspect(request.account, request.key), undefined, `expired record ${index} is still there after the purge`);
    }

    await assertStoredResponse(store, completed, completedResponse, 'the live completed record');
    inFlightOf(await store.inspect(running.account, running.key), 'the running claim past its ttl');
    assert.equal(await store.complete(runningClaim, jsonResponse('running'), running.ttlMs), true, 'the running claim was purged under its owner');
  },
};
