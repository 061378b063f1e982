/** The module's options with defaults resolved and validated. */
export const RESOLVED_OPTIONS = Symbol('IDEMPOTENCY_RESOLVED_OPTIONS');

/** The DataSource whose manager `IdempotencyTransaction` falls back to outside atomic mode. */
export const ATOMIC_DATA_SOURCE = Symbol('IDEMPOTENCY_ATOMIC_DATA_SOURCE');
