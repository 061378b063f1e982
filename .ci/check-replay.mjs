// What a newcomer tries first against the example API started by the README's first command: a
// payment, then the same request again, which must be the same bytes with Idempotency-Replayed.
const base = process.argv[2];
const key = crypto.randomUUID();
const send = () =>
  fetch(`${base}/v1/payments`, {
    method: 'POST',
    headers: { 'X-Api-Key': 'demo-key-acme', 'Idempotency-Key': key, 'Content-Type': 'application/json' },
    body: JSON.stringify({ amount: 1000, currency: 'EUR', customerId: 'cus_newcomer' }),
  });
const first = await send();
const firstBody = Buffer.from(await first.arrayBuffer());
const replay = await send();
const replayBody = Buffer.from(await replay.arrayBuffer());
const problems = [];
if (first.status !== 201) problems.push(`first payment answered ${first.status}: ${firstBody}`);
if (replay.status !== 201) problems.push(`retry answered ${replay.status}: ${replayBody}`);
if (replay.headers.get('idempotency-replayed') !== 'true') problems.push('retry has no Idempotency-Replayed: true');
if (!replayBody.equals(firstBody)) problems.push(`retry body differs:\n${firstBody}\n${replayBody}`);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`replayed ${JSON.parse(firstBody).id} byte for byte`);

// Then what the example does besides routes: a payment.capture event, published twice as a broker
// redelivery would, makes one capture (RabbitMQ is up: .ci/run started it).
const { default: amqp } = await import('amqplib');
const paymentId = JSON.parse(firstBody).id;
const connection = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
const channel = await connection.createChannel();
await channel.assertQueue('payments', { durable: true });
const event = { eventId: `evt_${crypto.randomUUID()}`, paymentId, amount: 400 };
for (let i = 0; i < 2; i++) {
  channel.sendToQueue('payments', Buffer.from(JSON.stringify({ pattern: 'payment.capture', data: event })), { persistent: true });
}
await channel.close();
await connection.close();
let captures = [];
for (let attempt = 0; attempt < 100 && captures.length === 0; attempt++) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  const answer = await fetch(`${base}/v1/payments/${paymentId}/captures`, { headers: { 'X-Api-Key': 'demo-key-acme' } });
  captures = (await answer.json()).data ?? [];
}
await new Promise((resolve) => setTimeout(resolve, 500));
const answer = await fetch(`${base}/v1/payments/${paymentId}/captures`, { headers: { 'X-Api-Key': 'demo-key-acme' } });
captures = (await answer.json()).data ?? [];
if (captures.length !== 1 || captures[0].eventId !== event.eventId) {
  console.error(`payment.capture published twice made ${captures.length} captures: ${JSON.stringify(captures)}`);
  process.exit(1);
}
console.log(`captured ${paymentId} once from RabbitMQ`);

// And the same payment over GraphQL: the retry of the mutation gets the stored result.
const mutation = {
  query: 'mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id amount createdAt } }',
  variables: { input: { amount: 700, currency: 'EUR', customerId: 'cus_graphql' } },
};
const graphqlKey = crypto.randomUUID();
const sendMutation = () =>
  fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'X-Api-Key': 'demo-key-acme', 'Idempotency-Key': graphqlKey, 'Content-Type': 'application/json' },
    body: JSON.stringify(mutation),
  });
const created = await sendMutation();
const createdBody = await created.text();
const retried = await sendMutation();
const retriedBody = await retried.text();
if (!JSON.parse(createdBody).data?.createPayment?.id || retriedBody !== createdBody || retried.headers.get('idempotency-replayed') !== 'true') {
  console.error(`the GraphQL mutation was not replayed:\n${createdBody}\n${retriedBody} (replayed: ${retried.headers.get('idempotency-replayed')})`);
  process.exit(1);
}
console.log(`replayed GraphQL createPayment ${JSON.parse(createdBody).data.createPayment.id}`);
