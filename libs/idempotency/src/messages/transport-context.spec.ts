import { describe, expect, it, jest } from '@jest/globals';
import { messageHeaderValues, patternOf, settleDelivery } from './transport-context.js';

/** Shaped as Nest's RmqContext: [message, channel, pattern]. */
function rmqContext(headers: Record<string, unknown> | undefined) {
  const message = { properties: { headers } };
  const channel = { ack: jest.fn(), nack: jest.fn() };
  return { message, channel, context: { getMessage: () => message, getChannelRef: () => channel, getPattern: () => 'payment.capture' } };
}

describe('reading a message key and pattern from the transport context (R23)', () => {
  it('reads a RabbitMQ header whatever its case, and nothing when it is absent', () => {
    const { context } = rmqContext({ 'X-Event-Id': 'evt_1', count: 3 });
    expect(messageHeaderValues(context, 'x-event-id')).toEqual(['evt_1']);
    expect(messageHeaderValues(context, 'count')).toEqual(['3']);
    expect(messageHeaderValues(context, 'missing')).toEqual([]);
    expect(messageHeaderValues(rmqContext(undefined).context, 'x-event-id')).toEqual([]);
  });

  it('reads a NATS header, and nothing from a message without headers', () => {
    const headers = new Map([['x-event-id', 'evt_2']]);
    expect(messageHeaderValues({ getHeaders: () => ({ get: (name: string) => headers.get(name) ?? '' }) }, 'x-event-id')).toEqual(['evt_2']);
    expect(messageHeaderValues({ getHeaders: () => undefined }, 'x-event-id')).toEqual([]);
    expect(messageHeaderValues({}, 'x-event-id')).toEqual([]);
  });

  it("names the pattern from RabbitMQ's pattern, NATS's subject or a topic; an object pattern as JSON", () => {
    expect(patternOf(rmqContext({}).context)).toBe('payment.capture');
    expect(patternOf({ getSubject: () => 'orders.created' })).toBe('orders.created');
    expect(patternOf({ getTopic: () => 'audit' })).toBe('audit');
    expect(patternOf({ getPattern: () => ({ cmd: 'sum' }) })).toBe('{"cmd":"sum"}');
  });
});

describe('settling a RabbitMQ delivery under manual acknowledgement (R23)', () => {
  it('acknowledges it, returns it to the queue for another delivery, or rejects it to a dead-letter exchange', () => {
    const { context, message, channel } = rmqContext({});
    settleDelivery(context, 'ack');
    expect(channel.ack).toHaveBeenCalledWith(message);
    settleDelivery(context, 'requeue');
    expect(channel.nack).toHaveBeenLastCalledWith(message, false, true);
    settleDelivery(context, 'reject');
    expect(channel.nack).toHaveBeenLastCalledWith(message, false, false);
  });

  it('does nothing on a transport without acknowledgements', () => {
    expect(() => settleDelivery({ getSubject: () => 'orders.created' }, 'ack')).not.toThrow();
  });
});
