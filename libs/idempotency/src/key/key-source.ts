/**
 * Where a GraphQL mutation or a message handler finds its key (R23); HTTP routes always read the
 * module's `headerName`.
 * - `{ header }`: for a mutation, a header of the HTTP request that carries the operation (the
 *   default, with the module's `headerName`); for a message, a RabbitMQ or NATS message header.
 * - `{ argument }`: a mutation's argument, e.g. `{ argument: 'idempotencyKey' }`.
 * - `{ payload }`: a message payload's property; dots reach into nested objects (`'meta.eventId'`).
 * - a function of the message payload, returning the key or undefined.
 */
export type IdempotencyKeySource =
  | { readonly header: string }
  | { readonly argument: string }
  | { readonly payload: string }
  | ((payload: unknown) => string | number | undefined);

/** What is wrong with a key source, or undefined when it is usable. */
export function keySourceProblem(source: unknown): string | undefined {
  if (typeof source === 'function') return undefined;
  if (source !== null && typeof source === 'object') {
    const entries = Object.entries(source);
    const [name, value] = entries[0] ?? [];
    if (entries.length === 1 && ['header', 'argument', 'payload'].includes(name!) && typeof value === 'string' && value.length > 0) {
      return undefined;
    }
  }
  return `key must be { header: string }, { argument: string }, { payload: string } or a function (payload) => string`;
}

/** The value at a dotted path of a payload, or undefined. */
export function valueAtPath(payload: unknown, path: string): unknown {
  let value = payload;
  for (const name of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}
