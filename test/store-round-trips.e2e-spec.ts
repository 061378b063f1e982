import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import type { Logger as TypeOrmLogger } from 'typeorm';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';

/** A TypeORM logger that counts every statement sent to the database. */
class QueryCounter implements TypeOrmLogger {
  readonly queries: string[] = [];
  logQuery(query: string): void {
    this.queries.push(query);
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
}

describe.each(['mariadb', 'sqlite'] as const)('round trips to the store on %s', (database) => {
  const counter = new QueryCounter();
  let probe: RunningProbeApp;

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform: 'express', suite: 'round_trips', dataSource: { logger: counter } });
    // The store reads the server version once per process; that is not a per-request cost.
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ warm: true });
  });

  afterAll(async () => {
    await probe?.close();
  });

  beforeEach(() => {
    counter.queries.length = 0;
  });

  // /probe/echo touches no database itself, so every statement counted is the library's.
  it('costs exactly 2 statements for a fresh request: the claim and the completion (R8)', async () => {
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', randomUUID()).send({ n: 1 }).expect(201);
    expect(counter.queries).toHaveLength(2);
    expect(counter.queries[0]).toMatch(/^INSERT INTO/);
    expect(counter.queries[1]).toMatch(/^UPDATE/);
  });

  it('costs exactly 1 statement for a replay (R9)', async () => {
    const key = randomUUID();
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
    counter.queries.length = 0;
    const replay = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 2 }).expect(201);
    expect(replay.headers['idempotency-replayed']).toBe('true');
    expect(counter.queries).toHaveLength(1);
  });

  it('costs exactly 1 statement for a mismatch (R10)', async () => {
    const key = randomUUID();
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 3 }).expect(201);
    counter.queries.length = 0;
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ n: 4 }).expect(422);
    expect(counter.queries).toHaveLength(1);
  });

  it('costs nothing for a request without a key or a route without idempotency (R2)', async () => {
    await request(probe.server).post('/probe/echo').send({ n: 5 }).expect(201);
    await request(probe.server).post('/probe/plain').set('Idempotency-Key', randomUUID()).send({ n: 5 }).expect(201);
    expect(counter.queries).toHaveLength(0);
  });
});
