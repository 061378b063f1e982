import { describe, expect, it } from '@jest/globals';
import { Module, type INestApplication, type LoggerService, type NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { RawBodyCheck } from './raw-body.check.js';

class WarningLog implements LoggerService {
  readonly warnings: string[] = [];
  log(): void {}
  error(): void {}
  warn(message: unknown): void {
    this.warnings.push(String(message));
  }
}

@Module({ providers: [RawBodyCheck] })
class CheckedModule {}

type Platform = 'express' | 'fastify';

async function adapterFor(platform: Platform): Promise<unknown> {
  return platform === 'fastify' ? new (await import('@nestjs/platform-fastify')).FastifyAdapter() : undefined;
}

/** The raw-body warnings an app logs while it starts, built as NestFactory.create does. */
async function warningsOf(
  platform: Platform,
  options: NestApplicationOptions,
  beforeInit?: (app: INestApplication) => void,
): Promise<string[]> {
  const log = new WarningLog();
  const adapter = await adapterFor(platform);
  const settings = { ...options, logger: log };
  const app = adapter
    ? await NestFactory.create(CheckedModule, adapter as never, settings)
    : await NestFactory.create(CheckedModule, settings);
  beforeInit?.(app);
  await app.init();
  await app.close();
  return log.warnings.filter((line) => line.includes('rawBody'));
}

describe.each<Platform>(['express', 'fastify'])('RawBodyCheck on %s (R7)', (platform) => {
  it('warns once, naming NestFactory.create(AppModule, { rawBody: true }), when rawBody is off', async () => {
    const warnings = await warningsOf(platform, {});
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('NestFactory.create(AppModule, { rawBody: true })');
  });

  it('says nothing when rawBody is on', async () => {
    expect(await warningsOf(platform, { rawBody: true })).toEqual([]);
  });

  it('learns the option in an app built from a testing module too, whose adapter comes after its providers', async () => {
    for (const rawBody of [false, true]) {
      const log = new WarningLog();
      const moduleRef = await Test.createTestingModule({ imports: [CheckedModule] }).setLogger(log).compile();
      const adapter = await adapterFor(platform);
      const app = adapter ? moduleRef.createNestApplication(adapter as never, { rawBody, logger: log }) : moduleRef.createNestApplication({ rawBody, logger: log });
      await app.init();
      await app.close();
      expect([rawBody, log.warnings.filter((line) => line.includes('rawBody')).length]).toEqual([rawBody, rawBody ? 0 : 1]);
    }
  });

  it('with bodyParser: false, warns on Fastify (its own JSON parser keeps no bytes) but not on Express (the library reads them)', async () => {
    const warnings = await warningsOf(platform, { bodyParser: false, rawBody: true });
    if (platform === 'express') expect(warnings).toEqual([]);
    else expect(warnings).toEqual([expect.stringContaining("app.useBodyParser('application/json')")]);
  });

  it('with bodyParser: false, says nothing once the JSON parser is registered with raw bodies', async () => {
    const json = platform === 'express' ? 'json' : 'application/json';
    const warnings = await warningsOf(platform, { bodyParser: false, rawBody: true }, (app) =>
      (app as unknown as { useBodyParser(type: string): void }).useBodyParser(json),
    );
    expect(warnings).toEqual([]);
  });
});
