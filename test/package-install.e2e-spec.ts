import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { betterSqlite3PackageForThisNode } from '../src/database/sqlite-driver.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('..', import.meta.url));

// What a new Nest application on SQLite installs next to the library: required peers and one driver.
const APP_DEPENDENCIES = [
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/platform-express',
  '@nestjs/typeorm',
  'typeorm',
  'reflect-metadata',
  'rxjs',
  'class-validator',
];
const APP_DEV_DEPENDENCIES = ['typescript', '@types/node'];
// Optional peers the library declares: none may be needed to import it.
const OPTIONAL_PEERS_NOT_INSTALLED = ['mysql2', 'pg', 'ioredis', '@nestjs/swagger', '@nestjs/throttler', '@nestjs/graphql', '@nestjs/microservices', 'prom-client'];

/** The version this workspace installed, so that npm finds it in its cache. */
function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

function pinned(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.map((name) => [name, installedVersion(name)]));
}

/**
 * The SQLite driver a user installs on the Node that runs this test: better-sqlite3 12 on Node 20; from
 * Node 22, 13 under the name better-sqlite3-13 (12 aborts Node 24.19+, and TypeORM's peer range still
 * says 12), which the scratch app hands to TypeORM as its driver.
 */
function sqliteDriverDependency(): Record<string, string> {
  const name = betterSqlite3PackageForThisNode();
  return name === 'better-sqlite3' ? pinned([name]) : { [name]: `npm:better-sqlite3@${installedVersion(name)}` };
}

function startApp(folder: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['dist/main.js'], { cwd: folder, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolvePromise, reject) => {
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolvePromise({ child, url: match[1].replace('[::1]', '127.0.0.1') });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`the scratch app exited with ${code}:\n${output}`)));
  });
}

describe('the packed library in a new Nest application outside this workspace', () => {
  let folder: string;
  let app: { child: ChildProcess; url: string } | undefined;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'idempotency-scratch-app-'));
    const { stdout } = await run(process.execPath, [join(REPO, 'scripts/pack-library.mjs'), folder]);
    const tarball = stdout.trim();
    writeFileSync(
      join(folder, 'package.json'),
      JSON.stringify(
        {
          name: 'scratch-app',
          private: true,
          type: 'module',
          dependencies: { 'nestjs-idempotency': `file:${tarball}`, ...pinned(APP_DEPENDENCIES), ...sqliteDriverDependency() },
          devDependencies: pinned(APP_DEV_DEPENDENCIES),
        },
        null,
        2,
      ),
    );
    mkdirSync(join(folder, 'src'));
    copyFileSync(join(REPO, 'test/scratch-app/main.ts'), join(folder, 'src/main.ts'));
    copyFileSync(join(REPO, 'test/scratch-app/tsconfig.json'), join(folder, 'tsconfig.json'));
    // From npm's cache: the workspace's own install put every pinned version there.
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: folder, maxBuffer: 16 * 1024 * 1024 });
    await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { cwd: folder });
    app = await startApp(folder, { PORT: '0', SQLITE_PATH: join(folder, 'scratch.sqlite') });
  }, 300_000);

  afterAll(() => {
    app?.child.kill('SIGKILL');
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  it('installs from the tarball as a package, not a link, with no optional peer', () => {
    const installed = join(folder, 'node_modules/nestjs-idempotency');
    expect(existsSync(join(installed, 'dist/index.js'))).toBe(true);
    expect(existsSync(join(installed, 'src'))).toBe(false);
    for (const peer of OPTIONAL_PEERS_NOT_INSTALLED) expect(existsSync(join(folder, 'node_modules', peer))).toBe(false);
  });

  it('compiles with tsc, starts on SQLite and replays a POST byte for byte with Idempotency-Replayed (R8, R9, R13)', async () => {
    const key = randomUUID();
    const send = (body: unknown) =>
      fetch(`${app!.url}/orders`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
        body: JSON.stringify(body),
      });
    const first = await send({ sku: 'book', quantity: 1 });
    const firstBytes = Buffer.from(await first.arrayBuffer());
    const replay = await send({ sku: 'book', quantity: 1 });
    const replayBytes = Buffer.from(await replay.arrayBuffer());
    const reuse = await send({ sku: 'pen', quantity: 2 });

    expect(first.status).toBe(201);
    expect(first.headers.get('idempotency-replayed')).toBeNull();
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotency-replayed')).toBe('true');
    expect(replayBytes.equals(firstBytes)).toBe(true);
    expect(JSON.parse(firstBytes.toString('utf8'))).toMatchObject({ id: 'ord_1', body: { sku: 'book', quantity: 1 } });
    expect(reuse.status).toBe(422);
    expect(((await reuse.json()) as { error: { code: string } }).error.code).toBe('idempotency_key_reuse');
  });

  it('resolves every subpath the package exports', async () => {
    const script = "for (const entry of ['nestjs-idempotency', 'nestjs-idempotency/testing', 'nestjs-idempotency/client']) " +
      "console.log(entry, Object.keys(await import(entry)).length > 0)";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: folder });
    expect(stdout.trim().split('\n')).toEqual(['nestjs-idempotency true', 'nestjs-idempotency/testing true', 'nestjs-idempotency/client true']);
  });
});
