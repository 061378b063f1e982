// npm run bench: what idempotency costs per request, side by side with the alternatives, in one run.
//
//   node bench/run.mjs [--duration 3] [--warmup 3] [--rewarm 2] [--rounds 3] [--connections 16] [--platforms express,fastify]
//                      [--only PARTS | --skip PARTS] [--no-peer] [--json out.json] [--markdown out.md]
//
//   PARTS, comma-separated: typeorm, cache-off, redis, atomic, peer, recovery (default: all of them).
//
// Needs the built example app (npm run bench builds it), MariaDB (BENCH_DATABASE_URL, default
// mysql://root@127.0.0.1:3306/idempotency_bench) and, for our Redis store and the peer, Redis
// (BENCH_REDIS_URL, default redis://127.0.0.1:6379; the run's keys are deleted at the end).
//
// Three groups of rows, each with its own baseline, and each ratio computed within its group:
// - ours: POST /v1/exports (one insert into MariaDB, 202) without a key, then with the TypeORM store
//   (fresh, replay, mismatch, replay with the replay cache off) and with our Redis store, and the same
//   handler on a route without @Idempotent() (what the global interceptor costs a route that does not
//   use it);
// - atomic: POST /v1/payments (one insert, 201) in atomic mode, against the same insert through the
//   same service on a route without @Idempotent();
// The apps are the example API with those two undecorated routes (bench/apps/with-unkeyed-routes.mjs).
// Every row also says how many statements MariaDB and how many commands and scripts Redis received
// per request, read from the servers' own counters around each sample (support/server-counters.mjs):
// a compound statement (BEGIN NOT ATOMIC ... END) is one statement; Redis counts each call a script
// makes as a command, so a client's round trips to Redis are its scripts and plain commands.
// - peer: @node-idempotency/nestjs on the exports route shape, against its route without @Idempotent().
// Every app of a platform runs at once and all their scenarios are interleaved, so every ratio
// compares samples taken side by side. Then, once, kill -9 recovery on the atomic and a plain route.
import { randomInt, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { ticksToMicroseconds } from './support/cpu.mjs';
import { measure } from './support/load.mjs';
import { requireService, run, startServer } from './support/processes.mjs';
import { measureKillRecovery } from './support/recovery.mjs';
import { openServerCounters } from './support/server-counters.mjs';
import { machine, printTables, writeReports } from './support/report.mjs';

const PARTS = ['typeorm', 'cache-off', 'redis', 'atomic', 'peer', 'recovery'];

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    rewarm: { type: 'string', default: '2' },
    connections: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    platforms: { type: 'string', default: 'express,fastify' },
    only: { type: 'string' },
    skip: { type: 'string' },
    json: { type: 'string' },
    markdown: { type: 'string' },
    'no-peer': { type: 'boolean', default: false },
  },
});
const load = { durationS: Number(args.duration), warmupS: Number(args.warmup), rewarmS: Number(args.rewarm), connections: Number(args.connections) };
const rounds = Number(args.rounds);
const platforms = args.platforms.split(',').map((platform) => platform.trim());
const parts = selectedParts();
const databaseUrl = new URL(process.env.BENCH_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/idempotency_bench');
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every Redis key of this run, ours and the peer's, starts with it. */
const redisPrefix = `idem-bench-${randomUUID().slice(0, 8)}`;
const PEER_DIR = join(import.meta.dirname, 'node-idempotency');
const OUR_APP = 'dist/src/main.js';
const BENCH_APP = join(import.meta.dirname, 'apps/with-unkeyed-routes.mjs');
const EXPORT = { datastreamId: 1 };
const PAYMENT = { amount: 100, currency: 'EUR', customerId: 'cus_bench' };

function selectedParts() {
  const list = (value) => value.split(',').map((part) => part.trim()).filter(Boolean);
  const chosen = new Set(args.only ? list(args.only) : PARTS);
  for (const part of args.skip ? list(args.skip) : []) chosen.delete(part);
  if (args['no-peer']) chosen.delete('peer');
  const unknown = [...chosen].filter((part) => !PARTS.includes(part));
  if (unknown.length) throw new Error(`unknown part(s) ${unknown.join(', ')}: choose among ${PARTS.join(', ')}`);
  return chosen;
}

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

function post(path, body, headers = {}, setupRequest) {
  return {
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', 'x-api-key': 'bench-key', ...headers },
    body: JSON.stringify(body),
    ...(setupRequest ? { setupRequest } : {}),
  };
}

const withNewKey = (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': randomUUID() } });

/** Sends one request with a new key and returns the key, for the replay and mismatch scenarios. */
async function prime(url, path, body, status) {
  const key = randomUUID();
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'bench-key', 'idempotency-key': key },
    body: JSON.stringify(body),
  });
  if (response.status !== status) throw new Error(`priming ${path} answered ${response.status}: ${await response.text()}`);
  return key;
}

/**
 * The apps of one platform and their scenarios. `part` is what --only/--skip select; a group's
 * baseline (`baseline: true`) runs whenever any other scenario of its group does.
 */
function appsOf(platform) {
  const ours = { DATABASE_URL: databaseUrl.toString(), API_KEYS: 'bench-key:bench', HTTP_PLATFORM: platform, RABBITMQ_URL: 'off' };
  const peer = { DATABASE_URL: databaseUrl.toString(), HTTP_PLATFORM: platform, REDIS_URL: redisUrl, KEY_PREFIX: `${redisPrefix}-peer` };
  const exportsScenarios = (part, names = {}) => [
    { name: names.fresh, part, request: () => post('/v1/exports', EXPORT, {}, withNewKey), expected: [202] },
    { name: names.replay, part, request: ({ replayKey }) => post('/v1/exports', EXPORT, { 'idempotency-key': replayKey }), expected: [202] },
  ];
  const replayKeyOf = (path, body, status) => async (url) => ({ replayKey: await prime(url, path, body, status) });
  return [
    {
      name: 'ours, TypeORM store',
      script: BENCH_APP,
      env: ours,
      prime: async (url) => ({
        replayKey: await prime(url, '/v1/exports', EXPORT, 202),
        mismatchKey: await prime(url, '/v1/exports', EXPORT, 202),
      }),
      scenarios: [
        { name: 'baseline', group: 'ours', baseline: true, request: () => post('/v1/exports', EXPORT), expected: [202] },
        { name: 'route without @Idempotent()', part: 'typeorm', request: () => post('/bench/exports-unkeyed', EXPORT), expected: [202] },
        ...exportsScenarios('typeorm', { fresh: 'fresh', replay: 'replay' }),
        {
          name: 'mismatch',
          part: 'typeorm',
          request: ({ mismatchKey }) => post('/v1/exports', { datastreamId: 2 }, { 'idempotency-key': mismatchKey }),
          expected: [422],
        },
      ],
    },
    {
      // Every replay a database round trip, as on an instance that did not see the key before.
      name: 'ours, TypeORM store, replay cache off',
      script: BENCH_APP,
      env: { ...ours, IDEMPOTENCY_REPLAY_CACHE: 'off' },
      prime: replayKeyOf('/v1/exports', EXPORT, 202),
      scenarios: [exportsScenarios('cache-off', { replay: 'replay, cache off' })[1]],
    },
    {
      // Replay cache off: every replay a Redis round trip, as the peer's are (a cached replay is the "replay" row).
      name: 'ours, Redis store',
      script: BENCH_APP,
      env: {
        ...ours,
        IDEMPOTENCY_STORE: 'redis',
        REDIS_URL: redisUrl,
        IDEMPOTENCY_REDIS_KEY_PREFIX: `${redisPrefix}-ours:`,
        IDEMPOTENCY_REPLAY_CACHE: 'off',
      },
      prime: replayKeyOf('/v1/exports', EXPORT, 202),
      scenarios: exportsScenarios('redis', { fresh: 'redis: fresh', replay: 'redis: replay, cache off' }),
    },
    {
      name: 'ours, atomic payments',
      script: BENCH_APP,
      env: ours,
      prime: replayKeyOf('/v1/payments', PAYMENT, 201),
      scenarios: [
        { name: 'atomic: baseline', group: 'atomic', baseline: true, request: () => post('/bench/payments-unkeyed', PAYMENT), expected: [201] },
        { name: 'atomic: fresh', group: 'atomic', part: 'atomic', request: () => post('/v1/payments', PAYMENT, {}, withNewKey), expected: [201] },
        {
          name: 'atomic: replay',
          group: 'atomic',
          part: 'atomic',
          request: ({ replayKey }) => post('/v1/payments', PAYMENT, { 'idempotency-key': replayKey }),
          expected: [201],
        },
      ],
    },
    {
      name: 'peer, Redis storage',
      script: join(PEER_DIR, 'dist/main.js'),
      cwd: PEER_DIR,
      env: { ...peer, STORAGE: 'redis' },
      prime: replayKeyOf('/v1/exports', EXPORT, 202),
      scenarios: [
        { name: 'peer baseline', group: 'peer', baseline: true, request: () => post('/v1/exports-unkeyed', EXPORT), expected: [202] },
        // The peer lets a request without a key through its interceptor, which then stores nothing.
        { name: 'peer: no key', group: 'peer', part: 'peer', request: () => post('/v1/exports', EXPORT), expected: [202] },
        ...exportsScenarios('peer', { fresh: 'peer redis: fresh', replay: 'peer redis: replay' }).map((s) => ({ ...s, group: 'peer' })),
      ],
    },
    {
      name: 'peer, memory storage',
      script: join(PEER_DIR, 'dist/main.js'),
      cwd: PEER_DIR,
      env: { ...peer, STORAGE: 'memory' },
      prime: replayKeyOf('/v1/exports', EXPORT, 202),
      scenarios: exportsScenarios('peer', { fresh: 'peer memory: fresh', replay: 'peer memory: replay' }).map((s) => ({ ...s, group: 'peer' })),
    },
  ].map((app) => ({ ...app, scenarios: app.scenarios.map((scenario) => ({ group: 'ours', ...scenario })) }));
}

/** Keeps the chosen scenarios, and each group's baseline when its group has any; drops apps left with none. */
function selected(apps) {
  const all = apps.flatMap((app) => app.scenarios);
  const groups = new Set(all.filter((scenario) => parts.has(scenario.part)).map((scenario) => scenario.group));
  return apps
    .map((app) => ({
      ...app,
      scenarios: app.scenarios.filter((scenario) => parts.has(scenario.part) || (scenario.baseline && groups.has(scenario.group))),
    }))
    .filter((app) => app.scenarios.length > 0);
}

/**
 * Warms every scenario up (the JIT needs seconds of each path before its speed settles), then
 * measures each `rounds` times, interleaved (a, b, c, a, b, c, ...), and keeps the median of each:
 * a burst of noise on this shared machine then hits one sample of every scenario alike instead of
 * all samples of one. Each sample follows `rewarmS` of its own load, unmeasured: an app that sat idle
 * while other apps' scenarios ran (25 s here) serves its first second at about 2x the CPU per
 * request and its second at 1.4x, while V8's memory reducer, which shrank the idle heap, lets it
 * grow back (with --no-memory-reducer the penalty is gone). Without the re-warm the baseline, first
 * after the idle, looked slower than with the app alone and inflated every ratio to it; a user's
 * app under steady load does not pay this.
 * CPU per request is the app process's user + system time over the sample divided by the requests
 * it completed.
 */
async function scenarios(results, platform, list) {
  for (const { url, request } of list) await measure({ url, request, ...load, warmupS: 0, durationS: load.warmupS });
  const samples = new Map(list.map(({ name }) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const { name, url, pid, request } of list) samples.get(name).push(await measure({ url, pid, request, counters, ...load, warmupS: load.rewarmS }));
  }
  const baselines = new Map(list.filter((scenario) => scenario.baseline).map((scenario) => [scenario.group, scenario.name]));
  for (const { name, group, expected } of list) {
    const runs = samples.get(name);
    const median = (pick) => runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
    const statuses = {};
    for (const run of runs) for (const [status, count] of Object.entries(run.statuses)) statuses[status] = (statuses[status] ?? 0) + count;
    const unexpected = Object.keys(statuses).filter((status) => !expected.includes(Number(status)));
    const row = {
      platform,
      group,
      baseline: baselines.get(group),
      scenario: name,
      requestsPerSecond: median((run) => run.requestsPerSecond),
      p50: median((run) => run.p50),
      p99: median((run) => run.p99),
      cpuPerRequestUs: median((run) => (run.completed ? ticksToMicroseconds(run.cpuTicks) / run.completed : NaN)),
      statementsPerRequest: median((run) => run.statements ?? NaN),
      commandsPerRequest: median((run) => run.commands ?? NaN),
      scriptsPerRequest: median((run) => run.scripts ?? NaN),
      statuses,
      unexpected,
      errors: runs.reduce((sum, run) => sum + run.errors, 0),
    };
    results.push(row);
    console.log(
      `  ${platform} ${name}: ${row.requestsPerSecond.toFixed(0)} req/s, ${row.cpuPerRequestUs.toFixed(0)} µs CPU/req, ` +
        `${row.statementsPerRequest.toFixed(2)} MariaDB statements/req, ${row.commandsPerRequest.toFixed(2)} Redis commands/req ` +
        `(${row.scriptsPerRequest.toFixed(2)} scripts)` +
        `${unexpected.length ? `  UNEXPECTED statuses ${unexpected}` : ''}`,
    );
  }
}

async function benchPlatform(results, platform) {
  const running = [];
  try {
    const list = [];
    // One after the other: starting apps compete for the two cores and run migrations.
    for (const app of selected(appsOf(platform))) {
      const server = await startServer(app.script, app.env, app.cwd ? '/v1/exports' : '/healthz', app.cwd);
      running.push(server);
      const context = await app.prime(server.url);
      for (const scenario of app.scenarios) {
        list.push({ ...scenario, url: server.url, pid: server.child.pid, request: scenario.request(context) });
      }
    }
    console.log(`${platform}: ${running.length} apps, ${list.length} scenarios`);
    await scenarios(results, platform, list);
  } finally {
    for (const server of running) await server.stop();
  }
}

/** The kill -9 recovery of the atomic payments route and of the plain exports route, on the first platform. */
async function benchRecovery(platform) {
  const env = { DATABASE_URL: databaseUrl.toString(), API_KEYS: 'bench-key:bench', HTTP_PLATFORM: platform, RATE_LIMIT_PER_MINUTE: '1000000' };
  // B answers 409 at once while the key is in flight, so each retry shows the key's state when sent.
  const inFlightWaitMs = '0';
  const sql = await mysql.createConnection(databaseUrl.toString());
  const rowsOf = (table, column, value) => async (answer) => {
    const [rows] = await sql.query(`SELECT id FROM ${table} WHERE ${column} = ?`, [value]);
    const ids = rows.map((row) => row.id);
    return `${ids.length}${answer?.id ? (ids.includes(answer.id) ? ", the 2xx's id among them" : ", not the 2xx's id") : ''}`;
  };
  const rows = [];
  try {
    const customerId = `cus_kill_${randomUUID().slice(0, 8)}`;
    rows.push({
      route: 'POST /v1/payments',
      mode: 'atomic',
      lease: 'default (60 s)',
      ...(await measureKillRecovery({
        script: OUR_APP,
        env: { ...env, IDEMPOTENCY_IN_FLIGHT_WAIT_MS: inFlightWaitMs },
        path: '/v1/payments',
        headers: { 'x-api-key': 'bench-key' },
        body: { ...PAYMENT, customerId, processingMs: 3000 },
        warmBody: PAYMENT,
        rowsOf: rowsOf('payments', 'customer_id', customerId),
      })),
    });
    console.log(`  recovery, atomic payments: ${JSON.stringify(rows.at(-1))}`);
    const datastreamId = randomInt(1000, 2 ** 31);
    rows.push({
      route: 'POST /v1/exports',
      mode: 'not atomic',
      // On both instances: A's claim carries A's lease.
      lease: 'IDEMPOTENCY_LOCK_TIMEOUT_MS=3000',
      ...(await measureKillRecovery({
        script: OUR_APP,
        env: { ...env, IDEMPOTENCY_IN_FLIGHT_WAIT_MS: inFlightWaitMs, IDEMPOTENCY_LOCK_TIMEOUT_MS: '3000' },
        path: '/v1/exports',
        headers: { 'x-api-key': 'bench-key' },
        body: { datastreamId, processingMs: 3000 },
        warmBody: EXPORT,
        rowsOf: rowsOf('export_jobs', 'datastream_id', datastreamId),
      })),
    });
    console.log(`  recovery, exports: ${JSON.stringify(rows.at(-1))}`);
  } finally {
    await sql.end();
  }
  const { clientTimeoutMs, retryEveryMs, capS, killedAfterMs } = rows[0];
  const settings =
    `${platform}, two instances A and B on one MariaDB database; a request with processingMs 3000 to A, A killed ` +
    `(SIGKILL) ${killedAfterMs} ms later, then the same key and body sent to B every ${retryEveryMs} ms after each ` +
    `answer (client timeout ${clientTimeoutMs} ms, IDEMPOTENCY_IN_FLIGHT_WAIT_MS=${inFlightWaitMs} on both, cap ${capS} s); ` +
    'the accepted retry runs the 3 s handler before its 2xx; rows: rows the key\'s request wrote, after the 2xx';
  return { rows, settings };
}

/** The newest modification time under the builds the apps load: a rebuild during the run mixes two versions. */
function buildStamp() {
  let newest = 0;
  const walk = (folder) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const folder of ['dist/src', 'libs/idempotency/dist']) if (existsSync(folder)) walk(folder);
  return newest;
}

function preparePeer() {
  if (!existsSync(join(PEER_DIR, 'node_modules'))) run('npm', ['ci', '--no-audit', '--no-fund'], PEER_DIR);
  run('npm', ['run', 'build', '--silent'], PEER_DIR);
}

/** Deletes every Redis key this run wrote (never FLUSHDB: the server may hold other data). */
async function deleteRunKeys() {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    let deleted = 0;
    for await (const keys of redis.scanStream({ match: `${redisPrefix}*`, count: 1000 })) {
      if (keys.length) deleted += await redis.unlink(...keys);
    }
    console.log(`deleted ${deleted} Redis keys under ${redisPrefix}`);
  } finally {
    redis.disconnect();
  }
}

const settings =
  `${load.connections} connections; each scenario warmed up ${load.warmupS} s, then measured ${rounds} x ${load.durationS} s ` +
  `interleaved with every other scenario of its platform (all its apps running), each sample after ${load.rewarmS} s of ` +
  'its own load, median kept; CPU: the app process\'s ' +
  'user + system time (/proc) per completed request; each ratio is to the row named in "baseline of the ratios", ' +
  'same platform, same run; the Redis rows run with the replay cache off';
console.log(`${machine()}; ${settings}; parts: ${[...parts].join(', ')}`);
await requireService('MariaDB', databaseUrl.hostname, Number(databaseUrl.port || 3306), 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd');
const usesRedis = parts.has('peer') || parts.has('redis');
if (usesRedis) {
  const redis = new URL(redisUrl);
  await requireService('Redis', redis.hostname, Number(redis.port || 6379), 'redis-server --daemonize yes --port 6379 --save "" --appendonly no');
}
if (parts.has('peer')) preparePeer();
await freshDatabase();
const counters = await openServerCounters({ databaseUrl, redisUrl: usesRedis ? redisUrl : undefined });
const builtAt = buildStamp();
const loadAtStart = loadavg()[0];
const results = [];
let recovery = { rows: [], settings: '' };
try {
  if ([...parts].some((part) => part !== 'recovery')) {
    for (const platform of platforms) await benchPlatform(results, platform);
  }
  if (parts.has('recovery')) recovery = await benchRecovery(platforms[0]);
} finally {
  await counters.close();
  if (usesRedis) await deleteRunKeys();
}
// Other work on the machine (a test suite, a build) shows in the figures: say how busy it was.
const notes = [`1-minute load average ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end`];
if (buildStamp() !== builtAt) {
  notes.push('WARNING: dist/src or libs/idempotency/dist was rebuilt during the run: apps started before and after it ran different builds');
}
printTables(results, recovery.rows, recovery.settings);
for (const note of notes) console.log(note);
writeReports(results, recovery.rows, `${settings}; ${notes.join('; ')}`, recovery.settings, args);
const unexpected = results.filter((row) => row.unexpected.length > 0);
if (unexpected.length) console.log(`UNEXPECTED statuses in: ${unexpected.map((row) => `${row.platform} ${row.scenario}`).join(', ')}`);
