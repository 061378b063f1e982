import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContractCase } from '../contract-case.js';
import { assertEndDidNotMove, assertSameResponse, claimedOf, completedOf, inFlightOf } from '../outcome-assertions.js';
import { jsonResponse, newClaimRequest } from '../sample-requests.js';

export const inspectChangesNothingCase: ContractCase = {
  name: 'inspect changes nothing: an unknown key stays free, a lease still ends on time, an expiry does not move (R29, R11)',
  async run(context) {
    const { store, shortLifetimeMs, clockSlackMs } = context;

    const unknown = newClaimRequest(context);
    assert.equal(await store.inspect(unknown.account, unknown.key), undefined, 'inspect found a record for a key never claimed');
    claimedOf(await store.claim(unknown), 'the first claim after inspecting an unknown key');

    const running = newClaimRequest(context, { leaseMs: shortLifetimeMs });
    claimedOf(await store.claim(running), 'the first claim of the running key');
    const done = newClaimRequest(context);
    const response = jsonResponse('done');
    assert.equal(await store.complete(claimedOf(await store.claim(done), 'the first claim of the done key'), response, done.ttlMs), true);

    // Polled as a waiting retry polls (R11): an inspect that renewed the lease would keep a dead owner's key.
    const leaseAtStart = inFlightOf(await store.inspect(running.account, running.key), 'inspect of the running key');
    const expiryAtStart = completedOf(await store.inspect(done.account, done.key), 'inspect of the done key');
    await sleep(shortLifetimeMs / 2);
    inFlightOf(await store.inspect(running.account, running.key), 'inspect of the running key halfway through its lease');
    await sleep(shortLifetimeMs / 2 + clockSlackMs);
    const leaseAtEnd = inFlightOf(await store.inspect(running.account, running.key), 'inspect of the running key after its lease');
    assert.ok(leaseAtEnd.leaseRemainingMs <= 0, `leaseRemainingMs is ${leaseAtEnd.leaseRemainingMs} after the lease ended`);
    assertEndDidNotMove(leaseAtStart.leaseRemainingMs, leaseAtEnd.leaseRemainingMs, shortLifetimeMs, clockSlackMs, 'the polled leaseRemainingMs');
    claimedOf(await store.claim(running), 'a retry after the polled lease ended');

    const expiryAtEnd = completedOf(await store.inspect(done.account, done.key), 'inspect of the done key at the end');
    assertSameResponse(expiryAtEnd.response, response, 'inspect of the done key at the end');
    assertEndDidNotMove(expiryAtStart.expiresInMs, expiryAtEnd.expiresInMs, shortLifetimeMs, clockSlackMs, 'the polled expiresInMs');
  },
};
