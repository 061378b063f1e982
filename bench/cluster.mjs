// npm run bench:cluster: what a cluster costs the idempotency store, against one server, in one run.
//
//   node bench/cluster.mjs [--duration 3] [--warmup 2] [--rounds 3] [--connections 18] [--only galera|redis]
//                          [--json out.json] [--markdown out.md]
//
// - galera (bench/cluster-galera.mjs): the built example API, 3 instances on the 3 nodes of the Galera
//   cluster of scripts/clusters/galera.sh (started if it is down) against 3 instances on one MariaDB
//   (BENCH_DATABASE_URL's server, default 127.0.0.1:3306); POST /v1/payments fresh (atomic mode, the
//   default, and IDEMPOTENCY_ATOMIC=off) and replayed (replay cache on, the default, and off); load spread
//   round robin per connection over the 3 instances. Needs the build (npm run bench:cluster runs it).
// - redis (bench/cluster-redis.mjs, imported when it is there): the Redis store in this process on the
//   Redis Cluster of scripts/clusters/redis-cluster.sh against one Redis (BENCH_REDIS_URL), fresh and
//   replay; --connections is its number of operations in flight.
// Each part measures its rows in interleaved rounds and keeps the median; every ratio is the cluster's
// figure over the single server's, same scenario, same run.
import { existsSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { benchClusterGalera } from './cluster-galera.mjs';
import { machine } from './support/report.mjs';

const PARTS = ['galera', 'redis'];
const REDIS_MODULE = join(import.meta.dirname, 'cluster-redis.mjs');

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '18' },
    only: { type: 'string' },
    json: { type: 'string' },
    markdown: { type: 'string' },
  },
});
const settings = {
  durationS: Number(args.duration),
  warmupS: Number(args.warmup),
  rounds: Number(args.rounds),
  connections: Number(args.connections),
};
for (const [name, value] of Object.entries(settings)) {
  if (!Number.isFinite(value) || value < 0 || (name !== 'warmupS' && value === 0)) throw new Error(`--${name}: "${value}" is not a positive number`);
}
const parts = new Set(args.only ? args.only.split(',').map((part) => part.trim()).filter(Boolean) : PARTS);
const unknown = [...parts].filter((part) => !PARTS.includes(part));
if (unknown.length) throw new Error(`--only: unknown part(s) ${unknown.join(', ')}: choose among ${PARTS.join(', ')}`);

/** The Redis part's rows in this table's shape, whatever the names bench/cluster-redis.mjs gives its fields. */
function redisRows(rows) {
  const perSecondOf = (row) => row.operationsPerSecond ?? row.requestsPerSecond ?? row.perSecond;
  return rows.map((row) => {
    const single = rows.find((other) => /one redis|single/i.test(other.target) && other.scenario === row.scenario);
    return {
      part: 'redis',
      target: row.target,
      scenario: row.scenario,
      unit: 'store operations',
      perSecond: perSecondOf(row),
      p50: row.p50,
      p99: row.p99,
      ratio: row.ratio ?? (single ? perSecondOf(row) / perSecondOf(single) : undefined),
      statuses: {},
      unexpected: row.errors ? ['errors'] : [],
      errors: row.errors ?? 0,
    };
  });
}

/** Runs bench/cluster-redis.mjs's exported bench function, if the file is there. */
async function benchRedis(notes) {
  if (!existsSync(REDIS_MODULE)) {
    notes.push('redis: skipped, bench/cluster-redis.mjs is not there');
    return [];
  }
  const module = await import(pathToFileURL(REDIS_MODULE).href);
  const bench = module.benchClusterRedis ?? module.default ?? Object.values(module).find((value) => typeof value === 'function' && /bench/i.test(value.name));
  if (typeof bench !== 'function') {
    notes.push('redis: skipped, bench/cluster-redis.mjs exports no bench function');
    return [];
  }
  const { durationS, warmupS, rounds, connections } = settings;
  const result = await bench({ durationS, warmupS, rounds, concurrency: connections });
  const rows = Array.isArray(result) ? result : result.rows;
  if (!Array.isArray(result) && result.notes) notes.push(...result.notes.map((note) => `redis: ${note}`));
  notes.push(
    `redis: ${bench.name} of bench/cluster-redis.mjs, the Redis store in this process (one client per target), ` +
      `${connections} operations in flight; one Redis and the Redis Cluster (3 masters, 3 replicas) share the machine`,
  );
  return redisRows(rows);
}

const number = (value) => (value === undefined || !Number.isFinite(value) ? '' : Number.isInteger(value) ? String(value) : value.toFixed(2));

function markdownTable(rows) {
  const lines = [
    '| part | target | scenario | measured | per s (median) | p50 ms | p99 ms | x single | statuses / errors |',
    '|---|---|---|---|---:|---:|---:|---:|---|',
  ];
  for (const row of rows) {
    const statuses = Object.entries(row.statuses).map(([status, count]) => `${status}: ${count}`);
    if (row.errors || !statuses.length) statuses.push(`errors: ${row.errors}`);
    lines.push(
      `| ${row.part} | ${row.target} | ${row.scenario} | ${row.unit} | ${row.perSecond.toFixed(0)} | ${number(row.p50)} | ` +
        `${number(row.p99)} | ${number(row.ratio)} | ${statuses.join(', ')}${row.unexpected.length ? ' **unexpected**' : ''} |`,
    );
  }
  return lines.join('\n');
}

const description =
  `${settings.connections} connections (Galera part) / operations in flight (Redis part); each row warmed up ${settings.warmupS} s, ` +
  `then measured ${settings.rounds} x ${settings.durationS} s interleaved with the other rows of its part, median kept; ` +
  '"x single": the row\'s per-second figure over the single server\'s (one MariaDB, one Redis), same scenario, same run; parts: ' +
  [...parts].join(', ');
const header = `Measured ${new Date().toISOString()} on ${machine()}; ${description}.`;
console.log(header);
const loadAtStart = loadavg()[0];
const runStarted = performance.now();
const rows = [];
const notes = [];
const failures = [];
if (parts.has('galera')) {
  console.log('galera: 3 instances per app set on the Galera cluster, 3 on one MariaDB');
  try {
    const galera = await benchClusterGalera(settings);
    rows.push(...galera.rows);
    notes.push(...galera.notes.map((note) => `galera: ${note}`));
  } catch (error) {
    failures.push(`galera: ${error?.stack ?? error}`);
  }
}
if (parts.has('redis')) {
  console.log('redis: the Redis store on the Redis Cluster and on one Redis');
  try {
    rows.push(...(await benchRedis(notes)));
  } catch (error) {
    failures.push(`redis: ${error?.stack ?? error}`);
  }
}
// Other work on the machine (a test suite on the same clusters) shows in the figures: say how busy it was.
notes.push(
  `1-minute load average ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end; ` +
    `${((performance.now() - runStarted) / 1000).toFixed(0)} s in all`,
);
const table = rows.length ? markdownTable(rows) : '(no rows)';
const text = `${header}\n\n${table}\n\n${notes.map((note) => `- ${note}`).join('\n')}\n`;
console.log(`\n${table}\n\n${notes.map((note) => `- ${note}`).join('\n')}\n`);
if (args.markdown) writeFileSync(args.markdown, text);
if (args.json) writeFileSync(args.json, JSON.stringify({ header, rows, notes, failures }, null, 2) + '\n');
const unexpected = rows.filter((row) => row.unexpected.length > 0);
if (unexpected.length) console.log(`UNEXPECTED statuses or errors in: ${unexpected.map((row) => `${row.part} ${row.target} ${row.scenario}`).join('; ')}`);
for (const failure of failures) console.error(`FAILED ${failure}`);
if (failures.length) process.exitCode = 1;
