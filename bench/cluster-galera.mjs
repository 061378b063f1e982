// The example API on a 3-node MariaDB Galera cluster against the same API on one MariaDB, in one run.
//
// Used by bench/cluster.mjs (npm run bench:cluster), which prints its rows.
//
// Each target runs the built example app (dist/src/main.js) as 3 instances per app set:
// - Galera: instance N has DATABASE_URL naming node N (127.0.0.1:3311-3313, database
//   idempotency_bench_galera); the cluster of scripts/clusters/galera.sh, started here if it is down;
// - single: the 3 instances share one MariaDB (BENCH_DATABASE_URL's server, default 127.0.0.1:3306,
//   database idempotency_bench_cluster_single).
// Both databases are dropped and created afresh at the start, and dropped at the end.
// Load: autocannon with the 3 instances' URLs, which gives connection i to instance i mod 3 (round robin
// per connection; keep-alive connections, so every request of a connection goes to its instance).
// Two app sets per target, the 3 instances of a set alike:
// - default (atomic mode on, the example's default with a DATABASE_URL; replay cache on): fresh, replay;
// - IDEMPOTENCY_ATOMIC=off and IDEMPOTENCY_REPLAY_CACHE=off: fresh (non-atomic), and replay with every
//   replay a database round trip (as on an instance that had not seen the key before).
// Fresh: POST /v1/payments with a new Idempotency-Key per request. Replay: one key, primed once, and the
// same body, repeated. Every scenario is warmed up, then measured `rounds` times, interleaved (each round
// runs every scenario on Galera and on the single server back to back, alternating which goes first),
// median kept; the ratio is Galera / single, same scenario, same run.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { measure } from './support/load.mjs';
import { requireService, startServer } from './support/processes.mjs';

const GALERA_SCRIPT = join(import.meta.dirname, '../scripts/clusters/galera.sh');
const APP = 'dist/src/main.js';
const API_KEY = 'bench-key';
const PAYMENT = { amount: 100, currency: 'EUR', customerId: 'cus_bench' };
const GALERA_NODES = [3311, 3312, 3313].map((port) => ({ host: '127.0.0.1', port }));
const GALERA_DATABASE = 'idempotency_bench_galera';
const SINGLE_DATABASE = 'idempotency_bench_cluster_single';
const INSTANCES = 3;

function serverOf(url) {
  return {
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
  };
}

function urlOf({ host, port, user = 'root', password = '' }, database) {
  const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);
  return `mysql://${auth}@${host}:${port}/${database}`;
}

async function onServer(server, statements) {
  const admin = await mysql.createConnection({ user: 'root', password: '', ...server });
  try {
    for (const statement of statements) await admin.query(statement);
  } finally {
    await admin.end();
  }
}

const recreate = (name) => [`DROP DATABASE IF EXISTS \`${name}\``, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`];

/** The settings that decide what a commit costs on `server`, as one phrase. */
async function commitSettings(server) {
  const connection = await mysql.createConnection({ user: 'root', password: '', ...server });
  try {
    const [[row]] = await connection.query(
      'SELECT @@version AS version, @@innodb_flush_log_at_trx_commit AS flush, @@log_bin AS binlog, @@wsrep_on AS wsrep',
    );
    return `MariaDB ${row.version.split('-')[0]}, innodb_flush_log_at_trx_commit=${row.flush}, log_bin=${row.binlog ? 'ON' : 'OFF'}, wsrep_on=${row.wsrep ? 'ON' : 'OFF'}`;
  } finally {
    await connection.end();
  }
}

/** Sum over the Galera nodes of the status counters that show conflicts between nodes. */
async function galeraCounters() {
  const totals = { wsrep_local_cert_failures: 0, wsrep_local_bf_aborts: 0 };
  for (const node of GALERA_NODES) {
    const connection = await mysql.createConnection({ ...node, user: 'root', password: '' });
    try {
      const [rows] = await connection.query(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')",
      );
      for (const row of rows) totals[row.Variable_name.toLowerCase()] += Number(row.Value);
    } finally {
      await connection.end();
    }
  }
  return totals;
}

function post(headers) {
  return {
    method: 'POST',
    path: '/v1/payments',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY, ...headers },
    body: JSON.stringify(PAYMENT),
  };
}

const freshRequest = () => ({
  ...post({}),
  setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': randomUUID() } }),
});

async function prime(url) {
  const key = randomUUID();
  const response = await fetch(`${url}/v1/payments`, { ...post({ 'idempotency-key': key }) });
  if (response.status !== 201) throw new Error(`priming the replay key answered ${response.status}: ${await response.text()}`);
  return key;
}

// Two app sets per target rather than three: the replay cache only adds an in-memory copy after a
// completion (microseconds, against milliseconds of commits), so the fresh IDEMPOTENCY_ATOMIC=off row
// runs on the set whose replay cache is off too, and each target starts 6 instances, not 9.
const SETS = [
  {
    env: {},
    scenarios: [
      { name: 'fresh, atomic (default)', request: () => freshRequest() },
      { name: 'replay', request: ({ replayKey }) => post({ 'idempotency-key': replayKey }) },
    ],
  },
  {
    env: { IDEMPOTENCY_ATOMIC: 'off', IDEMPOTENCY_REPLAY_CACHE: 'off' },
    scenarios: [
      { name: 'fresh, IDEMPOTENCY_ATOMIC=off', request: () => freshRequest() },
      { name: 'replay, IDEMPOTENCY_REPLAY_CACHE=off', request: ({ replayKey }) => post({ 'idempotency-key': replayKey }) },
    ],
  },
];
/** The order of the rows, and of the scenarios in each round. */
const SCENARIO_ORDER = ['fresh, atomic (default)', 'fresh, IDEMPOTENCY_ATOMIC=off', 'replay', 'replay, IDEMPOTENCY_REPLAY_CACHE=off'];

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Starts both targets' instances, measures every scenario on both, interleaved, and returns one row per
 * (target, scenario) with its ratio to the single server; `log` receives progress lines.
 */
export async function benchClusterGalera({ durationS = 3, warmupS = 2, rounds = 3, connections = 18, log = console.log } = {}) {
  const singleServer = serverOf(new URL(process.env.BENCH_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/'));
  await requireService('MariaDB', singleServer.host, singleServer.port, 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd');
  // Idempotent and quick when the 3 nodes are Synced; never stops or restarts a running node.
  execFileSync('bash', [GALERA_SCRIPT, 'start'], { stdio: 'inherit', timeout: 180_000 });
  await onServer(GALERA_NODES[0], recreate(GALERA_DATABASE));
  await onServer(singleServer, recreate(SINGLE_DATABASE));
  const targets = [
    { name: 'Galera, 3 nodes', urls: GALERA_NODES.map((node) => urlOf(node, GALERA_DATABASE)) },
    { name: 'one MariaDB', urls: Array.from({ length: INSTANCES }, () => urlOf(singleServer, SINGLE_DATABASE)) },
  ];
  const base = { API_KEYS: `${API_KEY}:bench`, RATE_LIMIT_PER_MINUTE: '1000000000', RABBITMQ_URL: 'off', NODE_OPTIONS: '' };
  const running = [];
  const startedAt = performance.now();
  const load = { connections, warmupS: 0 };
  try {
    // pairs: scenario name -> { target name -> { url list, request, samples } }
    const pairs = new Map(SCENARIO_ORDER.map((name) => [name, new Map()]));
    for (const target of targets) {
      for (const set of SETS) {
        // The target's first instance alone, as it runs the migrations; then each set's others at once
        // (starting is mostly CPU, and two cores are shared with the servers: not more than 3 at a time).
        const env = (databaseUrl) => ({ ...base, ...set.env, DATABASE_URL: databaseUrl });
        const start = (databaseUrl) => startServer(APP, env(databaseUrl), '/healthz').then((server) => (running.push(server), server));
        const first = set === SETS[0] ? [await start(target.urls[0])] : [];
        const servers = [...first, ...(await Promise.all(target.urls.slice(first.length).map(start)))];
        const urls = servers.map((server) => server.url);
        const context = set.scenarios.some((scenario) => scenario.name.startsWith('replay')) ? { replayKey: await prime(urls[0]) } : {};
        for (const scenario of set.scenarios) {
          pairs.get(scenario.name).set(target.name, { urls, request: scenario.request(context), samples: [] });
        }
      }
      log(`  ${target.name}: ${INSTANCES * SETS.length} instances up (${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
    }
    const countersBefore = await galeraCounters();
    // The JIT needs seconds of each path, and each instance's pool its connections, before speed settles.
    if (warmupS > 0) {
      for (const [, byTarget] of pairs) {
        for (const { urls, request } of byTarget.values()) await measure({ url: urls, request, ...load, durationS: warmupS });
      }
      log(`  every scenario warmed up (${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
    }
    for (let round = 0; round < rounds; round++) {
      for (const [, byTarget] of pairs) {
        const order = [...byTarget.values()];
        if (round % 2 === 1) order.reverse();
        for (const pair of order) pair.samples.push(await measure({ url: pair.urls, request: pair.request, ...load, durationS }));
      }
      log(`  round ${round + 1} of ${rounds} done (${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
    }
    const countersAfter = await galeraCounters();
    const rows = [];
    for (const [name, byTarget] of pairs) {
      for (const [targetName, { samples }] of byTarget) {
        const statuses = {};
        for (const sample of samples) for (const [status, count] of Object.entries(sample.statuses)) statuses[status] = (statuses[status] ?? 0) + count;
        rows.push({
          part: 'galera',
          target: targetName,
          scenario: name,
          unit: 'HTTP requests',
          perSecond: median(samples.map((sample) => sample.requestsPerSecond)),
          p50: median(samples.map((sample) => sample.p50)),
          p99: median(samples.map((sample) => sample.p99)),
          statuses,
          unexpected: Object.keys(statuses).filter((status) => status !== '201'),
          errors: samples.reduce((sum, sample) => sum + sample.errors, 0),
        });
      }
    }
    for (const row of rows) {
      const single = rows.find((other) => other.target === 'one MariaDB' && other.scenario === row.scenario);
      row.ratio = row.perSecond / single.perSecond;
    }
    const conflicts = Object.entries(countersAfter)
      .map(([name, value]) => `${name} +${value - countersBefore[name]}`)
      .join(', ');
    return {
      rows,
      notes: [
        `Galera: ${INSTANCES} instances per app set, instance N on node N (ports ${GALERA_NODES.map((node) => node.port).join(', ')}); ` +
          `one MariaDB: ${INSTANCES} instances on ${singleServer.host}:${singleServer.port}; ${connections} connections spread ` +
          `round robin per connection over the ${INSTANCES} instances (${(connections / INSTANCES).toFixed(connections % INSTANCES ? 1 : 0)} each)`,
        `servers: Galera node 1: ${await commitSettings(GALERA_NODES[0])}; one MariaDB: ${await commitSettings(singleServer)}`,
        `Galera conflict counters over the measured part, summed over the nodes (other clients of the cluster included): ${conflicts}`,
      ],
    };
  } finally {
    for (const server of running) await server.stop();
    await onServer(GALERA_NODES[0], [`DROP DATABASE IF EXISTS \`${GALERA_DATABASE}\``]).catch(() => undefined);
    await onServer(singleServer, [`DROP DATABASE IF EXISTS \`${SINGLE_DATABASE}\``]).catch(() => undefined);
  }
}
