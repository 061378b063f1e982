import { randomUUID } from 'node:crypto';
import type { OutgoingHttpHeaders, Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { listenOnLoopback, sendRaw } from './support/coded-http.js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { queryRows, type DatabaseKind } from './support/test-database.js';
import type { HttpPlatform } from '../src/bootstrap.js';
import { PLATFORM_MATRIX } from './support/payments-app.js';
import { startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { onChosenDatabases } from './support/chosen-databases.js';

/** Node's own client: an array header value is sent as that many header lines. */
async function nodeRequest(server: Server, method: string, path: string, headers: OutgoingHttpHeaders, body = '{}') {
  const answer = await sendRaw(server, method, path, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers }, body);
  return { status: answer.status, headers: answer.headers, body: answer.decoded.toString('utf8') };
}

function socketRequest(port: number, head: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: match ? Number(match[1]) : 0, text });
    });
    socket.end(head);
  });
}

function errorCodeOf(body: string): unknown {
  return (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
}

describe.each(PLATFORM_MATRIX)('idempotency keys on %s with %s', (database, platform) => {
  let probe: RunningProbeApp;
  let port: number;

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform, suite: 'keys' });
    await listenOnLoopback(probe.server);
    port = (probe.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await probe?.close();
  });

  /** A fresh account per test, so literal keys such as `abc` never meet another test's. */
  const freshAccount = () => ({ 'X-Account': `acct-${randomUUID()}` });

  describe('which routes honour the key', () => {
    it('ignores the key, and its absence, on a GET route even when it is marked required (R1)', async () => {
      const before = probe.runs.count('read');
      const key = randomUUID();
      const first = await request(probe.server).get('/probe/read').set('Idempotency-Key', key).expect(200);
      const second = await request(probe.server).get('/probe/read').set('Idempotency-Key', key).expect(200);
      const malformed = await request(probe.server).get('/probe/read').set('Idempotency-Key', 'not-a-uuid').expect(200);
      const keyless = await request(probe.server).get('/probe/read').expect(200);
      for (const response of [first, second, malformed, keyless]) expect(response.headers['idempotency-replayed']).toBeUndefined();
      expect(second.body.run).toBe(first.body.run + 1);
      expect(probe.runs.count('read')).toBe(before + 4);
    });

    it('ignores the key on a POST route without @Idempotent(): the handler runs for every request (R1)', async () => {
      const before = probe.runs.count('plain');
      const key = randomUUID();
      const first = await request(probe.server).post('/probe/plain').set('Idempotency-Key', key).send({ a: 1 }).expect(201);
      const second = await request(probe.server).post('/probe/plain').set('Idempotency-Key', key).send({ a: 1 }).expect(201);
      expect(second.headers['idempotency-replayed']).toBeUndefined();
      expect(second.body.run).toBe(first.body.run + 1);
      expect(probe.runs.count('plain')).toBe(before + 2);
    });

    it.each([
      ['post', '/probe/echo', 'echo', 201],
      ['put', '/probe/put', 'put', 200],
      ['patch', '/probe/patch', 'patch', 200],
      ['delete', '/probe/delete/7', 'delete', 200],
    ] as const)('honours the key on a decorated %s route: the second request is a replay (R1, R9)', async (method, path, route, status) => {
      const before = probe.runs.count(route);
      const key = randomUUID();
      const first = await request(probe.server)[method](path).set('Idempotency-Key', key).send({ a: 1 }).expect(status);
      const second = await request(probe.server)[method](path).set('Idempotency-Key', key).send({ a: 1 }).expect(status);
      expect(first.headers['idempotency-replayed']).toBeUndefined();
      expect(second.headers['idempotency-replayed']).toBe('true');
      expect(second.text).toBe(first.text);
      expect(probe.runs.count(route)).toBe(before + 1);
    });
  });

  describe('missing keys', () => {
    it('processes a keyless request on an optional route normally, every time, with no replay (R2)', async () => {
      const before = probe.runs.count('echo');
      const first = await request(probe.server).post('/probe/echo').send({ same: true }).expect(201);
      const second = await request(probe.server).post('/probe/echo').send({ same: true }).expect(201);
      expect(first.headers['idempotency-replayed']).toBeUndefined();
      expect(second.headers['idempotency-replayed']).toBeUndefined();
      expect(second.body.run).toBe(first.body.run + 1);
      expect(probe.runs.count('echo')).toBe(before + 2);
    });

    it('answers a keyless request on a required route with 400 idempotency_key_missing without running it (R2)', async () => {
      const before = probe.runs.count('required');
      const response = await request(probe.server).post('/probe/required').send({ a: 1 }).expect(400);
      expect(response.body.error.code).toBe('idempotency_key_missing');
      expect(probe.runs.count('required')).toBe(before);
    });
  });

  describe('key formats', () => {
    it('treats every spelling of one UUID as the same key: the first runs, the others replay (R3)', async () => {
      const uuid = randomUUID();
      const upper = uuid.toUpperCase();
      const spellings = [
        uuid,
        uuid.replaceAll('-', ''),
        `{${uuid}}`,
        `urn:uuid:${uuid}`,
        upper,
        upper.replaceAll('-', ''),
        `{${upper}}`,
        `URN:UUID:${upper}`,
        `"${uuid}"`,
        `"urn:uuid:${upper}"`,
      ];
      const before = probe.runs.count('echo');
      const first = await request(probe.server).post('/probe/echo').set('Idempotency-Key', spellings[0]).send({ order: 1 }).expect(201);
      expect(first.headers['idempotency-replayed']).toBeUndefined();
      for (const spelling of spellings.slice(1)) {
        const replay = await request(probe.server).post('/probe/echo').set('Idempotency-Key', spelling).send({ order: 1 }).expect(201);
        expect({ spelling, replayed: replay.headers['idempotency-replayed'] }).toEqual({ spelling, replayed: 'true' });
        expect(replay.text).toBe(first.text);
      }
      expect(probe.runs.count('echo')).toBe(before + 1);
    });

    it.each([
      ['a word', 'not-a-uuid'],
      ['a UUID with one digit too few', randomUUID().slice(0, -1)],
      ['a UUID with a non-hex digit', `g${randomUUID().slice(1)}`],
      ['a braced UUID missing its closing brace', `{${randomUUID()}`],
      ['an unterminated quoted UUID', `"${randomUUID()}`],
      ['129 characters', 'a'.repeat(129)],
    ])('refuses %s with 400 invalid_idempotency_key without running the handler (R3)', async (_what, value) => {
      const before = probe.runs.count('echo');
      const response = await request(probe.server).post('/probe/echo').set('Idempotency-Key', value).send({}).expect(400);
      expect(response.body.error.code).toBe('invalid_idempotency_key');
      expect(probe.runs.count('echo')).toBe(before);
    });

    it('accepts a token key such as checkout:attempt-1 and replays it, bare or quoted (R3)', async () => {
      const account = freshAccount();
      const before = probe.runs.count('token');
      const first = await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', 'checkout:attempt-1').send({ cart: 9 }).expect(201);
      const bare = await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', 'checkout:attempt-1').send({ cart: 9 }).expect(201);
      const quoted = await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', '"checkout:attempt-1"').send({ cart: 9 }).expect(201);
      expect(first.headers['idempotency-replayed']).toBeUndefined();
      for (const replay of [bare, quoted]) {
        expect(replay.headers['idempotency-replayed']).toBe('true');
        expect(replay.text).toBe(first.text);
      }
      expect(probe.runs.count('token')).toBe(before + 1);
    });

    it('accepts a 255-character token and refuses a 256-character one with 400 invalid_idempotency_key (R3)', async () => {
      const account = freshAccount();
      const before = probe.runs.count('token');
      await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', 'k'.repeat(255)).send({}).expect(201);
      const refused = await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', 'k'.repeat(256)).send({}).expect(400);
      expect(refused.body.error.code).toBe('invalid_idempotency_key');
      expect(probe.runs.count('token')).toBe(before + 1);
    });

    it('keeps token keys that differ only in case apart: abc and ABC are two keys (R3)', async () => {
      const account = freshAccount();
      const before = probe.runs.count('token');
      const lower = await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', 'abc').send({ n: 1 }).expect(201);
      // A different body: a case-insensitive store would answer 422 (reuse) or replay `abc` here.
      const upper = await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', 'ABC').send({ n: 2 }).expect(201);
      expect(upper.headers['idempotency-replayed']).toBeUndefined();
      expect(probe.runs.count('token')).toBe(before + 2);
      const lowerAgain = await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', 'abc').send({ n: 1 }).expect(201);
      const upperAgain = await request(probe.server).post('/probe/token').set(account).set('Idempotency-Key', 'ABC').send({ n: 2 }).expect(201);
      expect(lowerAgain.text).toBe(lower.text);
      expect(upperAgain.text).toBe(upper.text);
      expect(lowerAgain.headers['idempotency-replayed']).toBe('true');
      expect(upperAgain.headers['idempotency-replayed']).toBe('true');
      expect(probe.runs.count('token')).toBe(before + 2);
      const [row] = (await queryRows(probe.dataSource, 'SELECT COUNT(*) AS n FROM idempotency_records WHERE account = ?', [
        account['X-Account'],
      ])) as Array<{ n: string | number }>;
      expect(Number(row.n)).toBe(2);
    });

    it('applies a custom key validator: order-12 is accepted, order-x refused with 400 invalid_idempotency_key (R3)', async () => {
      const account = freshAccount();
      const before = probe.runs.count('custom-key');
      await request(probe.server).post('/probe/custom-key').set(account).set('Idempotency-Key', 'order-12').send({}).expect(201);
      const replay = await request(probe.server).post('/probe/custom-key').set(account).set('Idempotency-Key', 'order-12').send({}).expect(201);
      expect(replay.headers['idempotency-replayed']).toBe('true');
      const refused = await request(probe.server).post('/probe/custom-key').set(account).set('Idempotency-Key', 'order-x').send({}).expect(400);
      expect(refused.body.error.code).toBe('invalid_idempotency_key');
      expect(probe.runs.count('custom-key')).toBe(before + 1);
    });
  });

  describe('malformed headers', () => {
    it.each([
      ['the same UUID', () => { const key = randomUUID(); return [key, key]; }],
      ['two different UUIDs', () => [randomUUID(), randomUUID()]],
    ])('refuses two Idempotency-Key headers holding %s with 400 invalid_idempotency_key (R4)', async (_what, keys) => {
      const before = probe.runs.count('echo');
      const answer = await nodeRequest(probe.server, 'POST', '/probe/echo', { 'Idempotency-Key': keys() });
      expect(answer.status).toBe(400);
      expect(errorCodeOf(answer.body)).toBe('invalid_idempotency_key');
      expect(probe.runs.count('echo')).toBe(before);
    });

    it('refuses two Idempotency-Key headers on a required route with 400 invalid_idempotency_key (R4)', async () => {
      const before = probe.runs.count('required');
      const key = randomUUID();
      const answer = await nodeRequest(probe.server, 'POST', '/probe/required', { 'Idempotency-Key': [key, key] });
      expect(answer.status).toBe(400);
      expect(errorCodeOf(answer.body)).toBe('invalid_idempotency_key');
      expect(probe.runs.count('required')).toBe(before);
    });

    it('refuses an empty Idempotency-Key value with 400 invalid_idempotency_key, not as a missing key (R4)', async () => {
      const before = probe.runs.count('echo');
      const answer = await nodeRequest(probe.server, 'POST', '/probe/echo', { 'Idempotency-Key': '' });
      expect(answer.status).toBe(400);
      expect(errorCodeOf(answer.body)).toBe('invalid_idempotency_key');
      expect(probe.runs.count('echo')).toBe(before);
    });

    it('refuses a token holding a tab with 400 invalid_idempotency_key (R4)', async () => {
      const before = probe.runs.count('token');
      const answer = await nodeRequest(probe.server, 'POST', '/probe/token', { 'Idempotency-Key': 'checkout:\tattempt-1' });
      expect(answer.status).toBe(400);
      expect(errorCodeOf(answer.body)).toBe('invalid_idempotency_key');
      expect(probe.runs.count('token')).toBe(before);
    });

    it.each([
      ['\\x01', 0x01],
      ['\\x7f', 0x7f],
    ])('refuses a key holding the control byte %s with a 4xx, never a 5xx, without running the handler (R4)', async (_what, byte) => {
      const before = probe.runs.count('token');
      const head = Buffer.concat([
        Buffer.from('POST /probe/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\nIdempotency-Key: checkout:', 'latin1'),
        Buffer.from([byte]),
        Buffer.from('attempt-1\r\n\r\n{}', 'latin1'),
      ]);
      const answer = await socketRequest(port, head);
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
      // Node's parser refuses such bytes before any route sees them (Fastify words that refusal as
      // `{"error":"Bad Request"}`); should one reach the library, its answer must be the contract's.
      const appError = /"error":\{"code":"([a-z_]+)"/.exec(answer.text);
      if (appError) expect(appError[1]).toBe('invalid_idempotency_key');
      expect(probe.runs.count('token')).toBe(before);
    });
  });
});

const GLOBAL_MATRIX: ReadonlyArray<readonly [DatabaseKind, HttpPlatform]> = onChosenDatabases([
  ['mariadb', 'express'],
  ['postgres', 'fastify'],
  ['sqlite', 'fastify'],
] as const);

describe.each(GLOBAL_MATRIX)('applyToAllWrites and headerName X-Request-Id on %s with %s', (database, platform) => {
  let probe: RunningProbeApp;

  beforeAll(async () => {
    probe = await startProbeApp({ database, platform, suite: 'keys_global', options: { applyToAllWrites: true, headerName: 'X-Request-Id' } });
  });

  afterAll(async () => {
    await probe?.close();
  });

  it('replays an undecorated POST route with a key: the handler runs once (R1)', async () => {
    const before = probe.runs.count('plain');
    const key = randomUUID();
    const first = await request(probe.server).post('/probe/plain').set('X-Request-Id', key).send({ a: 1 }).expect(201);
    const second = await request(probe.server).post('/probe/plain').set('X-Request-Id', key).send({ a: 1 }).expect(201);
    expect(first.headers['idempotency-replayed']).toBeUndefined();
    expect(second.headers['idempotency-replayed']).toBe('true');
    expect(second.text).toBe(first.text);
    expect(probe.runs.count('plain')).toBe(before + 1);
  });

  it('still ignores the key on an undecorated GET route (R1)', async () => {
    const before = probe.runs.count('plain-read');
    const key = randomUUID();
    const first = await request(probe.server).get('/probe/plain').set('X-Request-Id', key).expect(200);
    const second = await request(probe.server).get('/probe/plain').set('X-Request-Id', key).expect(200);
    expect(second.headers['idempotency-replayed']).toBeUndefined();
    expect(second.body.run).toBe(first.body.run + 1);
    expect(probe.runs.count('plain-read')).toBe(before + 2);
  });

  it('reads the key from the configured header and ignores Idempotency-Key (R1)', async () => {
    const before = probe.runs.count('echo');
    const key = randomUUID();
    await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ a: 1 }).expect(201);
    const ignored = await request(probe.server).post('/probe/echo').set('Idempotency-Key', key).send({ a: 1 }).expect(201);
    expect(ignored.headers['idempotency-replayed']).toBeUndefined();
    expect(probe.runs.count('echo')).toBe(before + 2);
  });

  it('asks for the configured header on a required route, naming it (R1, R2)', async () => {
    const before = probe.runs.count('required');
    const response = await request(probe.server).post('/probe/required').set('Idempotency-Key', randomUUID()).send({}).expect(400);
    expect(response.body.error.code).toBe('idempotency_key_missing');
    expect(response.body.error.message).toContain('X-Request-Id');
    expect(probe.runs.count('required')).toBe(before);
  });

  it('checks the configured header like the default one: malformed values answer 400 invalid_idempotency_key (R3)', async () => {
    const response = await request(probe.server).post('/probe/echo').set('X-Request-Id', 'not-a-uuid').send({}).expect(400);
    expect(response.body.error.code).toBe('invalid_idempotency_key');
  });
});
