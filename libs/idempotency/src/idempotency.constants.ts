/** The module's options with defaults resolved and validated. */
export const RESOLVED_OPTIONS = Symbol('IDEMPOTENCY_RESOLVED_OPTIONS');
