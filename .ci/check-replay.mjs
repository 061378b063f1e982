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
