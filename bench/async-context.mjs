// node bench/async-context.mjs: what AsyncLocalStorage costs the promises of a request, on the Node
// that runs it. Atomic mode hands the handler its transaction through one (IdempotencyTransaction);
// on Node 20 an AsyncLocalStorage that has been used turns on promise hooks for every promise of the
// process, on Node 24 it rides on AsyncContextFrame instead. Measured, not assumed:
// CPU per "request" (a chain of awaits and resolved promises, about what a Nest request makes)
// without any AsyncLocalStorage, then inside `run()` of one, in a fresh process each.
//
//   node bench/async-context.mjs [--requests 200000] [--awaits 40]
//   BENCH_NODE=24 node bench/async-context.mjs   (the measured processes run on Node 24)
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { appNode } from './support/app-node.mjs';

const { values: args } = parseArgs({
  options: { requests: { type: 'string', default: '200000' }, awaits: { type: 'string', default: '40' }, mode: { type: 'string' } },
});
const requests = Number(args.requests);
const awaits = Number(args.awaits);

async function step(value) {
  return value + 1;
}

async function request(store) {
  let value = 0;
  for (let i = 0; i < awaits; i++) value = await step(value);
  // The handler reads its transaction, as IdempotencyTransaction.manager does.
  return store ? store.getStore() + value : value;
}

async function measure(mode) {
  const { AsyncLocalStorage } = await import('node:async_hooks');
  const store = mode === 'als' ? new AsyncLocalStorage() : undefined;
  const once = () => (store ? store.run(1, () => request(store)) : request(undefined));
  for (let i = 0; i < requests / 10; i++) await once();
  const before = process.cpuUsage();
  for (let i = 0; i < requests; i++) await once();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / requests;
}

if (args.mode) {
  console.log(JSON.stringify({ mode: args.mode, microsecondsPerRequest: await measure(args.mode) }));
} else {
  const node = appNode();
  const run = (mode) =>
    JSON.parse(execFileSync(node.path, [fileURLToPath(import.meta.url), '--mode', mode, '--requests', String(requests), '--awaits', String(awaits)], { encoding: 'utf8' }));
  const rows = [];
  for (let round = 0; round < 3; round++) for (const mode of ['plain', 'als']) rows.push(run(mode));
  const median = (mode) => rows.filter((row) => row.mode === mode).map((row) => row.microsecondsPerRequest).sort((a, b) => a - b)[1];
  const plain = median('plain');
  const als = median('als');
  console.log(
    `Node ${node.version}: ${awaits} awaits per request, ${requests} requests, median of 3 fresh processes each: ` +
      `${plain.toFixed(2)} µs without AsyncLocalStorage, ${als.toFixed(2)} µs inside its run() (+${(als - plain).toFixed(2)} µs, ${(als / plain).toFixed(2)}x)`,
  );
}
