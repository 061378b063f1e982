import { randomUUID } from 'node:crypto';

const PAYMENT_ID = /^pay_[0-9a-f]{32}$/;

/** A new payment id: `pay_` and 32 hex digits. */
export function newPaymentId(): string {
  return `pay_${randomUUID().replaceAll('-', '')}`;
}

/**
 * Whether a path or GraphQL id can name a payment at all. Anything else is no payment, answered
 * without a query: PostgreSQL refuses U+0000 in text with an error, where the answer is 404.
 */
export function isPaymentId(id: string): boolean {
  return PAYMENT_ID.test(id);
}
