// What the fingerprint's JSON canonicalisation costs per request (R7): the canonicaliser that reads
// the raw JSON text (numbers exact) against the walk over the parsed body it replaced.
//
//   npm run build && node bench/fingerprint-canonical.mjs [--runs 5] [--ms 1500] [--old DIR]
//
// Both sides start from what the platform hands over with `rawBody: true`: the parsed body (body
// parsers parse it either way) and the raw bytes. `--old DIR` also times the whole previous
// fingerprintRequest, compiled from git into DIR/fingerprint/request-fingerprint.js.
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { hashCanonicalJson } from '../libs/idempotency/dist/fingerprint/canonical-json.js';
import { isAscii, isUtf8 } from 'node:buffer';
import { writeCanonicalJsonText } from '../libs/idempotency/dist/fingerprint/canonical-json-text.js';
import { fingerprintRequest } from '../libs/idempotency/dist/fingerprint/request-fingerprint.js';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, ms: { type: 'string', default: '1500' }, old: { type: 'string' } },
});
const runs = Number(args.runs);
const budgetMs = Number(args.ms);
const oldFingerprint = args.old ? (await import(`${args.old}/fingerprint/request-fingerprint.js`)).fingerprintRequest : undefined;

/** The example API's bodies: POST /v1/exports and POST /v1/payments. */
const SMALL = [
  '{"datastreamId":7,"processingMs":250}',
  '{"amount":4200,"currency":"EUR","customerId":"cus_1","description":"Order 1042"}',
];

/** About 1 MB: items with strings, integers, decimals and nested objects, keys in no order. */
function largeBody(bytes) {
  const items = [];
  let length = 0;
  for (let id = 0; length < bytes; id++) {
    const item = { sku: `SKU-${id}`, quantity: (id % 7) + 1, unitAmount: 1999 + id, tax: { rate: 0.2, code: 'FR-STD' }, note: `line ${id} of the order`, id };
    items.push(item);
    length += JSON.stringify(item).length + 1;
  }
  return JSON.stringify({ orderId: 'ord_1', items, currency: 'EUR' });
}

function input(text) {
  return {
    method: 'POST',
    path: '/v1/exports',
    query: '',
    headers: { 'content-type': 'application/json' },
    body: JSON.parse(text),
    rawBody: Buffer.from(text),
    route: '/v1/exports',
    params: {},
    queryParams: {},
  };
}

/** Calls per second of `fn` over `budgetMs`, after a warm-up of a third of that. */
function rate(fn) {
  timed(fn, budgetMs / 3);
  return timed(fn, budgetMs);
}

function timed(fn, ms) {
  let calls = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  while (now < end) {
    fn();
    calls++;
    now = process.hrtime.bigint();
  }
  return calls / (Number(now - start) / 1e9);
}

function case_(label, text) {
  const request = input(text);
  const parsedOnly = { ...request, rawBody: undefined };
  const candidates = {
    'walk over the parsed body (before)': () => {
      const hash = createHash('sha256');
      hashCanonicalJson(request.body, hash);
      return hash.digest('hex');
    },
    'canonicaliser over the raw bytes (after)': () => {
      // Batched into the hash as hashCanonicalJson does, from the bytes (their check and decoding included).
      const hash = createHash('sha256');
      let pending = '';
      const bytes = request.rawBody;
      const text = isAscii(bytes) ? bytes.toString('latin1') : isUtf8(bytes) ? bytes.toString('utf8') : undefined;
      if (text === undefined) throw new Error('not UTF-8');
      writeCanonicalJsonText(text, (piece) => {
        pending += piece;
        if (pending.length >= 65536) {
          hash.update(pending, 'utf8');
          pending = '';
        }
      });
      return hash.update(pending, 'utf8').digest('hex');
    },
    'fingerprintRequest, raw body (after)': () => fingerprintRequest(request),
    'fingerprintRequest, parsed body only (after, no rawBody)': () => fingerprintRequest(parsedOnly),
  };
  if (oldFingerprint) candidates['fingerprintRequest (before)'] = () => oldFingerprint(parsedOnly);
  const samples = Object.fromEntries(Object.keys(candidates).map((name) => [name, []]));
  // Interleaved, so every candidate sees the same machine load.
  for (let run = 0; run < runs; run++) for (const [name, fn] of Object.entries(candidates)) samples[name].push(rate(fn));
  console.log(`\n${label} (${Buffer.byteLength(text)} bytes), calls/s over ${runs} runs of ${budgetMs} ms:`);
  for (const [name, values] of Object.entries(samples)) {
    const sorted = [...values].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    const perCall = 1e6 / median;
    console.log(`  ${name.padEnd(58)} median ${format(median)}  (${perCall.toFixed(perCall < 10 ? 2 : 0)} µs/call)  runs: ${values.map(format).join(', ')}`);
  }
}

function format(value) {
  return value >= 1000 ? `${(value / 1000).toFixed(1)}k` : value.toFixed(1);
}

for (const [index, text] of SMALL.entries()) case_(`small body ${index + 1}`, text);
case_('large body', largeBody(1024 * 1024));
