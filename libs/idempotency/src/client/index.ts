export {
  idempotentFetch,
  type FetchFunction,
  type IdempotentFetchInit,
  type IdempotentResponse,
  type RetryEvent,
} from './idempotent-fetch.js';
export { IdempotentRequestError, type GiveUpReason } from './idempotent-request.error.js';
export type { ReplayableBody } from './replayable-body.js';
export { RETRYABLE_STATUSES } from './retryable-response.js';
