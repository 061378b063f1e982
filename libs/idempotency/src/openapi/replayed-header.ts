import type { HeaderObject } from '@nestjs/swagger';
import { REPLAYED_HEADER } from '../response/response-replay.js';

/** The `Idempotency-Replayed` header that a replay carries and a fresh response never does (R9, R13). */
export const replayedHeader: Readonly<Record<string, HeaderObject>> = {
  [REPLAYED_HEADER]: {
    description:
      '`true` when this is the stored response of an earlier request with the same idempotency key (a replay: ' +
      'the request did not run again); absent on a fresh response.',
    required: false,
    schema: { type: 'string', enum: ['true'] },
  },
};

/** Whether a documented status (`201`, `2XX`, `default`, ...) is a success, the responses a replay repeats. */
export function isSuccessStatus(status: string): boolean {
  return /^2(\d\d|XX)$/i.test(status);
}
