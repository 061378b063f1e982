import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type AppProcess, codeOf, type RawAnswer, runConcurrently, send, shuffled, startAppProcess } from './support/app-process.js';
import {
  certificationLosses,
  createGaleraDatabase,
  galeraRows,
  galeraUrl,
  killGaleraNode,
  restartGaleraNode,
  startGalera,
  type GaleraNode,
} from './support/galera-cluster.js';

// Issue 22: a 3-node MariaDB Galera cluster (scripts/clusters/galera.sh), one app instance writing
// through each node, with nothing configured beyond a DATABASE_URL naming that one node.
const KEYS = 100;
const COPIES = 20;

const paymentBody = (run: string, index: number) => ({ amount: 100 + index, currency: 'EUR', customerId: `cus_${run}_${index}` });

/** Payments per customer of this run, read through node 1 after it caught up with the cluster. */
async function paymentsPerKey(database: string, run: string): Promise<number[]> {
  const rows = await galeraRows<{ n: number | string }>(
    1,
    `SELECT COUNT(*) AS n FROM \`${database}\`.payments WHERE customer_id LIKE ? GROUP BY customer_id`,
    [`cus_${run}_%`],
  );
  return rows.map((row) => Number(row.n));
}

/** How many requests of a fleet ended as `lost_claim` (R27 metrics): runs whose work was rolled back for another's. */
async function lostClaims(fleet: readonly AppProcess[]): Promise<number> {
  let total = 0;
  for (const instance of fleet) {
    const text = await (await fetch(`${instance.url}/metrics`)).text();
    for (const match of text.matchAll(/^idempotency_requests_total\{[^}]*outcome="lost_claim"[^}]*\} (\d+)/gm)) total += Number(match[1]);
  }
  return total;
}

async function startFleet(database: string, atomic: boolean, extra: Record<string, string> = {}): Promise<AppProcess[]> {
  // Exactly-once under contention is the point here, not outages: a generous store timeout keeps a
  // CPU-starved moment on a shared two-core machine (three mariadbd and three apps) from becoming a 503.
  const env = (node: GaleraNode) => ({
    DATABASE_URL: galeraUrl(node, database),
    IDEMPOTENCY_ATOMIC: atomic ? 'on' : 'off',
    IDEMPOTENCY_STORE_TIMEOUT_MS: '20000',
    ...extra,
  });
  // The first instance runs the migrations (replicated to every node); the others start once the tables exist.
  const first = await startAppProcess(env(1));
  return [first, ...(await Promise.all([startAppProcess(env(2)), startAppProcess(env(3))]))];
}

beforeAll(() => startGalera(), 300_000);

describe.each([
  ['atomic', true],
  ['non-atomic', false],
] as const)('three instances, each writing through its own Galera node, POST /v1/payments in %s mode', (mode, atomic) => {
  let database: { name: string; drop(): Promise<void> };
  let fleet: AppProcess[] = [];

  beforeAll(async () => {
    database = await createGaleraDatabase(`idempotency_galera_race_${mode.replace('-', '_')}`);
    fleet = await startFleet(database.name, atomic);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(fleet.map((instance) => instance.stop()));
    await database?.drop();
  });

  it(`runs each key's handler exactly once under ${KEYS * COPIES} concurrent requests spread over the three nodes; a certification conflict is a lost race, never a 5xx: every 2xx for a key is byte-identical and every other answer is 409 (R6, R8, R9, R11, R22a)`, async () => {
    const run = randomUUID().slice(0, 8);
    const keys = Array.from({ length: KEYS }, () => randomUUID());
    const lossesBefore = await certificationLosses();
    const tasks = shuffled(
      keys.flatMap((key, index) =>
        Array.from({ length: COPIES }, (_, copy) => async () => ({
          index,
          answer: await send(fleet[(index + copy) % fleet.length].url, 'POST', '/v1/payments', { key, body: paymentBody(run, index) }),
        })),
      ),
    );

    const results = await runConcurrently(tasks, 60);

    if (results.some(({ answer }) => answer.status >= 500)) {
      const errors = fleet.flatMap((instance) => instance.output().split('\n').filter((line) => /ERROR|Error/.test(line)));
      console.log(`server errors:\n${errors.slice(-30).join('\n')}`);
    }
    const byKey = new Map<number, RawAnswer[]>();
    for (const { index, answer } of results) byKey.set(index, [...(byKey.get(index) ?? []), answer]);
    for (const answers of byKey.values()) {
      const successes = answers.filter((answer) => answer.status === 201);
      const others = answers.filter((answer) => answer.status !== 201);
      expect(successes.length).toBeGreaterThan(0);
      expect(successes.every((answer) => answer.body.equals(successes[0].body))).toBe(true);
      expect(others.map((answer) => [answer.status, codeOf(answer)])).toEqual(others.map(() => [409, 'idempotency_conflict']));
    }
    const perKey = await paymentsPerKey(database.name, run);
    expect(perKey).toHaveLength(KEYS);
    expect(perKey.every((count) => count === 1)).toBe(true);

    // The figures the README quotes: how often a run lost its key to another node's commit.
    const statuses = Object.entries(
      results.reduce<Record<number, number>>((tally, { answer }) => ({ ...tally, [answer.status]: (tally[answer.status] ?? 0) + 1 }), {}),
    );
    console.log(
      `galera ${mode}: ${results.length} requests over ${KEYS} keys, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ` +
        `${(await certificationLosses()) - lossesBefore} transactions rolled back by certification, ` +
        `${await lostClaims(fleet)} runs ended as lost_claim`,
    );
  }, 240_000);

  it('lets exactly one of two bodies sent concurrently with one key through different nodes execute: the other body gets 422, and the winner replays through every node (R10, R16a)', async () => {
    const key = randomUUID();
    const run = randomUUID().slice(0, 8);
    const bodies = [paymentBody(run, 1), paymentBody(run, 2)];
    const tasks = Array.from({ length: 30 }, (_, i) => async () => ({
      sent: bodies[i % 2],
      answer: await send(fleet[i % fleet.length].url, 'POST', '/v1/payments', { key, body: bodies[i % 2] }),
    }));

    const results = await runConcurrently(shuffled(tasks), 30);

    expect(await paymentsPerKey(database.name, run)).toEqual([1]);
    const winner = results.find(({ answer }) => answer.status === 201);
    expect(winner).toBeDefined();
    for (const { sent, answer } of results) {
      if (sent === winner!.sent) {
        expect([201, 409]).toContain(answer.status);
        if (answer.status === 201) expect(answer.body.equals(winner!.answer.body)).toBe(true);
      } else {
        expect([answer.status, codeOf(answer)]).toEqual([422, 'idempotency_key_reuse']);
      }
    }
    for (const instance of fleet) {
      const replay = await send(instance.url, 'POST', '/v1/payments', { key, body: winner!.sent });
      expect([replay.status, replay.headers.get('idempotency-replayed')]).toEqual([201, 'true']);
      expect(replay.body.equals(winner!.answer.body)).toBe(true);
    }
  }, 120_000);
});

describe('a Galera node killed (kill -9) under load, atomic mode', () => {
  let database: { name: string; drop(): Promise<void> };
  let fleet: AppProcess[] = [];
  const VICTIM: GaleraNode = 3;

  beforeAll(async () => {
    database = await createGaleraDatabase('idempotency_galera_kill');
    fleet = await startFleet(database.name, true);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(fleet.map((instance) => instance.stop()));
    // Whatever happened, the next suite finds three nodes.
    startGalera();
    await database?.drop();
  }, 300_000);

  it('fails closed through the dead node (503, never 500), goes on through the others, runs no key twice, and serves through the node again once it rejoins (R6, R18, R22a)', async () => {
    const run = randomUUID().slice(0, 8);
    const keys = Array.from({ length: 60 }, () => randomUUID());
    const answers = new Map<number, Array<{ via: number; phase: string; answer: RawAnswer }>>();
    const record = (index: number, via: number, phase: string, answer: RawAnswer) =>
      answers.set(index, [...(answers.get(index) ?? []), { via, phase, answer }]);
    // Every key is sent through every instance in turn, as a client retrying against a load balancer would.
    const wave = (phase: string, through: readonly number[], indexes: readonly number[]) =>
      runConcurrently(
        indexes.flatMap((index) =>
          through.map((via) => async () => {
            const answer = await send(fleet[via].url, 'POST', '/v1/payments', { key: keys[index], body: paymentBody(run, index), timeoutMs: 60_000 });
            record(index, via, phase, answer);
          }),
        ),
        24,
      );

    const before = wave('before', [0, 1, 2], keys.map((_, index) => index).slice(0, 30));
    await new Promise((resolve) => setTimeout(resolve, 300));
    killGaleraNode(VICTIM);
    await before;
    await wave('down', [0, 1, 2], keys.map((_, index) => index).slice(30));
    restartGaleraNode(VICTIM);
    await wave('rejoined', [2, 0, 1], keys.map((_, index) => index));

    const all = [...answers.values()].flat();
    // Fail closed: nothing through any node was a 500.
    const failures = all.filter(({ answer }) => answer.status >= 500 && answer.status !== 503);
    expect(failures.map(({ via, phase, answer }) => `${phase} via ${via}: ${answer.status} ${answer.body.toString()}`)).toEqual([]);
    // While the node was down, requests through it were refused (503) and the others went on.
    const down = all.filter(({ phase }) => phase === 'down');
    expect(down.filter(({ via }) => via === VICTIM - 1).every(({ answer }) => answer.status === 503)).toBe(true);
    expect(down.filter(({ via }) => via !== VICTIM - 1).every(({ answer }) => answer.status === 201 || answer.status === 409)).toBe(true);
    expect(down.some(({ via, answer }) => via !== VICTIM - 1 && answer.status === 201)).toBe(true);
    // Rejoined: every key answers through the revived node, with its one stored payment.
    const rejoined = all.filter(({ phase, via }) => phase === 'rejoined' && via === VICTIM - 1);
    expect(rejoined).toHaveLength(keys.length);
    expect(rejoined.every(({ answer }) => answer.status === 201)).toBe(true);
    for (const perKey of answers.values()) {
      const created = perKey.filter(({ answer }) => answer.status === 201);
      expect(created.every(({ answer }) => answer.body.equals(created[0].answer.body))).toBe(true);
    }
    const perKey = await paymentsPerKey(database.name, run);
    expect(perKey).toHaveLength(keys.length);
    expect(perKey.every((count) => count === 1)).toBe(true);
    const statuses = all.reduce<Record<string, number>>((tally, { phase, answer }) => {
      const label = `${phase}:${answer.status}`;
      return { ...tally, [label]: (tally[label] ?? 0) + 1 };
    }, {});
    console.log(`galera node kill: ${all.length} requests over ${keys.length} keys, statuses ${JSON.stringify(statuses)}`);
  }, 300_000);
});
