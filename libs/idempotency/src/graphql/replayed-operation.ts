import { REPLAYED_HEADER } from '../response/response-replay.js';

/** The response of the HTTP request carrying an operation: an Express `res` or a Fastify reply. */
interface OperationResponse {
  setHeader?(name: string, value: string): unknown;
  removeHeader?(name: string): unknown;
  header?(name: string, value: string): unknown;
}

// Per HTTP request: whether one of its idempotent fields ran (or was refused) rather than replayed.
const ranFields = new WeakMap<object, boolean>();

/**
 * Keeps `Idempotency-Replayed: true` on the operation's HTTP response while every idempotent field
 * resolved so far was replayed, and takes it off as soon as one was not. GraphQL runs mutation
 * fields one after the other and sends the response after the last, so the header is final then.
 */
export function markIdempotentField(request: object, response: OperationResponse | undefined, replayed: boolean): void {
  if (!response) return;
  const ranBefore = ranFields.get(request) ?? false;
  ranFields.set(request, ranBefore || !replayed);
  if (replayed && !ranBefore) {
    if (response.setHeader) response.setHeader(REPLAYED_HEADER, 'true');
    else response.header?.(REPLAYED_HEADER, 'true');
  } else if (!replayed) {
    response.removeHeader?.(REPLAYED_HEADER);
  }
}
