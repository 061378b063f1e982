import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  IdempotencyConflictError,
  IdempotencyKeyReuseError,
  IdempotencyService,
  IdempotencyTransaction,
  type RunOnceContext,
} from 'nestjs-idempotency';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { queryRows, type DatabaseKind } from './support/test-database.js';

const DATABASES: ReadonlyArray<readonly [DatabaseKind, string]> = [
  ['mariadb', 'run_once'],
  ['postgres', 'run_once'],
  ['sqlite', 'run_once_sqlite'],
];

/** A promise the test settles when it chooses, so "still in flight" is a fact, not a guess at timing. */
function gate<T = void>(): { readonly promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** The rejection of `promise`, or a failure if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe.each(DATABASES)('IdempotencyService.runOnce on %s', (database, suite) => {
  let probe: RunningProbeApp;
  let service: IdempotencyService;

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform: 'express', suite });
    service = probe.app.get(IdempotencyService);
  });

  afterAll(async () => {
    await probe?.close();
  });

  const scope = 'webhook:stripe';

  it('runs the function once for 20 concurrent calls with one key and gives every call its result; a later call gets the stored result without running it (R23, R11, R9)', async () => {
    const key = `evt_${randomUUID()}`;
    let runs = 0;
    const work = async (): Promise<{ eventId: string; handled: number; lines: Array<number | string> }> => {
      runs++;
      await sleep(50);
      return { eventId: key, handled: runs, lines: [1, 'two', 3] };
    };
    const results = await Promise.all(Array.from({ length: 20 }, () => service.runOnce({ scope, key }, work)));
    const expected = { eventId: key, handled: 1, lines: [1, 'two', 3] };
    expect(runs).toBe(1);
    for (const result of results) expect(result).toEqual(expected);

    const later = await service.runOnce({ scope, key }, work);
    expect(later).toEqual(expected);
    expect(runs).toBe(1);
  });

  it('rejects the same key with another fingerprint with IdempotencyKeyReuseError (code idempotency_key_reuse) without running the function (R23, R10)', async () => {
    const key = `evt_${randomUUID()}`;
    let runs = 0;
    await service.runOnce({ scope, key, fingerprint: 'payload-a' }, () => ++runs);
    const error = await rejectionOf(service.runOnce({ scope, key, fingerprint: 'payload-b' }, () => ++runs));
    expect(error).toBeInstanceOf(IdempotencyKeyReuseError);
    expect((error as IdempotencyKeyReuseError).code).toBe('idempotency_key_reuse');
    expect(runs).toBe(1);
    expect(await service.runOnce({ scope, key, fingerprint: 'payload-a' }, () => ++runs)).toBe(1);
  });

  it('rejects another fingerprint at once while the first call is still in flight, without waiting for it (R23, R10)', async () => {
    const key = `evt_${randomUUID()}`;
    const started = gate();
    const release = gate();
    let firstDone = false;
    const first = service
      .runOnce({ scope, key, fingerprint: 'payload-a' }, async () => {
        started.open();
        await release.promise;
        return 'first';
      })
      .finally(() => {
        firstDone = true;
      });
    await started.promise;
    const error = await rejectionOf(service.runOnce({ scope, key, fingerprint: 'payload-b' }, () => 'second'));
    expect(error).toBeInstanceOf(IdempotencyKeyReuseError);
    expect((error as IdempotencyKeyReuseError).code).toBe('idempotency_key_reuse');
    expect(firstDone).toBe(false);
    release.open();
    expect(await first).toBe('first');
  });

  it('rejects with the error the function threw and releases the key: the next call with that key runs the function again (R23, R14)', async () => {
    const key = `evt_${randomUUID()}`;
    const failure = new Error('the webhook handler failed');
    let runs = 0;
    const error = await rejectionOf(
      service.runOnce({ scope, key }, () => {
        runs++;
        throw failure;
      }),
    );
    expect(error).toBe(failure);

    const retried = await service.runOnce({ scope, key }, () => {
      runs++;
      return { retried: true };
    });
    expect(retried).toEqual({ retried: true });
    expect(runs).toBe(2);
  });

  it('rejects a second call with idempotency_conflict once its inFlightWaitMs runs out while the first is still in flight, and lets a call with the default wait get the result (R23, R11)', async () => {
    const key = `evt_${randomUUID()}`;
    const started = gate();
    const release = gate();
    let runs = 0;
    const first = service.runOnce({ scope, key }, async () => {
      runs++;
      started.open();
      await release.promise;
      return { charged: 42 };
    });
    await started.promise;

    const conflict = await rejectionOf(service.runOnce({ scope, key, inFlightWaitMs: 100 }, () => ++runs));
    expect(conflict).toBeInstanceOf(IdempotencyConflictError);
    expect((conflict as IdempotencyConflictError).code).toBe('idempotency_conflict');

    let waiterDone = false;
    const waiter = service
      .runOnce({ scope, key }, () => {
        runs++;
        return { charged: -1 };
      })
      .finally(() => {
        waiterDone = true;
      });
    // Let the waiter find the claim in flight before the first call finishes.
    await sleep(150);
    expect(waiterDone).toBe(false);
    release.open();
    expect(await first).toEqual({ charged: 42 });
    expect(await waiter).toEqual({ charged: 42 });
    expect(runs).toBe(1);
  });

  it('keeps keys of different scopes apart: the same key in two scopes runs the function in each (R23, R5)', async () => {
    const key = `id_${randomUUID()}`;
    let runs = 0;
    const webhook = await service.runOnce({ scope: 'webhook:stripe', key }, () => ({ scope: 'webhook', run: ++runs }));
    const job = await service.runOnce({ scope: 'job:invoices', key }, () => ({ scope: 'job', run: ++runs }));
    expect(webhook).toEqual({ scope: 'webhook', run: 1 });
    expect(job).toEqual({ scope: 'job', run: 2 });
    expect(await service.runOnce({ scope: 'webhook:stripe', key }, () => ({ scope: 'webhook', run: ++runs }))).toEqual(webhook);
    expect(await service.runOnce({ scope: 'job:invoices', key }, () => ({ scope: 'job', run: ++runs }))).toEqual(job);
    expect(runs).toBe(2);
  });

  it('returns a result it cannot store (a BigInt) as it is and releases the key, rather than leave it claimed: the next call runs again (R23, R16b)', async () => {
    const key = `evt_${randomUUID()}`;
    let runs = 0;
    const work = () => ({ run: ++runs, total: 10n ** 20n });
    expect(await service.runOnce({ scope, key }, work)).toEqual({ run: 1, total: 10n ** 20n });
    // Not a 409 until the lease ends: the key is free at once.
    expect(await service.runOnce({ scope, key, inFlightWaitMs: 0 }, work)).toEqual({ run: 2, total: 10n ** 20n });
  });

  it('keeps dates as dates in a stored result (R23, R9)', async () => {
    const key = `evt_${randomUUID()}`;
    const at = new Date('2026-11-29T06:00:00.000Z');
    await service.runOnce({ scope, key }, () => ({ at, nested: [{ at }] }));
    const replayed = await service.runOnce({ scope, key }, () => ({ at: new Date(0), nested: [] }));
    expect(replayed).toEqual({ at, nested: [{ at }] });
    expect(replayed.at).toBeInstanceOf(Date);
  });

  it('gives the function no transaction manager unless atomic is asked for (R23, R22)', async () => {
    let seen: RunOnceContext | undefined;
    await service.runOnce({ scope, key: `evt_${randomUUID()}` }, (context) => {
      seen = context;
      return null;
    });
    expect(seen).toEqual({ manager: undefined });
  });
});

describe.each(['mariadb', 'postgres'] as const)('IdempotencyService.runOnce({ atomic: true }) on %s', (database) => {
  let probe: RunningProbeApp;
  let service: IdempotencyService;

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform: 'express', suite: 'run_once_atomic' });
    service = probe.app.get(IdempotencyService);
    await queryRows(probe.dataSource, 'CREATE TABLE job_effects (id VARCHAR(64) NOT NULL PRIMARY KEY, job VARCHAR(64) NOT NULL)');
  });

  afterAll(async () => {
    await probe?.close();
  });

  async function effects(job: string): Promise<number> {
    const [row] = (await queryRows(probe.dataSource, 'SELECT COUNT(*) AS n FROM job_effects WHERE job = ?', [job])) as Array<{ n: string | number }>;
    return Number(row.n);
  }

  const scope = 'job:invoices';

  it('rolls back the writes made through the manager when the function throws, releases the key, and commits them with the result when it succeeds (R23, R22)', async () => {
    const key = `job_${randomUUID()}`;
    const failure = new Error('the job failed after writing');
    let runs = 0;
    const error = await rejectionOf(
      service.runOnce({ scope, key, atomic: true }, async ({ manager }) => {
        runs++;
        await manager!.createQueryBuilder().insert().into('job_effects').values({ id: randomUUID(), job: key }).execute();
        throw failure;
      }),
    );
    expect(error).toBe(failure);
    expect(await effects(key)).toBe(0);

    const result = await service.runOnce({ scope, key, atomic: true }, async ({ manager }) => {
      runs++;
      await manager!.createQueryBuilder().insert().into('job_effects').values({ id: randomUUID(), job: key }).execute();
      return { invoiced: true };
    });
    expect(result).toEqual({ invoiced: true });
    expect(runs).toBe(2);
    expect(await effects(key)).toBe(1);

    const later = await service.runOnce({ scope, key, atomic: true }, () => {
      runs++;
      return { invoiced: false };
    });
    expect(later).toEqual({ invoiced: true });
    expect(runs).toBe(2);
    expect(await effects(key)).toBe(1);
  });

  it('commits the writes of a result it cannot store and frees the key in the same commit (R23, R22a, R16b)', async () => {
    const key = `evt_${randomUUID()}`;
    let runs = 0;
    const work = async ({ manager }: RunOnceContext) => {
      runs++;
      await manager!.createQueryBuilder().insert().into('job_effects').values({ id: randomUUID(), job: key }).execute();
      return { total: 10n ** 20n };
    };
    expect(await service.runOnce({ scope, key, atomic: true }, work)).toEqual({ total: 10n ** 20n });
    expect(await effects(key)).toBe(1);
    await service.runOnce({ scope, key, atomic: true, inFlightWaitMs: 0 }, work);
    expect(runs).toBe(2);
    expect(await effects(key)).toBe(2);
  });

  it('puts writes made through the injected IdempotencyTransaction in the same transaction: rolled back on a throw (R23, R22)', async () => {
    const key = `job_${randomUUID()}`;
    const transaction = probe.app.get(IdempotencyTransaction);
    let active: boolean | undefined;
    await rejectionOf(
      service.runOnce({ scope, key, atomic: true }, async () => {
        active = transaction.active;
        await transaction.manager.createQueryBuilder().insert().into('job_effects').values({ id: randomUUID(), job: key }).execute();
        throw new Error('failed after writing through IdempotencyTransaction');
      }),
    );
    expect(active).toBe(true);
    expect(await effects(key)).toBe(0);
  });
});

describe('IdempotencyService.runOnce({ atomic: true }) on sqlite', () => {
  let probe: RunningProbeApp;
  let service: IdempotencyService;

  beforeAll(async () => {
    probe = await startProbeApp({ database: 'sqlite', platform: 'express', suite: 'run_once_sqlite' });
    service = probe.app.get(IdempotencyService);
  });

  afterAll(async () => {
    await probe?.close();
  });

  it('rejects atomic: true with an Error naming the databases that can, without running the function or leaving the key claimed (R23, R22)', async () => {
    const scope = 'job:invoices';
    const key = `job_${randomUUID()}`;
    let runs = 0;
    const error = await rejectionOf(service.runOnce({ scope, key, atomic: true }, () => ++runs));
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/MySQL, MariaDB or PostgreSQL/);
    expect(runs).toBe(0);

    const plain = await service.runOnce({ scope, key, inFlightWaitMs: 0 }, () => ({ run: ++runs }));
    expect(plain).toEqual({ run: 1 });
  });
});

describe.each(['sqlite', 'mariadb'] as const)('IdempotencyService.runOnce options and encryption on %s', (database) => {
  let plainProbe: RunningProbeApp;
  let sealedProbe: RunningProbeApp;

  beforeAll(async () => {
    plainProbe = await startProbeApp({ database, platform: 'express', suite: 'run_once_checks' });
    sealedProbe = await startProbeApp({
      database,
      platform: 'express',
      suite: 'run_once_sealed',
      options: { encryption: { keys: [randomBytes(32)], fingerprintKey: randomBytes(32) } },
    });
  });

  afterAll(async () => {
    await plainProbe?.close();
    await sealedProbe?.close();
  });

  it.each([
    ['ttl', { ttl: 0 }],
    ['lockTimeoutMs', { lockTimeoutMs: 0 }],
    ['inFlightWaitMs', { inFlightWaitMs: -1 }],
    ['ttl', { ttl: 1.5 }],
    ['key', { key: '' }],
    ['scope', { scope: '' }],
    ['fingerprint', { fingerprint: '' }],
  ] as const)('refuses an invalid %s as the module would, naming it, before anything is claimed or run (R23)', async (name, invalid) => {
    const service = plainProbe.app.get(IdempotencyService);
    let runs = 0;
    const options = { scope: 'job:checks', key: `job_${randomUUID()}`, ...invalid };
    const error = await rejectionOf(service.runOnce(options, () => ++runs));
    expect((error as Error).message).toContain(`"${name}"`);
    expect(runs).toBe(0);
    if (options.key !== '' && options.scope !== '') {
      const [row] = await queryRows(plainProbe.dataSource, 'SELECT COUNT(*) AS n FROM idempotency_records WHERE idempotency_key = ?', [options.key]);
      expect(Number(row.n)).toBe(0);
    }
  });

  it("keys a caller's own fingerprint with the HMAC when encryption is on, and still refuses another fingerprint (R26, R10)", async () => {
    const service = sealedProbe.app.get(IdempotencyService);
    const key = `evt_${randomUUID()}`;
    const fingerprint = createHash('sha256').update('{"event":"paid"}').digest('hex');
    await service.runOnce({ scope: 'webhook:sealed', key, fingerprint }, () => ({ ok: true }));
    const [row] = await queryRows<{ fingerprint: string }>(sealedProbe.dataSource, 'SELECT fingerprint FROM idempotency_records WHERE idempotency_key = ?', [key]);
    expect(row.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(row.fingerprint).not.toBe(fingerprint);
    expect(await service.runOnce({ scope: 'webhook:sealed', key, fingerprint }, () => ({ ok: false }))).toEqual({ ok: true });
    expect(await rejectionOf(service.runOnce({ scope: 'webhook:sealed', key, fingerprint: 'another' }, () => ({ ok: false })))).toBeInstanceOf(
      IdempotencyKeyReuseError,
    );
  });
});
