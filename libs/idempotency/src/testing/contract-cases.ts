import type { ContractCase } from './contract-case.js';
import { claimRaceCase } from './cases/claim-race.case.js';
import { completedRecordExpiryCase, expiredRecordTakeoverRaceCase } from './cases/expiry.cases.js';
import { releaseFreesKeyCase, takenOverOwnerFencedCase } from './cases/fencing.cases.js';
import { responseFidelityCase } from './cases/fidelity.case.js';
import { inspectChangesNothingCase } from './cases/inspect.case.js';
import {
  completeIgnoresLeaseCase,
  leaseProtectsClaimCase,
  renewAndReleaseIgnoreLeaseCase,
  renewKeepsClaimCase,
  takeoverAfterLeaseCase,
} from './cases/lease.cases.js';
import {
  completedRecordIsFinalCase,
  completedRecordUnchangedByClaimCase,
  inFlightRecordUnchangedByClaimCase,
} from './cases/live-record.cases.js';
import { purgeBatchCase } from './cases/purge.case.js';
import { keyPerAccountCase, unusualKeysCase } from './cases/scoping.cases.js';

/** The store contract (R29), in the order the interface's doc comment states it. */
export const STORE_CONTRACT_CASES: readonly ContractCase[] = [
  claimRaceCase,
  completedRecordUnchangedByClaimCase,
  inFlightRecordUnchangedByClaimCase,
  leaseProtectsClaimCase,
  takeoverAfterLeaseCase,
  takenOverOwnerFencedCase,
  completeIgnoresLeaseCase,
  renewAndReleaseIgnoreLeaseCase,
  renewKeepsClaimCase,
  releaseFreesKeyCase,
  completedRecordIsFinalCase,
  completedRecordExpiryCase,
  expiredRecordTakeoverRaceCase,
  inspectChangesNothingCase,
  purgeBatchCase,
  responseFidelityCase,
  unusualKeysCase,
  keyPerAccountCase,
];
