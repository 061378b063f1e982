/** The payload of a `payment.capture` event. */
export interface CaptureEvent {
  /** The producer's id of the event: the same on every redelivery and republication. */
  readonly eventId: string;
  readonly paymentId: string;
  /** Minor units, a positive whole number. */
  readonly amount: number;
  /** Time the handler takes after writing the capture, as `processingMs` of payments: lets demos and tests hold it in flight. */
  readonly processingMs?: number;
}

const MAX_ID_LENGTH = 255;
const MAX_PROCESSING_MS = 10_000;

/** What is wrong with a payload, or undefined when it is a capture event. */
export function captureEventProblem(payload: unknown): string | undefined {
  if (payload === null || typeof payload !== 'object') return 'the payload is not an object';
  const { eventId, paymentId, amount } = payload as Record<string, unknown>;
  if (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > MAX_ID_LENGTH) return 'eventId must be a string of 1 to 255 characters';
  if (typeof paymentId !== 'string' || paymentId.length === 0 || paymentId.length > MAX_ID_LENGTH) return 'paymentId must be a string of 1 to 255 characters';
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) return 'amount must be a positive whole number';
  const { processingMs } = payload as Record<string, unknown>;
  if (processingMs !== undefined && (typeof processingMs !== 'number' || !Number.isInteger(processingMs) || processingMs < 0 || processingMs > MAX_PROCESSING_MS)) {
    return `processingMs must be a whole number of milliseconds up to ${MAX_PROCESSING_MS}`;
  }
  return undefined;
}
