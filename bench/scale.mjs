// npm run bench:scale: does the store stay fast as the table grows, and does purging stay gentle?
//
//   node bench/scale.mjs [--sizes 1000,100000,1000000] [--samples 2000] [--markdown out.md]
//
// Fills idempotency_records (BENCH_SCALE_DATABASE_URL, default
// mysql://root@127.0.0.1:3306/idempotency_bench_scale) with batched inserts up to each size, measures
// one client's claim (new key) and replay (existing key) latency through the library's TypeORM
// store, then expires every record and purges them, timing each purge batch.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { CreateIdempotencyRecords1764064800000, TypeOrmIdempotencyStore } from 'nestjs-idempotency';
import { DataSource } from 'typeorm';
import { machine } from './support/report.mjs';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,100000,1000000' },
    samples: { type: 'string', default: '2000' },
    'purge-batch': { type: 'string', default: '500' },
    markdown: { type: 'string' },
  },
});
const sizes = args.sizes.split(',').map(Number);
const samples = Number(args.samples);
const purgeBatch = Number(args['purge-batch']);
const url = new URL(process.env.BENCH_SCALE_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/idempotency_bench_scale');
const database = url.pathname.slice(1);
const connection = {
  host: url.hostname,
  port: Number(url.port || 3306),
  user: decodeURIComponent(url.username || 'root'),
  password: decodeURIComponent(url.password),
};
const ACCOUNT = 'scale';
// Retries come soon after the first request, so their records are among the newest; replays are
// measured on those, and, as the worst case, on keys drawn from the whole table.
const RECENT = 10_000;
const FINGERPRINT = 'f'.repeat(64);
const BODY = Buffer.from(JSON.stringify({ id: 'exp_0123456789abcdef0123456789abcdef', datastreamId: 1, status: 'queued' }));
const HEADERS = JSON.stringify({ 'content-type': 'application/json; charset=utf-8' });
const INSERT_BATCH = 2000;

const admin = await mysql.createConnection(connection);
await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
await admin.end();

const dataSource = await new DataSource({
  type: 'mysql',
  url: url.toString(),
  migrations: [CreateIdempotencyRecords1764064800000],
  migrationsRun: true,
}).initialize();
const store = new TypeOrmIdempotencyStore(dataSource);
const sql = mysql.createPool({ ...connection, database, connectionLimit: 4 });
const knownKeys = [];

async function fillTo(target) {
  const [[{ n }]] = await sql.query('SELECT COUNT(*) AS n FROM idempotency_records');
  let count = Number(n);
  const started = performance.now();
  while (count < target) {
    const rows = Math.min(INSERT_BATCH, target - count);
    const values = [];
    for (let i = 0; i < rows; i++) {
      const key = randomUUID();
      knownKeys.push(key);
      values.push([ACCOUNT, key, FINGERPRINT, 'completed', randomUUID(), 'POST /v1/exports', 0, BODY, HEADERS, 201]);
    }
    await sql.query(
      'INSERT INTO idempotency_records (account, idempotency_key, fingerprint, state, owner_token, route, lease_expires_at, ' +
        'response_body, response_headers, response_status, expires_at, created_at) ' +
        `SELECT v.*, n.now + 86400000, n.now FROM (VALUES ${values.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}) AS v, ` +
        "(SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000 AS now) AS n",
      values.flat(),
    );
    count += rows;
    if (count % 100_000 === 0) process.stdout.write(`  ${count} records (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function latencies(operation) {
  const times = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    await operation(i);
    times.push(performance.now() - started);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

const claimOf = (key) => ({ account: ACCOUNT, key, fingerprint: FINGERPRINT, ttlMs: 86_400_000, leaseMs: 60_000, route: 'scale' });

const rows = [];
for (const size of sizes) {
  console.log(`filling to ${size} records`);
  await fillTo(size);
  await latencies(() => store.claim(claimOf(knownKeys[Math.floor(Math.random() * knownKeys.length)]))); // warm-up
  const claim = await latencies(async () => {
    const outcome = await store.claim(claimOf(randomUUID()));
    if (outcome.status !== 'claimed') throw new Error(`a new key was ${outcome.status}`);
  });
  const replayOf = (pick) => async () => {
    const outcome = await store.claim(claimOf(pick()));
    if (outcome.status !== 'completed') throw new Error(`a stored key was ${outcome.status}`);
  };
  const recentFrom = Math.max(0, knownKeys.length - RECENT);
  const replay = await latencies(replayOf(() => knownKeys[recentFrom + Math.floor(Math.random() * (knownKeys.length - recentFrom))]));
  const replayAny = await latencies(replayOf(() => knownKeys[Math.floor(Math.random() * knownKeys.length)]));
  rows.push({ size, claim, replay, replayAny });
  console.log(
    `  claim p50 ${claim.p50.toFixed(2)} ms; replay (recent) p50 ${replay.p50.toFixed(2)} ms; replay (any) p50 ${replayAny.p50.toFixed(2)} ms`,
  );
}

console.log('expiring every record');
const [[{ n: total }]] = await sql.query('SELECT COUNT(*) AS n FROM idempotency_records');
let expired = 0;
for (;;) {
  const [result] = await sql.query('UPDATE idempotency_records SET expires_at = 0 WHERE expires_at > 0 LIMIT 50000');
  expired += result.affectedRows;
  if (result.affectedRows === 0) break;
}
console.log(`purging ${expired} expired records in batches of ${purgeBatch}`);
const batchTimes = [];
const purgeStarted = performance.now();
for (;;) {
  const started = performance.now();
  const deleted = await store.purgeExpired(purgeBatch);
  batchTimes.push(performance.now() - started);
  if (deleted < purgeBatch) break;
}
const purge = {
  records: Number(total),
  batches: batchTimes.length,
  longestMs: Math.max(...batchTimes),
  p50Ms: percentile(batchTimes, 50),
  totalS: (performance.now() - purgeStarted) / 1000,
};

const base = rows[0];
const [[{ pool }]] = await sql.query('SELECT @@innodb_buffer_pool_size AS pool');
const bufferPoolMb = Math.round(Number(pool) / 1024 / 1024);
const table = [
  `Measured ${new Date().toISOString()} on ${machine()}, MariaDB on loopback (innodb_buffer_pool_size ${bufferPoolMb} MiB), ` +
    `one client, ${samples} samples per cell; replays of the ${RECENT} newest keys, and of any key.`,
  '',
  `| records | claim p50 ms | claim p99 ms | replay p50 ms | replay p99 ms | claim p50 vs smallest | replay p50 vs smallest | replay of any key p50 ms (vs smallest) |`,
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    ({ size, claim, replay, replayAny }) =>
      `| ${size} | ${claim.p50.toFixed(2)} | ${claim.p99.toFixed(2)} | ${replay.p50.toFixed(2)} | ${replay.p99.toFixed(2)} | ` +
      `${(claim.p50 / base.claim.p50).toFixed(2)} | ${(replay.p50 / base.replay.p50).toFixed(2)} | ` +
      `${replayAny.p50.toFixed(2)} (${(replayAny.p50 / base.replayAny.p50).toFixed(2)}) |`,
  ),
  '',
  `Purge of ${purge.records} expired records in batches of ${purgeBatch}: ${purge.batches} batches, ` +
    `longest ${purge.longestMs.toFixed(1)} ms, median ${purge.p50Ms.toFixed(1)} ms, ${purge.totalS.toFixed(1)} s in all.`,
].join('\n');
console.log(`\n${table}\n`);
if (args.markdown) writeFileSync(args.markdown, `${table}\n`);
await sql.end();
await dataSource.destroy();
