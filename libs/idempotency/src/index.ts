export { IdempotencyModule } from './idempotency.module.js';
export { Idempotent } from './idempotent.decorator.js';
export { IdempotencyService, type PurgeResult, type RunOnceContext, type RunOnceOptions } from './idempotency.service.js';
export { IdempotencyTransaction } from './atomic/idempotency-transaction.js';
export type { IdempotencyModuleOptions, IdempotencyRouteOptions, IdempotentHandlerOptions } from './idempotency.options.js';
export type { IdempotencyKeySource } from './key/key-source.js';
export type { IdempotencyEncryptionOptions } from './encryption/keyring.js';
export type { IdempotencyKeyFormat } from './key/idempotency-key.parser.js';
export type { FingerprintInput } from './http/http-exchange.js';
export { fingerprintRequest, type FingerprintFunction } from './fingerprint/request-fingerprint.js';
export { defaultAccountResolver, type AccountId, type AccountResolver } from './account/account-resolver.js';
export { defaultStoreResponse, type StoreResponsePredicate } from './response/stored-status-policy.js';
export { REPLAYED_HEADER } from './response/response-replay.js';
export {
  IDEMPOTENCY_CHANNELS,
  type IdempotencyOutcome,
  type IdempotencyOutcomeMessage,
  type IdempotencyStoreCallMessage,
  type IdempotencyStoreOperation,
  type IdempotencyTransport,
} from './observability/idempotency-channels.js';
export {
  defaultErrorFormatter,
  problemJsonErrorFormatter,
  type FormattedIdempotencyError,
  type IdempotencyErrorDetails,
  type IdempotencyErrorFormatter,
} from './errors/error-formatter.js';
export { IdempotencyError, type IdempotencyErrorCode } from './errors/idempotency.error.js';
export { IdempotencyKeyMissingError } from './errors/idempotency-key-missing.error.js';
export { InvalidIdempotencyKeyError } from './errors/invalid-idempotency-key.error.js';
export { IdempotencyKeyReuseError } from './errors/idempotency-key-reuse.error.js';
export { IdempotencyConflictError } from './errors/idempotency-conflict.error.js';
export { IdempotencyUnavailableError } from './errors/idempotency-unavailable.error.js';
export { IdempotencyAccountUnresolvedError } from './errors/idempotency-account-unresolved.error.js';
export { IdempotencyBodyTooLargeError } from './errors/idempotency-body-too-large.error.js';
export { IdempotencyBodyUnreadableError } from './errors/idempotency-body-unreadable.error.js';
export {
  IDEMPOTENCY_STORE,
  type AtomicClaimOutcome,
  type AtomicInterruption,
  type AtomicUnit,
  type Claim,
  type ClaimOutcome,
  type ClaimRequest,
  type FoundRecord,
  type IdempotencyStore,
  type StoredResponse,
} from './store/idempotency-store.js';
export { StoreTimeoutError } from './store/store-timeout.js';
export { StoreReplicationError } from './store/store-replication.error.js';
export { TransactionLostRaceError } from './store/lost-race.error.js';
export { TypeOrmIdempotencyStore, type TypeOrmIdempotencyStoreOptions } from './store/typeorm-idempotency.store.js';
export {
  RedisIdempotencyStore,
  type RedisIdempotencyClient,
  type RedisIdempotencyPipeline,
  type RedisIdempotencyStoreOptions,
} from './store/redis-idempotency.store.js';
export { ReplayCachingStore, type ReplayCacheOptions } from './store/replay-cache.store.js';
export { IdempotencyRecord } from './store/idempotency-record.entity.js';
export { CreateIdempotencyRecords1764064800000 } from './store/migrations/1764064800000-create-idempotency-records.js';
