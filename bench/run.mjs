// npm run bench: what idempotency costs per request, side by side with the alternatives, in one run.
//
//   node bench/run.mjs [--duration 3] [--warmup 3] [--rounds 3] [--connections 16] [--platforms express,fastify]
//                      [--json out.json] [--markdown out.md] [--no-peer]
//
// Needs the built example app (npm run bench builds it), MariaDB (BENCH_DATABASE_URL, default
// mysql://root@127.0.0.1:3306/idempotency_bench) and, for the peer, Redis on 127.0.0.1:6379.
// Every scenario drives the same route shape: POST /v1/exports, one insert into MariaDB, 202.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { measure } from './support/load.mjs';
import { requireService, run, startServer } from './support/processes.mjs';
import { machine, markdownTable, writeReports } from './support/report.mjs';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    platforms: { type: 'string', default: 'express,fastify' },
    json: { type: 'string' },
    markdown: { type: 'string' },
    'no-peer': { type: 'boolean', default: false },
  },
});
const load = { durationS: Number(args.duration), warmupS: Number(args.warmup), connections: Number(args.connections) };
const rounds = Number(args.rounds);
const platforms = args.platforms.split(',').map((platform) => platform.trim());
const databaseUrl = new URL(process.env.BENCH_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/idempotency_bench');
const PEER_DIR = join(import.meta.dirname, 'node-idempotency');
const PATH = '/v1/exports';

async function freshDatabase() {
  const name = databaseUrl.pathname.slice(1);
  const admin = await mysql.createConnection({
    host: databaseUrl.hostname,
    port: Number(databaseUrl.port || 3306),
    user: decodeURIComponent(databaseUrl.username || 'root'),
    password: decodeURIComponent(databaseUrl.password),
  });
  await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  await admin.end();
}

function post(body, headers = {}, setupRequest) {
  return {
    method: 'POST',
    path: PATH,
    headers: { 'content-type': 'application/json', 'x-api-key': 'bench-key', ...headers },
    body: JSON.stringify(body),
    ...(setupRequest ? { setupRequest } : {}),
  };
}

const withNewKey = (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': randomUUID() } });

async function prime(url, key, body) {
  const response = await fetch(`${url}${PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'bench-key', 'idempotency-key': key },
    body: JSON.stringify(body),
  });
  if (response.status !== 202) throw new Error(`priming ${PATH} answered ${response.status}`);
}

/**
 * Warms every scenario up (the JIT needs seconds of each path before its speed settles), then
 * measures each `rounds` times, interleaved (a, b, c, a, b, c, ...), and keeps the median of each:
 * a burst of noise on this shared machine then hits one sample of every scenario alike instead of
 * all samples of one.
 */
async function scenarios(results, platform, url, list) {
  for (const { request } of list) await measure({ url, request, ...load, warmupS: 0, durationS: load.warmupS });
  const samples = new Map(list.map(({ name }) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const { name, request } of list) samples.get(name).push(await measure({ url, request, ...load, warmupS: 0 }));
  }
  for (const { name, expected } of list) {
    const runs = samples.get(name);
    const median = (pick) => runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
    const statuses = {};
    for (const run of runs) for (const [status, count] of Object.entries(run.statuses)) statuses[status] = (statuses[status] ?? 0) + count;
    const unexpected = Object.keys(statuses).filter((status) => !expected.includes(Number(status)));
    const row = {
      platform,
      scenario: name,
      requestsPerSecond: median((run) => run.requestsPerSecond),
      p50: median((run) => run.p50),
      p99: median((run) => run.p99),
      statuses,
      errors: runs.reduce((sum, run) => sum + run.errors, 0),
    };
    results.push(row);
    console.log(`  ${platform} ${name}: ${row.requestsPerSecond.toFixed(0)} req/s${unexpected.length ? `  UNEXPECTED statuses ${unexpected}` : ''}`);
  }
}

async function withApp(script, env, ready, cwd, work) {
  const app = await startServer(script, env, ready, cwd);
  try {
    await work(app.url);
  } finally {
    await app.stop();
  }
}

async function benchOurs(results, platform) {
  const env = { DATABASE_URL: databaseUrl.toString(), API_KEYS: 'bench-key:bench', HTTP_PLATFORM: platform };
  await withApp('dist/src/main.js', env, '/healthz', process.cwd(), async (url) => {
    const replayKey = randomUUID();
    await prime(url, replayKey, { datastreamId: 1 });
    const mismatchKey = randomUUID();
    await prime(url, mismatchKey, { datastreamId: 1 });
    await scenarios(results, platform, url, [
      { name: 'baseline', request: post({ datastreamId: 1 }), expected: [202] },
      { name: 'fresh', request: post({ datastreamId: 1 }, {}, withNewKey), expected: [202] },
      { name: 'replay', request: post({ datastreamId: 1 }, { 'idempotency-key': replayKey }), expected: [202] },
      { name: 'mismatch', request: post({ datastreamId: 2 }, { 'idempotency-key': mismatchKey }), expected: [422] },
    ]);
  });
  // Every replay a database round trip, as on an instance that did not see the key before.
  await withApp('dist/src/main.js', { ...env, IDEMPOTENCY_REPLAY_CACHE: 'off' }, '/healthz', process.cwd(), async (url) => {
    const replayKey = randomUUID();
    await prime(url, replayKey, { datastreamId: 1 });
    await scenarios(results, platform, url, [
      { name: 'replay, cache off', request: post({ datastreamId: 1 }, { 'idempotency-key': replayKey }), expected: [202] },
    ]);
  });
}

async function benchPeer(results, platform, storage) {
  const env = { DATABASE_URL: databaseUrl.toString(), STORAGE: storage, HTTP_PLATFORM: platform };
  await withApp(join(PEER_DIR, 'dist/main.js'), env, PATH, PEER_DIR, async (url) => {
    const replayKey = randomUUID();
    await prime(url, replayKey, { datastreamId: 1 });
    await scenarios(results, platform, url, [
      { name: `peer ${storage}: fresh`, request: post({ datastreamId: 1 }, {}, withNewKey), expected: [202] },
      { name: `peer ${storage}: replay`, request: post({ datastreamId: 1 }, { 'idempotency-key': replayKey }), expected: [202] },
    ]);
  });
}

function preparePeer() {
  if (!existsSync(join(PEER_DIR, 'node_modules'))) run('npm', ['ci', '--no-audit', '--no-fund'], PEER_DIR);
  run('npm', ['run', 'build', '--silent'], PEER_DIR);
}

const settings = `${load.connections} connections; each scenario warmed up ${load.warmupS} s, then measured ${rounds} x ${load.durationS} s interleaved with the others, median kept`;
console.log(`${machine()}; ${settings}`);
await requireService('MariaDB', databaseUrl.hostname, Number(databaseUrl.port || 3306), 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd');
if (!args['no-peer']) {
  await requireService('Redis', '127.0.0.1', 6379, 'redis-server --daemonize yes --port 6379 --save "" --appendonly no');
  preparePeer();
}
await freshDatabase();
const results = [];
for (const platform of platforms) {
  await benchOurs(results, platform);
  if (!args['no-peer']) {
    await benchPeer(results, platform, 'redis');
    await benchPeer(results, platform, 'memory');
  }
}
console.log(`\n${markdownTable(results)}\n`);
writeReports(results, settings, args);
