/**
 * What a message handler's transport context offers, read by duck typing so that no transport's
 * package is loaded: RabbitMQ's `RmqContext`, NATS's `NatsContext`, and the pattern (or subject,
 * topic, channel) every Nest transport context names.
 */
interface RmqLikeContext {
  getMessage(): { properties?: { headers?: Record<string, unknown> } };
  getChannelRef(): { ack(message: unknown): void; nack(message: unknown, allUpTo?: boolean, requeue?: boolean): void };
}

interface NatsLikeContext {
  getHeaders(): { get(name: string): string } | undefined;
}

interface NamedContext {
  getPattern?(): unknown;
  getSubject?(): unknown;
  getTopic?(): unknown;
  getChannel?(): unknown;
}

/** The message's pattern as a string: the scope of its keys. */
export function patternOf(context: unknown): string {
  const named = (context ?? {}) as NamedContext;
  const pattern = named.getPattern?.() ?? named.getSubject?.() ?? named.getTopic?.() ?? named.getChannel?.();
  if (typeof pattern === 'string') return pattern;
  return pattern === undefined ? 'message' : JSON.stringify(pattern);
}

/** The values of a message header, for RabbitMQ and NATS; none on other transports. */
export function messageHeaderValues(context: unknown, name: string): string[] {
  if (isRmqContext(context)) {
    const headers = context.getMessage().properties?.headers ?? {};
    const lower = name.toLowerCase();
    const found = Object.entries(headers).find(([header]) => header.toLowerCase() === lower)?.[1];
    return found === undefined || found === null ? [] : [String(found)];
  }
  if (isNatsContext(context)) {
    const value = context.getHeaders()?.get(name);
    return value ? [value] : [];
  }
  return [];
}

/**
 * Settles a RabbitMQ delivery under manual acknowledgement: acknowledged when it is done with,
 * returned to the queue for a later delivery, or rejected (to the queue's dead-letter exchange, if
 * it has one) when no delivery of it can succeed. A no-op on transports without acknowledgements.
 */
export function settleDelivery(context: unknown, outcome: 'ack' | 'requeue' | 'reject'): void {
  if (!isRmqContext(context)) return;
  const channel = context.getChannelRef();
  const message = context.getMessage();
  if (outcome === 'ack') channel.ack(message);
  else channel.nack(message, false, outcome === 'requeue');
}

function isRmqContext(context: unknown): context is RmqLikeContext {
  const candidate = context as Partial<RmqLikeContext> | undefined;
  return typeof candidate?.getChannelRef === 'function' && typeof candidate.getMessage === 'function';
}

function isNatsContext(context: unknown): context is NatsLikeContext {
  return typeof (context as Partial<NatsLikeContext> | undefined)?.getHeaders === 'function';
}
