import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Injectable, Post, Req, type CanActivate, type ExecutionContext, type INestApplication } from '@nestjs/common';
import { Idempotent, type IdempotencyModuleOptions } from 'nestjs-idempotency';
import request from 'supertest';
import { PLATFORM_MATRIX } from './support/payments-app.js';
import { HandlerRuns, startProbeApp, type RunningProbeApp } from './support/probe-app.js';
import { onChosenDatabases } from './support/chosen-databases.js';

type SentResponse = Awaited<request.Test>;

/** An ObjectId as MongoDB drivers hand it out: no plain value, a `toHexString()` and a `toString()`. */
class ObjectIdLike {
  constructor(private readonly hex: string) {}
  toHexString(): string {
    return this.hex;
  }
  toString(): string {
    return this.hex;
  }
}

/**
 * What an application's auth guard puts on `request.user`, read from `X-Principal` (JSON) so each
 * test chooses its shape: `{"$bigint":"..."}` and `{"$objectId":"..."}` stand for the values JSON
 * cannot carry, `{"$opaque":true}` for an object with neither `toString()` of its own nor an id.
 */
@Injectable()
class PrincipalHeaderGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const incoming = context.switchToHttp().getRequest<{ headers: Record<string, unknown>; user?: unknown }>();
    const header = incoming.headers['x-principal'];
    if (typeof header === 'string') incoming.user = revive(JSON.parse(header) as Record<string, unknown>);
    return true;
  }
}

function revive(principal: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(principal).map(([name, value]) => {
      const tagged = (value ?? {}) as { $bigint?: string; $objectId?: string; $opaque?: boolean };
      if (typeof tagged.$bigint === 'string') return [name, BigInt(tagged.$bigint)];
      if (typeof tagged.$objectId === 'string') return [name, new ObjectIdLike(tagged.$objectId)];
      if (tagged.$opaque) return [name, { nested: 'no id here' }];
      return [name, value];
    }),
  );
}

@Controller('principals')
class TransfersController {
  constructor(private readonly runs: HandlerRuns) {}

  /** A transfer whose answer says who made it: what a leak across accounts would show. */
  @Post('transfers')
  @Idempotent()
  transfer(@Req() incoming: { user?: unknown }, @Body() body: Record<string, unknown>): Record<string, unknown> {
    return { transferId: randomUUID(), run: this.runs.record('transfers'), by: describeUser(incoming.user), body };
  }
}

function describeUser(user: unknown): string {
  return JSON.stringify(user, (_name, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)) ?? 'anonymous';
}

function startApp(database: (typeof PLATFORM_MATRIX)[number][0], platform: (typeof PLATFORM_MATRIX)[number][1], suite: string, options: IdempotencyModuleOptions = {}) {
  return startProbeApp({
    database,
    platform,
    suite,
    options,
    controllers: [TransfersController],
    logger: ['error', 'warn'],
    configure: (app: INestApplication) => {
      app.useGlobalGuards(new PrincipalHeaderGuard());
    },
  });
}

function expectNotReplayed(response: SentResponse): void {
  expect(response.headers['idempotency-replayed']).toBeUndefined();
}

function expectRefused(response: SentResponse): void {
  expect(response.status).toBe(500);
  expect(response.body).toEqual({ error: { code: 'idempotency_account_unresolved', message: expect.stringContaining('"account" option') } });
  expectNotReplayed(response);
}

describe.each(PLATFORM_MATRIX)('authenticated principals on %s with %s (R5, R5a)', (database, platform) => {
  let running: RunningProbeApp;
  const logged: string[] = [];
  let restoreErrorLog: () => void;

  beforeAll(async () => {
    running = await startApp(database, platform, 'principals');
    // Nest's logger writes errors to stderr through console-like streams: record what it says.
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      logged.push(String(chunk));
      return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    restoreErrorLog = () => {
      process.stderr.write = write;
    };
  });

  afterAll(async () => {
    restoreErrorLog?.();
    await running?.close();
  });

  const transfer = (key: string, principal: unknown | undefined, body: Record<string, unknown> = { amount: 500, to: 'acct_9' }) => {
    const test = request(running.server).post('/principals/transfers').set('Idempotency-Key', key);
    return principal === undefined ? test.send(body) : test.set('X-Principal', JSON.stringify(principal)).send(body);
  };

  it("scopes keys by `userId`, the user object of NestJS's authentication guide: user 2 never gets user 1's answer (R5)", async () => {
    const key = randomUUID();
    const first = await transfer(key, { userId: 1, username: 'john' });
    const second = await transfer(key, { userId: 2, username: 'maria' });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expectNotReplayed(second);
    expect(second.body.transferId).not.toBe(first.body.transferId);
    expect(second.body.by).toContain('maria');

    const firstAgain = await transfer(key, { userId: 1, username: 'john' });
    expect(firstAgain.headers['idempotency-replayed']).toBe('true');
    expect(firstAgain.text).toBe(first.text);
  });

  it('refuses a principal without an account id rather than putting it in the shared scope, and runs nothing (R5a)', async () => {
    const key = randomUUID();
    const anonymous = await transfer(key, undefined);
    expect(anonymous.status).toBe(201);
    const runsBefore = running.runs.count('transfers');

    const withoutId = await transfer(key, { username: 'maria', roles: ['payer'] });
    expectRefused(withoutId);
    expect(withoutId.text).not.toContain(anonymous.body.transferId as string);
    expect(running.runs.count('transfers')).toBe(runsBefore);
    // Refused, not stored: the anonymous record still replays.
    const anonymousAgain = await transfer(key, undefined);
    expect(anonymousAgain.headers['idempotency-replayed']).toBe('true');
    expect(anonymousAgain.text).toBe(anonymous.text);
  });

  it('names the account option in the log once per route, however many requests it refuses (R5a)', async () => {
    const before = logged.filter((line) => line.includes('POST /principals/transfers') && line.includes('"account" option')).length;
    for (let i = 0; i < 3; i++) expectRefused(await transfer(randomUUID(), { email: 'someone@example.com' }));
    const lines = logged.filter((line) => line.includes('POST /principals/transfers') && line.includes('"account" option'));
    // The first test of this suite that was refused logged it already, or this one does: once in all.
    expect(lines).toHaveLength(1);
    expect(before).toBeLessThanOrEqual(1);
  });

  it('refuses account ids that name no account exactly: an empty string, a plain object, a boolean (R5a)', async () => {
    for (const principal of [{ accountId: '' }, { accountId: { $opaque: true } }, { sub: true }]) {
      expectRefused(await transfer(randomUUID(), principal));
    }
  });

  it('resolves bigint and ObjectId-like account ids exactly: neighbours past 2^53 and distinct ObjectIds stay apart (R5)', async () => {
    const key = randomUUID();
    const big = await transfer(key, { accountId: { $bigint: '9007199254740993' } });
    const neighbour = await transfer(key, { accountId: { $bigint: '9007199254740992' } });
    expect([big.status, neighbour.status]).toEqual([201, 201]);
    expectNotReplayed(neighbour);
    expect(neighbour.body.transferId).not.toBe(big.body.transferId);
    expect((await transfer(key, { accountId: { $bigint: '9007199254740993' } })).text).toBe(big.text);

    const objectKey = randomUUID();
    const one = await transfer(objectKey, { sub: { $objectId: '65a1f0c2e4b0a1b2c3d4e5f6' } });
    const other = await transfer(objectKey, { sub: { $objectId: '65a1f0c2e4b0a1b2c3d4e5f7' } });
    expectNotReplayed(other);
    expect(other.body.transferId).not.toBe(one.body.transferId);
    const oneAgain = await transfer(objectKey, { sub: { $objectId: '65a1f0c2e4b0a1b2c3d4e5f6' } });
    expect(oneAgain.headers['idempotency-replayed']).toBe('true');
    expect(oneAgain.text).toBe(one.text);
  });

  it('treats 42 and "42" as one account, as every store keeps ids as text (R5)', async () => {
    const key = randomUUID();
    const asNumber = await transfer(key, { accountId: 42 });
    const asText = await transfer(key, { accountId: '42' });
    expect(asText.headers['idempotency-replayed']).toBe('true');
    expect(asText.text).toBe(asNumber.text);
  });
});

describe.each(onChosenDatabases([['sqlite', 'express'], ['mariadb', 'fastify']] as const))('a custom account resolver on %s with %s (R5a)', (database, platform) => {
  let running: RunningProbeApp;

  beforeAll(async () => {
    running = await startApp(database, platform, 'principals_custom', {
      account: (incoming) => (incoming as { user?: { tenantId?: string } }).user?.tenantId,
    });
  });

  afterAll(async () => {
    await running?.close();
  });

  const transfer = (key: string, principal?: unknown) => {
    const test = request(running.server).post('/principals/transfers').set('Idempotency-Key', key);
    return (principal === undefined ? test : test.set('X-Principal', JSON.stringify(principal))).send({ amount: 1 });
  };

  it('refuses a principal whose tenant the resolver cannot find, and keeps requests without a principal in the shared scope', async () => {
    const key = randomUUID();
    const anonymous = await transfer(key);
    expect(anonymous.status).toBe(201);
    expectRefused(await transfer(key, { userId: 7 }));
    const tenant = await transfer(key, { userId: 7, tenantId: 'globex' });
    expect(tenant.status).toBe(201);
    expectNotReplayed(tenant);
    expect((await transfer(key)).text).toBe(anonymous.text);
  });
});
